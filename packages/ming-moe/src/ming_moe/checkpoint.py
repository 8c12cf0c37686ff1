"""Checkpoint layout of the original Ling / Ming-Flash-Omni weights, registered with transformers' weight conversion.

The original checkpoints store each routed expert separately (``mlp.experts.{j}.gate_proj/up_proj/down_proj.weight``);
this package stacks them (``mlp.experts.gate_up_proj`` = ``[gate; up]`` per expert, ``mlp.experts.down_proj``). All
other names are the same (``word_embeddings``, ``attention.query_key_value``, ``mlp.gate.expert_bias`` …).
Registering the mapping makes ``from_pretrained`` read the original layout, and ``save_pretrained`` write it back.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from transformers.conversion_mapping import register_checkpoint_conversion_mapping
from transformers.core_model_loading import Concatenate, MergeModulelist, WeightConverter

from .configuration import BailingMoeV2Config

ORIGINAL_LAYOUT = [
    WeightConverter(
        source_patterns=["mlp.experts.*.gate_proj.weight", "mlp.experts.*.up_proj.weight"],
        target_patterns="mlp.experts.gate_up_proj",
        operations=[MergeModulelist(dim=0), Concatenate(dim=1)],
    ),
    WeightConverter(
        source_patterns="mlp.experts.*.down_proj.weight",
        target_patterns="mlp.experts.down_proj",
        operations=[MergeModulelist(dim=0)],
    ),
]
"""The per-expert ↔ stacked conversion (transformers ``WeightConverter`` s)."""

register_checkpoint_conversion_mapping(BailingMoeV2Config.model_type, ORIGINAL_LAYOUT, overwrite=True)


def checkpoint_keys(directory: str | Path) -> set[str]:
    """Names of the tensors stored in the ``*.safetensors`` files of a local checkpoint directory (headers only)."""
    files = sorted(Path(directory).glob("*.safetensors"))
    if not files:
        raise ValueError(f"no *.safetensors files in {directory} (only safetensors checkpoints are read)")
    keys: set[str] = set()
    for file in files:
        with safe_open(file, framework="pt") as handle:
            keys.update(handle.keys())
    return keys


def original_checkpoint_keys(config: BailingMoeV2Config) -> set[str]:
    """The tensor names a checkpoint in the original layout holds for ``config`` (computed on the meta device)."""
    with torch.device("meta"):
        from .modeling import BailingMoeV2ForCausalLM

        names = list(BailingMoeV2ForCausalLM(config).state_dict())
    keys: set[str] = set()
    for name in names:
        if name.endswith("experts.gate_up_proj") or name.endswith("experts.down_proj"):
            prefix, kind = name.rsplit(".", 1)
            projections = ("gate_proj", "up_proj") if kind == "gate_up_proj" else ("down_proj",)
            keys.update(f"{prefix}.{j}.{p}.weight" for j in range(config.num_experts) for p in projections)
        else:
            keys.add(name)
    return keys


def check_checkpoint(directory: str | Path, config: BailingMoeV2Config) -> None:
    """Raise ``ValueError`` listing missing and unexpected tensors when ``directory`` does not hold exactly the
    original-layout weights of ``config``."""
    found, expected = checkpoint_keys(directory), original_checkpoint_keys(config)
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {directory} does not match the config: {len(missing)} missing {_listed(missing)}, "
            f"{len(unexpected)} unexpected {_listed(unexpected)}"
        )


def _listed(names: list[str], limit: int = 50) -> str:
    shown = ", ".join(names[:limit])
    return f"[{shown}{f', … and {len(names) - limit} more' if len(names) > limit else ''}]"
