"""Identity vectors (paper §2.3 "Identity (ID) Preservation": a VAE-encoded identity vector).

The paper publishes no design beyond "VAE-encoded". Ours: the subject crop is resized to the pipeline's identity
resolution, encoded by the generator's own VAE (no extra image encoder), average-pooled to a ``grid × grid`` map of
latents, mapped per cell by ``Linear → GELU → Linear`` plus a learned per-cell embedding, and L2-normalised. These
``grid²`` identity tokens join the condition sequence with the ``"identity"`` type embedding. Pooling makes them a
summary of the subject's appearance (colours and coarse layout), independent of where the subject stood in the
source picture — only the crop is seen.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

__all__ = ["IdentityEncoder"]


class IdentityEncoder(ModelMixin, ConfigMixin):
    """VAE latents of a subject crop → ``grid²`` unit identity tokens.

    Args:
        latent_channels: VAE latent channels.
        grid: side of the pooled latent map (tokens = grid²).
        crop_size: pixel side the crop is resized to before VAE encoding.
        condition_dim: width of the condition tokens.
    """

    @register_to_config
    def __init__(self, latent_channels: int = 16, grid: int = 4, crop_size: int = 256, condition_dim: int = 2048):
        super().__init__()
        self.cell_embed = nn.Parameter(torch.zeros(grid * grid, condition_dim))
        self.net = nn.Sequential(
            nn.Linear(latent_channels, condition_dim),
            nn.GELU(approximate="tanh"),
            nn.Linear(condition_dim, condition_dim),
        )

    @staticmethod
    def flash_config() -> dict[str, Any]:
        """16 latent channels, 256-px crops (32² latents) pooled to 4 × 4 = 16 tokens of 2048 (our choice)."""
        return {"latent_channels": 16, "grid": 4, "crop_size": 256, "condition_dim": 2048}

    def forward(self, crop_latents: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)`` VAE latents of the crops → ``(B, grid², condition_dim)``."""
        grid = self.config.grid
        if min(crop_latents.shape[-2:]) < grid:
            raise ValueError(f"crop latents {tuple(crop_latents.shape[-2:])} are smaller than the {grid}×{grid} grid")
        pooled = F.adaptive_avg_pool2d(crop_latents, grid).flatten(2).transpose(1, 2)
        return F.normalize(self.net(pooled) + self.cell_embed, dim=-1)
