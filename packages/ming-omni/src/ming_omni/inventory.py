"""Parameter inventory of the composed model (paper §2): total and active parameters per component.

Active means used for one token: the LLM's routed experts count ``top_k / num_experts`` of their size and only one
of its per-modality routers counts (each token goes through one); everything else is dense. Built on the ``meta``
device, so the flash preset (about 110 B parameters in all) costs no memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ming_imagegen import flash_components
from ming_moe import GroupLimitedRouter, MoeExperts

from .configuration import MingOmniConfig
from .modeling import MingOmniForConditionalGeneration

__all__ = ["ComponentParameters", "format_inventory", "parameter_inventory", "preset_inventory"]

_MODEL_PARTS = {
    "vision": "vision tower (Qwen2.5-VL)",
    "linear_proj": "vision projector",
    "audio": "audio encoder + projector (Whisper)",
    "model": "LLM (BailingMoeV2)",
    "talker": "talker (TTS head)",
    "speech_tokenizer": "speech tokenizer",
}


@dataclass(frozen=True)
class ComponentParameters:
    """Parameters of one component.

    Attributes:
        name: the component.
        total: all its parameters.
        active: those used for one token.
    """

    name: str
    total: int
    active: int


def _llm_active(llm: nn.Module) -> int:
    total = sum(p.numel() for p in llm.parameters())
    top_k, experts = llm.config.num_experts_per_tok, llm.config.num_experts
    inactive = 0
    for module in llm.modules():
        if isinstance(module, MoeExperts):
            routed = sum(p.numel() for p in module.parameters())
            inactive += routed - routed * top_k // experts
    for block in llm.modules():
        routers = [m for m in block.children() if isinstance(m, GroupLimitedRouter)]
        inactive += sum(p.numel() for r in routers[1:] for p in r.parameters())
    return total - inactive


def parameter_inventory(
    model: MingOmniForConditionalGeneration, image_generator: Mapping[str, nn.Module] | None = None
) -> list[ComponentParameters]:
    """Total and active parameters of each component of ``model`` (and of the image generator's modules, by name).

    Returns:
        One row per component, then a ``"total"`` row.
    """
    rows = []
    for attribute, name in _MODEL_PARTS.items():
        part = getattr(model, attribute)
        total = sum(p.numel() for p in part.parameters())
        rows.append(ComponentParameters(name, total, _llm_active(part) if attribute == "model" else total))
    for name, module in (image_generator or {}).items():
        if isinstance(module, nn.Module):
            total = sum(p.numel() for p in module.parameters())
            rows.append(ComponentParameters(f"image generator: {name}", total, total))
    rows.append(ComponentParameters("total", sum(r.total for r in rows), sum(r.active for r in rows)))
    return rows


def preset_inventory(preset: Literal["flash", "tiny"] = "flash") -> list[ComponentParameters]:
    """:func:`parameter_inventory` of a preset built on ``meta``: ``"flash"`` includes ming-imagegen's
    ``flash_components()``; ``"tiny"`` is the model alone."""
    if preset not in ("flash", "tiny"):
        raise ValueError(f"preset must be 'flash' or 'tiny', got {preset!r}")
    config = MingOmniConfig.flash() if preset == "flash" else MingOmniConfig.tiny()
    with torch.device("meta"):
        model = MingOmniForConditionalGeneration(config)
        image = flash_components(config.llm_config.hidden_size) if preset == "flash" else None
    return parameter_inventory(model, image)


def format_inventory(rows: list[ComponentParameters]) -> str:
    """A plain-text table of an inventory, in billions (or millions when small)."""
    scale, unit = (1e9, "B") if rows[-1].total >= 1e9 else (1e6, "M")
    width = max(len(r.name) for r in rows)
    lines = [f"{'component':<{width}}  {'total':>12}  {'active':>12}"]
    for row in rows:
        if row.name == "total":
            lines.append("-" * len(lines[0]))
        lines.append(f"{row.name:<{width}}  {row.total / scale:>11.3f}{unit}  {row.active / scale:>11.3f}{unit}")
    return "\n".join(lines)
