"""Rotary embedding over (t, h, w) positions and its application to q and k (rotate-half, partial rotary).

:class:`RotaryEmbedding` turns ``(3, B, L)`` positions into ``cos``/``sin`` of shape ``(B, L, rotary_dim)`` following a
layout from :mod:`ming_videorope.layouts`; :func:`apply_rotary` rotates the first ``rotary_dim`` dimensions of each head
and passes the rest through, as a transformers-style attention does with ``apply_rotary_pos_emb``.

Written here rather than taken from transformers because its multimodal rotary classes are tied to one model's config
and layout each (Qwen2-VL sections, Qwen3-VL interleaving); none offers VideoRoPE's low-frequency temporal allocation.
"""

from __future__ import annotations

import torch
from torch import nn

from .layouts import RotaryLayout, frequency_axes


class RotaryEmbedding(nn.Module):
    """Cos/sin tables for 3D (or 1D) positions.

    Args:
        rotary_dim: number of rotated dimensions per head (even), e.g. 64 for Ling-flash-2.0's partial rotary over
            128-dim heads.
        theta: rotary base (Ling-flash-2.0 uses 600000).
        layout: frequency-to-axis allocation, default ``"videorope"``.
        sections: frequencies per (t, h, w); default from :func:`ming_videorope.default_sections`.

    Example:
        >>> rope = RotaryEmbedding(rotary_dim=64, theta=600000.0)
        >>> cos, sin = rope(torch.zeros(1), torch.arange(5)[None])  # 1D positions are accepted too
        >>> cos.shape
        torch.Size([1, 5, 64])
    """

    inv_freq: torch.Tensor
    axes: torch.Tensor

    def __init__(
        self,
        rotary_dim: int,
        theta: float = 10000.0,
        layout: RotaryLayout = "videorope",
        sections: tuple[int, int, int] | None = None,
    ) -> None:
        super().__init__()
        if rotary_dim <= 0 or rotary_dim % 2:
            raise ValueError(f"rotary_dim must be a positive even number, got {rotary_dim}")
        if theta <= 1:
            raise ValueError(f"theta must be > 1, got {theta}")
        self.rotary_dim = rotary_dim
        self.theta = theta
        self.layout = layout
        self.sections = sections
        self.register_buffer("inv_freq", torch.empty(rotary_dim // 2), persistent=False)
        self.register_buffer("axes", torch.empty(rotary_dim // 2, dtype=torch.long), persistent=False)
        self.reset_buffers()

    @torch.no_grad()
    def reset_buffers(self) -> None:
        """(Re)compute the frequency and axis tables in place, e.g. after the module was built on the meta device."""
        exponents = torch.arange(0, self.rotary_dim, 2, dtype=torch.float32, device=self.inv_freq.device)
        self.inv_freq.copy_(1.0 / (self.theta ** (exponents / self.rotary_dim)))
        self.axes.copy_(frequency_axes(self.layout, self.rotary_dim // 2, self.sections))

    def extra_repr(self) -> str:
        return f"rotary_dim={self.rotary_dim}, theta={self.theta}, layout={self.layout!r}"

    @torch.no_grad()
    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(cos, sin)``, each ``(B, L, rotary_dim)`` in ``x.dtype``.

        Args:
            x: any tensor with the dtype and device the result should have (usually the hidden states).
            position_ids: ``(3, B, L)`` (t, h, w) positions, or ``(B, L)`` 1D positions used for all three rows.
        """
        if position_ids.dim() == 2:
            position_ids = position_ids.unsqueeze(0).expand(3, -1, -1)
        if position_ids.dim() != 3 or position_ids.shape[0] != 3:
            raise ValueError(f"position_ids must have shape (3, B, L) or (B, L), got {tuple(position_ids.shape)}")
        device_type = x.device.type if x.device.type != "mps" else "cpu"
        with torch.autocast(device_type=device_type, enabled=False):  # positions × frequencies need fp32
            per_frequency = position_ids.to(x.device, torch.float32).index_select(0, self.axes.to(x.device))
            freqs = per_frequency.permute(1, 2, 0) * self.inv_freq.to(x.device)
            emb = torch.cat((freqs, freqs), dim=-1)
            return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def apply_rotary(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, unsqueeze_dim: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate the first ``cos.shape[-1]`` dimensions of every head of ``q`` and ``k``; the rest pass through.

    Args:
        q: ``(B, heads, L, head_dim)`` (or ``(B, L, heads, head_dim)`` with ``unsqueeze_dim=2``).
        k: like ``q`` (its number of heads may differ, as with grouped-query attention).
        cos: ``(B, L, rotary_dim)`` from :class:`RotaryEmbedding`, ``rotary_dim <= head_dim``.
        sin: like ``cos``.
        unsqueeze_dim: where the heads axis is, so ``cos``/``sin`` broadcast over it.
    """
    rotary_dim = cos.shape[-1]
    if rotary_dim > q.shape[-1] or rotary_dim > k.shape[-1]:
        raise ValueError(f"rotary_dim {rotary_dim} exceeds head_dim (q {q.shape[-1]}, k {k.shape[-1]})")
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)

    def rotate(x: torch.Tensor) -> torch.Tensor:
        rotated, passed = x[..., :rotary_dim], x[..., rotary_dim:]
        return torch.cat((rotated * cos + _rotate_half(rotated) * sin, passed), dim=-1)

    return rotate(q), rotate(k)
