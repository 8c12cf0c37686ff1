"""Bidirectional transformer built from transformers' Qwen2 decoder layers, used by the patch aggregator and the
flow-matching DiT (paper §2.2; DiTAR's aggregator and LocDiT are small bidirectional transformers).

Qwen2 layers (pre-norm RMSNorm, rotary attention, SwiGLU MLP) are reused as they are; only causality is switched off
on each attention module, and padding (missing history frames) is a key mask.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import Qwen2Config
from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer, Qwen2RMSNorm, Qwen2RotaryEmbedding

__all__ = ["BidirectionalTransformer"]


class BidirectionalTransformer(nn.Module):
    """A stack of Qwen2 decoder layers with full (non-causal) attention, rotary positions ``0 … L-1`` and a final
    RMS norm.

    Args:
        config: the layers' ``Qwen2Config`` (see :meth:`ming_tts_head.TTSHeadConfig.block_config`).
    """

    def __init__(self, config: Qwen2Config) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(Qwen2DecoderLayer(config, i) for i in range(config.num_hidden_layers))
        for layer in self.layers:
            layer.self_attn.is_causal = False
        self.rotary_emb = Qwen2RotaryEmbedding(config)
        self.norm = Qwen2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, hidden_states: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, L, width)`` → ``(N, L, width)``; ``key_mask`` ``(N, L)`` is True where a position may be attended
        to (every query must see at least one key)."""
        length = hidden_states.shape[1]
        positions = torch.arange(length, device=hidden_states.device)[None]
        position_embeddings = self.rotary_emb(hidden_states, positions)
        mask = None
        if key_mask is not None and not bool(key_mask.all()):
            # additive float mask: eager adds it, sdpa takes it as attn_mask
            blocked = torch.finfo(hidden_states.dtype).min
            mask = torch.zeros(key_mask.shape, dtype=hidden_states.dtype, device=hidden_states.device)
            mask = mask.masked_fill(~key_mask, blocked)[:, None, None, :].expand(-1, 1, length, -1)
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask=mask, position_embeddings=position_embeddings)
        return self.norm(hidden_states)
