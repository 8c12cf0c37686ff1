"""Patch aggregator (paper §2.2, DiTAR): turns each patch of latent frames into one input embedding of the backbone.

A learned summary token is prepended to the patch's projected frames; after a small bidirectional transformer, the
summary token's state, projected to the backbone width, is the patch's embedding.
"""

from __future__ import annotations

import torch
from torch import nn

from .configuration import TTSHeadConfig
from .transformer import BidirectionalTransformer

__all__ = ["PatchAggregator"]


class PatchAggregator(nn.Module):
    """``(N, patch_size, latent_dim)`` patches → ``(N, hidden_size)`` backbone input embeddings.

    Args:
        config: the head's configuration (``aggregator_*`` sizes).
        attn_implementation: attention backend of the layers (``"eager"``, ``"sdpa"`` …).
    """

    def __init__(self, config: TTSHeadConfig, attn_implementation: str | None = None) -> None:
        super().__init__()
        width = config.aggregator_hidden_size
        self.input_proj = nn.Linear(config.latent_dim, width)
        self.summary_token = nn.Parameter(torch.empty(width))
        self.transformer = BidirectionalTransformer(config.block_config("aggregator", attn_implementation))
        self.output_proj = nn.Linear(width, config.hidden_size)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Embed ``(N, patch_size, latent_dim)`` patches as ``(N, hidden_size)``."""
        frames = self.input_proj(patches)
        summary = self.summary_token.to(frames.dtype).expand(frames.shape[0], 1, -1)
        states = self.transformer(torch.cat([summary, frames], dim=1))
        return self.output_proj(states[:, 0])
