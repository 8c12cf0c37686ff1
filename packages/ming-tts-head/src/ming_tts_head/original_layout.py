"""Names of the talker in the original Ming-Flash-Omni checkpoints, as far as they correspond to this head.

The released talker is its own checkpoint (``talker/model*.safetensors``) with top-level modules ``model``
(transformers' ``Qwen2Model``), ``cfm`` (the flow-matching DiT), ``aggregator``, ``stop_head`` and ``spk_head``.
The backbone and the stop head are the same modules here (``backbone``, ``stop_head``); this package's flow head and
aggregator are built from Qwen2 blocks and do not share the original DiT blocks' parameters, so their names (and
``speech_start``) have no original counterpart and stay as they are.
"""

from __future__ import annotations

__all__ = ["ORIGINAL_TALKER_NAMES"]

ORIGINAL_TALKER_NAMES: tuple[tuple[str, str], ...] = (
    ("model.", "backbone."),
    ("stop_head.", "stop_head."),
)
"""(original name in the talker checkpoint, name in :class:`~ming_tts_head.TTSHeadModel`) prefix pairs."""
