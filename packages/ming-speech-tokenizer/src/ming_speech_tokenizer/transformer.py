"""Causal sliding-window transformer shared by the encoder and the decoder (paper §2.2: causal tokenizer).

Pre-norm blocks (RMSNorm, rotary self-attention, GELU MLP) over continuous frames. Each frame attends to the
``attention_window`` frames ending at itself, so a frame never sees the future and the streaming state (the keys and
values of the last ``attention_window − 1`` frames per block) has a fixed size. Rotary positions are relative, so
running the frames in chunks with that state gives the same result as one pass over all of them.

Written here rather than taken from transformers' decoder layers: those expect token embeddings, their mask helpers
and ``Cache`` objects; these stacks take frames directly and their state is a plain list of tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .configuration import SpeechTokenizerConfig

__all__ = ["CausalTransformer", "KVState"]

KVState = list[tuple[torch.Tensor, torch.Tensor]]
"""Per block, the keys and values ``(B, heads, frames, head_dim)`` of the last ``attention_window − 1`` frames."""


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


class _Attention(nn.Module):
    def __init__(self, config: SpeechTokenizerConfig) -> None:
        super().__init__()
        self.heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.out = nn.Linear(config.hidden_size, config.hidden_size, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor,
        past: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        batch, frames, _ = x.shape
        q, k, v = self.qkv(x).view(batch, frames, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        if past is not None:
            k = torch.cat((past[0], k), dim=2)
            v = torch.cat((past[1], v), dim=2)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(attended.transpose(1, 2).reshape(batch, frames, -1)), (k, v)


class _Block(nn.Module):
    def __init__(self, config: SpeechTokenizerConfig) -> None:
        super().__init__()
        self.attention_norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.attention = _Attention(config)
        self.mlp_norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.mlp = nn.Sequential(
            nn.Linear(config.hidden_size, config.intermediate_size),
            nn.GELU(),
            nn.Linear(config.intermediate_size, config.hidden_size),
        )

    def forward(self, x, cos, sin, mask, past):
        attended, present = self.attention(self.attention_norm(x), cos, sin, mask, past)
        x = x + attended
        return x + self.mlp(self.mlp_norm(x)), present


class CausalTransformer(nn.Module):
    """A stack of ``num_layers`` causal sliding-window blocks and a final RMSNorm, ``(B, T, hidden) → same``.

    Call it on all frames (``state=None``, ``start=0``), or chunk by chunk passing back the returned state and the
    index of the chunk's first frame: the outputs are the same up to float rounding.
    """

    def __init__(self, config: SpeechTokenizerConfig, num_layers: int) -> None:
        super().__init__()
        self.window = config.attention_window
        self.blocks = nn.ModuleList(_Block(config) for _ in range(num_layers))
        self.norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        head_dim = config.hidden_size // config.num_attention_heads
        self.register_buffer(
            "inv_freq",
            1.0 / config.rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim),
            persistent=False,
        )

    def reset_buffers(self, theta: float) -> None:
        """Recompute the rotary frequencies (a non-persistent buffer, left empty when built on ``meta``)."""
        head_dim = self.inv_freq.numel() * 2
        self.inv_freq = 1.0 / theta ** (
            torch.arange(0, head_dim, 2, dtype=torch.float32, device=self.inv_freq.device) / head_dim
        )

    def forward(self, x: torch.Tensor, state: KVState | None = None, start: int = 0) -> tuple[torch.Tensor, KVState]:
        """Returns the output frames and the state to pass with the next chunk (whose ``start`` is ``start + T``)."""
        frames = x.shape[1]
        cached = 0 if state is None else state[0][0].shape[2]
        positions = torch.arange(start, start + frames, device=x.device)
        # float64 angles: in float32, position × frequency loses whole radians after hours of streaming
        angles = positions.double()[:, None] * self.inv_freq.double()[None, :]
        angles = torch.cat((angles, angles), dim=-1)
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        key_positions = torch.arange(start - cached, start + frames, device=x.device)
        distance = positions[:, None] - key_positions[None, :]
        mask = (distance >= 0) & (distance < self.window)
        new_state: KVState = []
        for i, block in enumerate(self.blocks):
            x, (k, v) = block(x, cos, sin, mask, None if state is None else state[i])
            first_kept = max(0, k.shape[2] - (self.window - 1))
            new_state.append((k[:, :, first_kept:], v[:, :, first_kept:]))
        return self.norm(x), new_state
