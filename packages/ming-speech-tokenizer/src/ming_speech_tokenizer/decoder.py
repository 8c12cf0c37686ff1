"""Causal decoder of the speech tokenizer (paper §2.2: the VAE's decoder, a generator trained adversarially).

Latent frames → linear projection → causal transformer → Vocos-style ISTFT head → waveform, ``hop_length`` samples
per latent frame.
"""

from __future__ import annotations

import torch
from torch import nn

from .configuration import SpeechTokenizerConfig
from .istft_head import ISTFTHead
from .transformer import CausalTransformer, KVState

__all__ = ["SpeechDecoder"]


class SpeechDecoder(nn.Module):
    """``(B, T, latent_dim)`` latents → ``(B, T, hidden)`` decoder states (:meth:`forward`) → waveform via ``head``."""

    def __init__(self, config: SpeechTokenizerConfig) -> None:
        super().__init__()
        self.from_latent = nn.Linear(config.latent_dim, config.hidden_size)
        self.transformer = CausalTransformer(config, config.decoder_layers)
        self.head = ISTFTHead(config)

    def forward(
        self, latents: torch.Tensor, state: KVState | None = None, start: int = 0
    ) -> tuple[torch.Tensor, KVState]:
        """Decoder states of ``latents`` (continuing a previous chunk through ``state`` / ``start``)."""
        hidden = self.from_latent(latents.to(self.from_latent.weight.dtype))
        return self.transformer(hidden, state, start)
