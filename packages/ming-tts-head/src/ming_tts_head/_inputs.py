"""Checks of user inputs shared by generation, the model's forward and the trainer; errors name the argument."""

from __future__ import annotations

import torch


def check_token_ids(ids: torch.Tensor, vocab_size: int, name: str) -> None:
    """Raise unless every id of ``ids`` is in ``[0, vocab_size)``."""
    if bool(((ids < 0) | (ids >= vocab_size)).any()):
        raise ValueError(f"{name} must be in [0, vocab_size={vocab_size})")


def check_clip_latents(latents: torch.Tensor, name: str, latent_dim: int | None = None) -> torch.Tensor:
    """One clip's latents, ``(frames, latent_dim)`` or ``(1, frames, latent_dim)``, as finite ``(frames, latent_dim)``
    (``latent_dim`` is checked when given)."""
    if latents.dim() == 3 and latents.shape[0] == 1:
        latents = latents[0]
    dim = "latent_dim" if latent_dim is None else latent_dim
    if latents.dim() != 2 or latents.shape[0] == 0 or latent_dim not in (None, latents.shape[1]):
        raise ValueError(f"{name} must be (frames ≥ 1, {dim}) or (1, frames ≥ 1, {dim}), got {tuple(latents.shape)}")
    if not latents.is_floating_point() or not bool(torch.isfinite(latents).all()):
        raise ValueError(f"{name} must hold finite floating-point values")
    return latents
