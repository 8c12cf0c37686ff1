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
from safetensors import safe_open

from ming_moe import original_checkpoint_keys

from .configuration import MingOmniConfig

__all__ = ["check_omni_checkpoint", "omni_checkpoint_keys", "omni_checkpoint_shapes"]

_LLM_PREFIX = "model."


def omni_checkpoint_shapes(config: MingOmniConfig) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor a checkpoint of ``config`` holds (computed on the ``meta`` device): the LLM's
    in the original per-expert layout under ``model.`` (ming-moe's key list), every other component's own names
    under its prefix."""
    from .modeling import MingOmniForConditionalGeneration

    with torch.device("meta"):
        state = MingOmniForConditionalGeneration(config).state_dict()
    shapes = {name: tuple(value.shape) for name, value in state.items() if not name.startswith(_LLM_PREFIX)}
    llm = {name: tuple(value.shape) for name, value in state.items() if name.startswith(_LLM_PREFIX)}
    for key in original_checkpoint_keys(config.llm_config):
        name = _LLM_PREFIX + key
        if name in llm:
            shapes[name] = llm[name]
            continue
        # a per-expert weight: its stacked parameter is (experts, 2·I, H) for gate+up, (experts, H, I) for down
        prefix, _, projection, _ = name.rsplit(".", 3)
        stacked = llm[f"{prefix}.gate_up_proj" if projection != "down_proj" else f"{prefix}.down_proj"]
        rows = stacked[1] // 2 if projection != "down_proj" else stacked[1]
        shapes[name] = (rows, stacked[2])
    return shapes


def omni_checkpoint_keys(config: MingOmniConfig) -> set[str]:
    """The tensor names a checkpoint of ``config`` holds (see :func:`omni_checkpoint_shapes`)."""
    return set(omni_checkpoint_shapes(config))


def check_omni_checkpoint(directory: str | Path, config: MingOmniConfig) -> None:
    """Raise ``ValueError`` naming the missing, unexpected and wrongly shaped tensors when the ``*.safetensors``
    files of ``directory`` do not hold exactly the weights of ``config`` (reads the headers only)."""
    found = _stored_shapes(directory)
    expected = omni_checkpoint_shapes(config)
    missing, unexpected = sorted(expected.keys() - found.keys()), sorted(found.keys() - expected.keys())
    wrong = sorted(
        f"{name} {list(found[name])} (expected {list(shape)})"
        for name, shape in expected.items()
        if name in found and found[name] != shape
    )
    if missing or unexpected or wrong:
        raise ValueError(
            f"checkpoint {directory} does not match its config: {len(missing)} missing {_first(missing)}, "
            f"{len(unexpected)} unexpected {_first(unexpected)}, {len(wrong)} with another shape {_first(wrong)}"
        )


def _stored_shapes(directory: str | Path) -> dict[str, tuple[int, ...]]:
    files = sorted(Path(directory).glob("*.safetensors"))
    if not files:
        raise ValueError(f"no *.safetensors files in {directory} (only safetensors checkpoints are read)")
    shapes = {}
    for file in files:
        with safe_open(file, framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open handles are not iterable)
                shapes[key] = tuple(handle.get_slice(key).get_shape())
    return shapes


def _first(names: list[str], limit: int = 20) -> str:
    more = f" … and {len(names) - limit} more" if len(names) > limit else ""
    return f"[{', '.join(names[:limit])}{more}]"
