"""ming-videorope: VideoRoPE positions and rotary layouts for Ming-Flash-Omni (paper §2.1; Wei et al. 2025).

- :func:`get_position_ids` builds (t, h, w) position ids for interleaved text / image / video / audio batches with
  VideoRoPE's diagonal layout and adjustable temporal spacing (or M-RoPE / 1D conventions), with padding and packing.
- :func:`get_decode_position_ids` continues them during decoding from the returned ``rope_deltas``.
- :class:`RotaryEmbedding` + :func:`apply_rotary` rotate q and k with a chosen frequency layout (VideoRoPE's
  low-frequency temporal allocation, M-RoPE, interleaved M-RoPE, 1D), partial rotary included.
"""

from .layouts import RotaryLayout, default_sections, frequency_axes
from .modality import Modality
from .positions import (
    PositionIds,
    PositionStyle,
    get_decode_position_ids,
    get_position_ids,
    temporal_spacing_from_seconds,
)
from .rotary import RotaryEmbedding, apply_rotary

__all__ = [
    "Modality",
    "PositionIds",
    "PositionStyle",
    "RotaryEmbedding",
    "RotaryLayout",
    "apply_rotary",
    "default_sections",
    "frequency_axes",
    "get_decode_position_ids",
    "get_position_ids",
    "temporal_spacing_from_seconds",
]

__version__ = "0.1.0"
