"""Checkpoints of the sharded model with ``torch.distributed.checkpoint`` (DCP), and their conversion to the plain
safetensors layout of the original checkpoints (paper §2: the LLM is trained sharded, shipped as plain files).

Every rank writes its own shards in parallel; DCP records the global shape of each tensor, so a checkpoint written
under one layout loads under any other — 2 ranks to 1, 1 to 64, expert-parallel or not — re-slicing on read. At full
scale no rank can build the whole model, so each builds it on ``meta``, shards it, allocates only its shards and
loads them::

    with torch.device("meta"):
        model = BailingMoeV2ForCausalLM(BailingMoeV2Config.flash())
    shard_model(model, build_device_mesh(ParallelLayout(data_parallel=8, expert_parallel=8), "cuda"))
    materialize_model(model, "cuda")
    load_distributed_checkpoint(checkpoint_dir, model)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint import CheckpointException, DefaultLoadPlanner
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from ming_videorope import RotaryEmbedding

from .configuration import BailingMoeV2Config
from .modeling import BailingMoeV2ForCausalLM
from .moe import SparseMoeBlock


def materialize_model(model: nn.Module, device: str | torch.device) -> nn.Module:
    """Allocate a model built on ``meta`` (sharded or not) on ``device``, uninitialised, and rebuild the buffers no
    checkpoint holds (rotary tables, expert-load counters); load the weights next.

    Returns:
        ``model``.
    """
    model.to_empty(device=device)
    for module in model.modules():
        if isinstance(module, RotaryEmbedding):
            module.reset_buffers()
        elif isinstance(module, SparseMoeBlock):
            module.reset_load()
    return model


def save_distributed_checkpoint(
    directory: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> None:
    """Write ``model`` (and ``optimizer`` state, for resuming) as a DCP checkpoint; call on every rank.

    Works for sharded (FSDP2, expert-parallel) and plain single-process models alike. A checkpoint already in
    ``directory`` is replaced.
    """
    writer = dcp.FileSystemWriter(str(directory), overwrite=True)
    with _single_process_is_fine():
        dcp.save(_state(model, optimizer), storage_writer=writer, no_dist=not dist.is_initialized())


def load_distributed_checkpoint(
    directory: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> None:
    """Load a DCP checkpoint into ``model`` (and ``optimizer``) in place, whatever layout wrote it; call on every
    rank. Missing or mismatched model tensors raise a ``ValueError``."""
    state = _state(model, optimizer)
    no_dist = not dist.is_initialized()
    with _single_process_is_fine():
        try:
            dcp.load({"model": state["model"]}, checkpoint_id=str(directory), no_dist=no_dist)
        except CheckpointException as error:  # a BaseException: say what is wrong as an ordinary error
            problems = sorted({str(exception) for exception, _ in error.failures.values()})
            raise ValueError(f"checkpoint {directory} does not fit the model: {'; '.join(problems)}") from error
        if optimizer is not None:
            saved = dcp.FileSystemReader(str(directory)).read_metadata().state_dict_metadata
            if not any(key.startswith("optimizer.") for key in saved):
                raise ValueError(f"checkpoint {directory} holds no optimizer state (it was saved without optimizer)")
            # Parameters that never had a gradient (e.g. the image router in a text-only run) have no optimizer
            # state in the checkpoint; they keep the fresh one (step 0, zero moments), as they had when saved.
            planner = DefaultLoadPlanner(allow_partial_load=True)
            dcp.load({"optimizer": state["optimizer"]}, checkpoint_id=str(directory), planner=planner, no_dist=no_dist)
    set_state_dict(
        model,
        optimizer if optimizer is not None else [],
        model_state_dict=state["model"],
        optim_state_dict=state.get("optimizer", {}),
    )


def convert_distributed_checkpoint(
    directory: str | Path, output_directory: str | Path, config: BailingMoeV2Config
) -> Path:
    """Turn a DCP checkpoint into a plain ``from_pretrained`` directory (config + safetensors, original layout).

    Runs in this process alone (also on one rank of a distributed job); it holds the whole model in host memory
    (fp32: 4 bytes per parameter, 412 GB for the flash preset).

    Args:
        directory: DCP checkpoint written by :func:`save_distributed_checkpoint`.
        output_directory: where ``save_pretrained`` writes.
        config: the model's configuration.

    Returns:
        ``output_directory``.
    """
    with torch.device("meta"):
        model = BailingMoeV2ForCausalLM(config)
    state = materialize_model(model, "cpu").state_dict()
    with _single_process_is_fine():  # this process alone, even when it is one rank of a running job
        dcp.load({"model": state}, checkpoint_id=str(directory), no_dist=True)
    model.load_state_dict(state)
    model.save_pretrained(output_directory)
    return Path(output_directory)


@contextmanager
def _single_process_is_fine() -> Iterator[None]:
    """DCP warns whenever it runs without a process group; here that is a supported use, not a mistake."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled", category=UserWarning)
        yield


def _state(model: nn.Module, optimizer: torch.optim.Optimizer | None) -> dict:
    model_state, optimizer_state = get_state_dict(model, optimizer if optimizer is not None else [])
    return {"model": model_state} | ({"optimizer": optimizer_state} if optimizer is not None else {})
