"""Key names of the original Ming-Flash-Omni checkpoints, composed from the components' tables.

The released ``BailingMM2NativeForConditionalGeneration`` (inclusionAI/Ming ``modeling_bailingmm2.py``) holds
``vision`` (its copy of the Qwen2.5-VL vision transformer: the same parameter names as transformers'), ``model``
(the BailingMoeV2 LLM), ``linear_proj`` (``nn.Sequential(Linear, GELU, Linear)``), ``audio`` (a Whisper encoder in
OpenAI's naming) and ``linear_proj_audio`` (``nn.Sequential(Conv1d, Transpose, GELU, Linear, Transpose)``). Each
component owns the names of its part (ming-moe the LLM's per-expert layout, ming-contextasr the audio encoder and
projector, ming-tts-head the talker's backbone and stop head); this module only places them under their prefixes
(:data:`ORIGINAL_NAMES`), and registers the renaming with transformers so that ``save_pretrained`` writes the
original names and ``from_pretrained`` reads them. The talker and speech tokenizer are stored under ``talker.`` and
``speech_tokenizer.`` in the same shards (the original keeps its talker in a ``talker/`` folder of its own).
"""

from __future__ import annotations

import re

from transformers.conversion_mapping import register_checkpoint_conversion_mapping
from transformers.core_model_loading import WeightRenaming

from ming_contextasr import ORIGINAL_AUDIO_ENCODER_NAMES, ORIGINAL_AUDIO_PROJECTOR_NAMES
from ming_tts_head import ORIGINAL_TALKER_NAMES

__all__ = ["ORIGINAL_NAMES", "from_original_name", "to_original_name"]

VISION_PROJECTOR_NAMES: tuple[tuple[str, str], ...] = (("0.", "fc1."), ("2.", "fc2."))
"""(original ``linear_proj.`` name, :class:`~ming_omni.VisionProjector` name) pairs."""

_PARTS = (
    # original prefix, our prefix, the owner's (original, ours) pairs
    ("linear_proj.", "linear_proj.", VISION_PROJECTOR_NAMES),
    ("audio.", "audio.", ORIGINAL_AUDIO_ENCODER_NAMES),
    ("linear_proj_audio.", "audio.", ORIGINAL_AUDIO_PROJECTOR_NAMES),
    ("talker.", "talker.", ORIGINAL_TALKER_NAMES),
)

ORIGINAL_NAMES: tuple[tuple[str, str], ...] = tuple(
    (original_prefix + original, ours_prefix + ours)
    for original_prefix, ours_prefix, pairs in _PARTS
    for original, ours in pairs
    if original_prefix + original != ours_prefix + ours
)
"""(original, ours) name prefixes of the composed model; ``*`` is a layer index. Every other name (``vision.``,
``model.`` up to ming-moe's per-expert split, ``speech_tokenizer.``, the talker's flow head and aggregator) is the
same in both."""


def _pattern(template: str) -> str:
    """A template → an anchored regex: ``*`` captures a layer index; a name that ends in a word ends there."""
    pattern = "^" + re.escape(template).replace(r"\*", r"(\d+)")
    return pattern + r"(?!\w)" if template[-1].isalnum() else pattern


def _compiled(pairs: tuple[tuple[str, str], ...]) -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(_pattern(source)), target) for source, target in pairs]


_TO_OURS = _compiled(ORIGINAL_NAMES)
_TO_ORIGINAL = _compiled(tuple((ours, original) for original, ours in ORIGINAL_NAMES))


def _rename(name: str, rules: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, target in rules:
        match = pattern.match(name)
        if match is not None:
            return (target.replace("*", match.group(1)) if match.groups() else target) + name[match.end() :]
    return name


def to_original_name(name: str) -> str:
    """A state-dict name of :class:`~ming_omni.MingOmniForConditionalGeneration` → its name in the original
    layout (the LLM's stacked experts excepted: ming-moe splits those per expert)."""
    return _rename(name, _TO_ORIGINAL)


def from_original_name(name: str) -> str:
    """A tensor name of an original-layout checkpoint → the model's state-dict name (per-expert LLM names stay)."""
    return _rename(name, _TO_OURS)


def _weight_renamings() -> list[WeightRenaming]:
    """The same pairs as transformers renamings (checkpoint name → model name), one capture group at most."""
    return [WeightRenaming(_pattern(original), ours.replace("*", r"\1")) for original, ours in ORIGINAL_NAMES]


def register_original_layout(model_type: str) -> None:
    """Make transformers' ``from_pretrained`` / ``save_pretrained`` of ``model_type`` read / write the names."""
    register_checkpoint_conversion_mapping(model_type, _weight_renamings(), overwrite=True)
