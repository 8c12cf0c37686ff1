"""Rotary layouts: which position row (t, h or w) drives each rotary frequency (VideoRoPE §3, "LTA").

A rotary part of ``rotary_dim`` dimensions has ``rotary_dim // 2`` frequencies, ``θ^(−2i/rotary_dim)`` for
``i = 0 … n−1`` — index 0 is the highest frequency. A layout maps every frequency index to an axis:

- ``"videorope"`` (Low-frequency Temporal Allocation): the temporal axis takes the *lowest* frequencies (the last
  ``n_t`` indices), where long-range periodic oscillation cannot mislead attention across frames; h and w interleave
  (h, w, h, w, …) over the higher frequencies.
- ``"mrope"`` (Qwen2-VL): contiguous sections, t on the highest frequencies, then h, then w.
- ``"mrope_interleaved"`` (Qwen3-VL): t, h, w interleaved from the highest frequency on, until h and w have their
  share; the remaining (lowest) frequencies go to t.
- ``"rope1d"``: every frequency reads the temporal row — ordinary RoPE when the three rows are equal.

Whatever the layout, tokens whose three rows are equal (text, audio) are rotated exactly as by 1D RoPE.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

RotaryLayout = Literal["videorope", "mrope", "mrope_interleaved", "rope1d"]
"""Name of a frequency-to-axis allocation; see :func:`frequency_axes`."""

AXIS_T, AXIS_H, AXIS_W = 0, 1, 2


def default_sections(n_frequencies: int, layout: RotaryLayout = "videorope") -> tuple[int, int, int]:
    """Frequencies per (t, h, w) axis when none are given.

    ``"videorope"`` and ``"mrope"``: h and w get equal shares of three quarters, t the rest — Qwen2-VL's
    ``(16, 24, 24)`` for 64 frequencies (head dim 128 fully rotated) and ``(8, 12, 12)`` for 32 (the first 64 of 128
    dims, as in Ling-flash-2.0). ``"mrope_interleaved"``: h and w get 5/16 each — Qwen3-VL's ``(24, 20, 20)`` for 64.
    """
    if n_frequencies < 3:
        raise ValueError(f"a 3D layout needs at least 3 frequencies, got {n_frequencies}")
    if layout == "mrope_interleaved":
        spatial = max(1, n_frequencies * 5 // 16)
    else:
        spatial = (n_frequencies - max(1, n_frequencies // 4)) // 2
    return n_frequencies - 2 * spatial, spatial, spatial


def frequency_axes(
    layout: RotaryLayout, n_frequencies: int, sections: tuple[int, int, int] | None = None
) -> torch.Tensor:
    """The axis (0 = t, 1 = h, 2 = w) that drives each of the ``n_frequencies`` rotary frequencies.

    Args:
        layout: one of ``"videorope"``, ``"mrope"``, ``"mrope_interleaved"``, ``"rope1d"``.
        n_frequencies: ``rotary_dim // 2``.
        sections: frequencies per (t, h, w); defaults to :func:`default_sections`. Ignored by ``"rope1d"``.

    Returns:
        ``(n_frequencies,)`` long tensor of axis indices.
    """
    if layout not in get_args(RotaryLayout):
        raise ValueError(f"layout must be one of {get_args(RotaryLayout)}, got {layout!r}")
    if layout == "rope1d":
        return torch.zeros(n_frequencies, dtype=torch.long)
    n_t, n_h, n_w = sections if sections is not None else default_sections(n_frequencies, layout)
    if min(n_t, n_h, n_w) < 0 or n_t + n_h + n_w != n_frequencies:
        raise ValueError(
            f"sections must be three non-negative counts summing to {n_frequencies} frequencies, got {sections}"
        )
    if layout == "mrope":
        return torch.tensor([AXIS_T] * n_t + [AXIS_H] * n_h + [AXIS_W] * n_w, dtype=torch.long)
    if layout == "mrope_interleaved":
        axes = torch.full((n_frequencies,), AXIS_T, dtype=torch.long)
        index = torch.arange(n_frequencies)
        axes[(index % 3 == 1) & (index < 3 * n_h)] = AXIS_H
        axes[(index % 3 == 2) & (index < 3 * n_w)] = AXIS_W
        if (axes == AXIS_H).sum() != n_h or (axes == AXIS_W).sum() != n_w:
            raise ValueError(f"mrope_interleaved needs h and w sections of at most a third each, got {sections}")
        return axes
    if n_h != n_w:
        raise ValueError(f"videorope interleaves h and w, so their sections must be equal, got {sections}")
    spatial = torch.tensor([AXIS_H, AXIS_W], dtype=torch.long).repeat(n_h)
    return torch.cat([spatial, torch.full((n_t,), AXIS_T, dtype=torch.long)])
