"""Euler ODE sampler of the flow-matching head (paper §2.2): integrates the velocity from noise (t = 0) to a latent
patch (t = 1) over a schedule from :mod:`ming_tts_head.schedule`."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch

__all__ = ["euler_sample"]


def euler_sample(
    velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], noise: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """``x ← x + (t_{i+1} − t_i) · velocity(x, t_i)`` from ``x = noise`` over ``timesteps`` (increasing, 0 → 1).

    Args:
        velocity: called with the current ``x`` and ``t`` as an ``(N,)`` tensor (one time per row).
        noise: ``(N, …)`` starting point.
        timesteps: ``(steps + 1,)`` flow times.

    Returns:
        The sample at ``timesteps[-1]``, shaped like ``noise``.
    """
    x = noise
    times = timesteps.tolist()
    for start, end in itertools.pairwise(times):
        t = torch.full((x.shape[0],), start, dtype=torch.float32, device=x.device)
        x = x + (end - start) * velocity(x, t)
    return x
