"""Checkpoints of the composed model (paper §2): safetensors shards memory-mapped onto a model built on ``meta``.

Two loaders. transformers' ``from_pretrained`` (:meth:`MingOmniForConditionalGeneration.from_pretrained`) gives
``dtype`` casts and accelerate's ``device_map``; it peaks at about twice the checkpoint's size in RSS (see the
benchmark): the mapped shard pages stay resident while it runs and the per-expert tensors are copied before being
stacked. :func:`load_checkpoint` is the low-memory path: each parameter is allocated once, filled straight from the
memory-mapped shard (per-expert tensors into their slice of the stacked parameter) and the shard's pages are
released as soon as they are copied, so the peak stays near the checkpoint's size.

Checkpoints use the original Ming-Omni key names (:mod:`ming_omni.original_layout`): the LLM's routed experts stored
per expert under ``model.`` (ming-moe's conversion), the vision tower under ``vision.``, its projector as
``linear_proj.{0,2}``, the Whisper encoder in OpenAI's naming under ``audio.`` and its projector as
``linear_proj_audio.{0,3}`` (ming-contextasr's table), the talker's backbone as ``talker.model.`` (ming-tts-head's
table); ``save_pretrained`` writes them and both loaders read them. Before anything is read, the shard headers are
checked against the config, and missing, unexpected or mis-shaped tensors raise a ``ValueError`` naming them.
"""

from __future__ import annotations

import json
import mmap
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import safe_open

from ming_moe import original_checkpoint_keys

from .configuration import MingOmniConfig
from .original_layout import from_original_name, to_original_name

if TYPE_CHECKING:
    from .modeling import MingOmniForConditionalGeneration

__all__ = ["check_omni_checkpoint", "load_checkpoint", "omni_checkpoint_keys", "omni_checkpoint_shapes"]

_LLM_PREFIX = "model."
_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def omni_checkpoint_shapes(config: MingOmniConfig) -> dict[str, tuple[int, ...]]:
    """Original-layout name → shape of every tensor a checkpoint of ``config`` holds (computed on the ``meta``
    device): the LLM's per expert under ``model.`` (ming-moe's key list), every other component's under the name
    :func:`~ming_omni.original_layout.to_original_name` gives it."""
    from .modeling import MingOmniForConditionalGeneration

    with torch.device("meta"):
        state = MingOmniForConditionalGeneration(config).state_dict()
    shapes = {
        to_original_name(name): tuple(value.shape) for name, value in state.items() if not name.startswith(_LLM_PREFIX)
    }
    llm = {name: tuple(value.shape) for name, value in state.items() if name.startswith(_LLM_PREFIX)}
    for key in original_checkpoint_keys(config.llm_config):
        name = _LLM_PREFIX + key
        if name in llm:
            shapes[name] = llm[name]
            continue
        target, _ = _expert_target(name)
        stacked = llm[target]
        shapes[name] = (stacked[1] // 2 if target.endswith("gate_up_proj") else stacked[1], stacked[2])
    return shapes


def _expert_target(name: str) -> tuple[str, tuple[int, int]]:
    """A per-expert weight ``….experts.{j}.{gate,up,down}_proj.weight`` → (its stacked parameter, (expert, half)):
    gate rows are the first half of ``gate_up_proj``, up rows the second (ming-moe's stacked layout)."""
    prefix, expert, projection, _ = name.rsplit(".", 3)
    if projection == "down_proj":
        return f"{prefix}.down_proj", (int(expert), -1)
    return f"{prefix}.gate_up_proj", (int(expert), 0 if projection == "gate_proj" else 1)


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


def load_checkpoint(
    directory: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> MingOmniForConditionalGeneration:
    """Load an original-layout checkpoint (as ``save_pretrained`` writes it) with a peak memory near its size.

    Args:
        directory: a local checkpoint directory.
        device: where the weights go.
        dtype: build the model in this dtype (weights are cast while copied; what a component creates in another
            dtype on purpose, such as ming-moe's fp32 routers, stays so), as ``from_pretrained(dtype=…)`` does.
            None: the stored dtypes.

    Non-persistent buffers (rotary tables …) are rebuilt by the components' own initialisation.

    Raises:
        ValueError: not a local directory, or the shards do not hold exactly the config's weights (named).

    Returns:
        The :class:`~ming_omni.MingOmniForConditionalGeneration`, in evaluation mode.
    """
    from .modeling import MingOmniForConditionalGeneration

    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a local directory (checkpoints are never downloaded)")
    config = MingOmniConfig.from_pretrained(directory)
    check_omni_checkpoint(directory, config)
    default = torch.get_default_dtype()
    try:
        torch.set_default_dtype(dtype or default)
        with torch.device("meta"):
            model = MingOmniForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(default)
    stored = {}
    for file in sorted(directory.glob("*.safetensors")):
        with safe_open(file, framework="pt") as handle:
            stored.update(
                {from_original_name(key): _DTYPES[handle.get_slice(key).get_dtype()] for key in handle.keys()}  # noqa: SIM118
            )
    state = model.state_dict(keep_vars=True)
    targets = {}
    for name, tensor in state.items():
        kind = tensor.dtype
        if dtype is None and name in stored:
            kind = stored[name]
        elif dtype is None and name.endswith(("gate_up_proj", "down_proj")):
            expert = f"{name.rsplit('.', 1)[0]}.0.{'down_proj' if name.endswith('down_proj') else 'gate_proj'}.weight"
            kind = stored[expert]
        targets[name] = torch.empty(tensor.shape, dtype=kind, device=device)
    for file in sorted(directory.glob("*.safetensors")):
        _fill_from_shard(file, targets)
    model.load_state_dict(targets, strict=True, assign=True)
    # rebuild what checkpoints do not hold (non-persistent buffers) with the components' own init, sparing the weights
    for tensor in model.state_dict(keep_vars=True).values():
        tensor._is_hf_initialized = True
    for module in model.modules():
        module.__dict__.pop("_is_hf_initialized", None)
    for module in model.modules():
        for name, buffer in module.named_buffers(recurse=False):
            if buffer is not None and buffer.is_meta:
                module._buffers[name] = torch.zeros_like(buffer, device=device)
    model.initialize_weights()
    return model.eval()


def _fill_from_shard(file: Path, targets: dict[str, torch.Tensor]) -> None:
    """Copy every tensor of one shard into its target (or its expert's slice), dropping the shard's mapped pages
    after each copy so they do not stay in the process's resident memory."""
    with open(file, "rb") as raw:
        header_size = int.from_bytes(raw.read(8), "little")
        header = json.loads(raw.read(header_size))
        header.pop("__metadata__", None)
        mapped = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ)
    base = 8 + header_size
    try:
        for key, entry in header.items():
            start, end = entry["data_offsets"]
            dtype = _DTYPES[entry["dtype"]]
            with warnings.catch_warnings():  # read-only mapping: the view is only read from
                warnings.simplefilter("ignore", UserWarning)
                source = torch.frombuffer(mapped, dtype=torch.uint8, count=end - start, offset=base + start)
            source = source.view(dtype).view(entry["shape"])
            name = from_original_name(key)
            if name in targets:
                targets[name].copy_(source)
            else:
                name, (expert, half) = _expert_target(key)
                stacked = targets[name][expert]
                if half >= 0:
                    rows = stacked.shape[0] // 2
                    stacked = stacked[half * rows : (half + 1) * rows]
                stacked.copy_(source)
            del source
            page = mmap.PAGESIZE
            first = (base + start) // page * page
            mapped.madvise(mmap.MADV_DONTNEED, first, base + end - first)
    finally:
        mapped.close()
