"""Checkpoints of the composed model (paper §2): safetensors shards memory-mapped onto a model built on ``meta``.

transformers' ``from_pretrained`` builds the model on the ``meta`` device and fills it from the memory-mapped
shards (no second copy of the weights), with optional ``dtype`` and accelerate's ``device_map``. Each component
owns its checkpoint layout: the LLM's routed experts are stored per expert as in the original Ling checkpoints
(ming-moe registers that conversion, scoped here to ``model.``); the other components keep their own names under
``vision.``, ``linear_proj.``, ``audio.``, ``talker.`` and ``speech_tokenizer.``. Before anything is read, the
shard headers are checked against the config, and missing or unexpected tensors raise a ``ValueError`` naming them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ming_moe import checkpoint_keys, original_checkpoint_keys

from .configuration import MingOmniConfig

__all__ = ["check_omni_checkpoint", "omni_checkpoint_keys"]

_LLM_PREFIX = "model."


def omni_checkpoint_keys(config: MingOmniConfig) -> set[str]:
    """The tensor names a checkpoint of ``config`` holds (computed on the ``meta`` device): the LLM's in the
    original per-expert layout under ``model.``, every other component's own names under its prefix."""
    from .modeling import MingOmniForConditionalGeneration

    with torch.device("meta"):
        names = MingOmniForConditionalGeneration(config).state_dict().keys()
    keys = {name for name in names if not name.startswith(_LLM_PREFIX)}
    return keys | {_LLM_PREFIX + name for name in original_checkpoint_keys(config.llm_config)}


def check_omni_checkpoint(directory: str | Path, config: MingOmniConfig) -> None:
    """Raise ``ValueError`` listing the missing and unexpected tensors when the ``*.safetensors`` files of
    ``directory`` do not hold exactly the weights of ``config`` (reads the headers only)."""
    found, expected = checkpoint_keys(directory), omni_checkpoint_keys(config)
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {directory} does not match its config: {len(missing)} missing {_first(missing)}, "
            f"{len(unexpected)} unexpected {_first(unexpected)}"
        )


def _first(names: list[str], limit: int = 20) -> str:
    more = f" … and {len(names) - limit} more" if len(names) > limit else ""
    return f"[{', '.join(names[:limit])}{more}]"
