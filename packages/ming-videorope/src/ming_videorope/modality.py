"""Token modalities: the per-token type ids that position builders and per-modality routers read."""

from __future__ import annotations

from enum import IntEnum


class Modality(IntEnum):
    """What a token is. The integer values are the ids expected in ``modality_ids`` tensors.

    Text and audio tokens advance positions one by one; image and video tokens are laid out on their
    (T, H, W) grid (see :func:`ming_videorope.get_position_ids`).
    """

    TEXT = 0
    IMAGE = 1
    VIDEO = 2
    AUDIO = 3
