"""Flow-time schedules of the sampler (paper §2.2: 10 Euler steps on EPSS, {0,2,4,6,8,12,16,20,24,28,32}/32).

EPSS (empirically pruned step sampling, F5-TTS) spends more steps near t = 0 (noise), where the trajectory bends
most; sway sampling (F5-TTS) warps any schedule by ``t + s·(cos(π t / 2) − 1 + t)`` (s < 0 moves steps towards 0).
"""

from __future__ import annotations

import math

import torch

__all__ = ["EPSS_TIMESTEPS", "flow_timesteps", "sway"]

EPSS_TIMESTEPS: dict[int, tuple[int, ...]] = {
    5: (0, 2, 4, 8, 16, 32),
    6: (0, 2, 4, 6, 8, 16, 32),
    7: (0, 2, 4, 6, 8, 16, 24, 32),
    10: (0, 2, 4, 6, 8, 12, 16, 20, 24, 28, 32),
    12: (0, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32),
    16: (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32),
}
"""EPSS schedules in units of 1/32, by number of steps (F5-TTS's table; 10 steps is the paper's)."""


def sway(t: torch.Tensor, coefficient: float) -> torch.Tensor:
    """Sway-sampling warp ``t + s·(cos(π t / 2) − 1 + t)``: keeps 0 and 1, monotonic for ``s`` in [-1, 1]."""
    return t + coefficient * (torch.cos(math.pi / 2 * t) - 1 + t)


def flow_timesteps(steps: int, schedule: str = "epss", sway_coefficient: float | None = None) -> torch.Tensor:
    """The ``steps + 1`` float32 flow times from 0 (noise) to 1 (data) of an Euler sampler.

    Args:
        steps: Euler steps (network evaluations per branch); ``"epss"`` needs one of :data:`EPSS_TIMESTEPS`' keys.
        schedule: ``"epss"`` or ``"uniform"``.
        sway_coefficient: if given, warp the schedule with :func:`sway`.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if schedule == "epss":
        if steps not in EPSS_TIMESTEPS:
            raise ValueError(f"steps: the EPSS schedule exists for {sorted(EPSS_TIMESTEPS)} steps, got {steps}")
        timesteps = torch.tensor(EPSS_TIMESTEPS[steps], dtype=torch.float32) / 32
    elif schedule == "uniform":
        timesteps = torch.linspace(0, 1, steps + 1, dtype=torch.float32)
    else:
        raise ValueError(f"schedule must be 'epss' or 'uniform', got {schedule!r}")
    return timesteps if sway_coefficient is None else sway(timesteps, sway_coefficient)
