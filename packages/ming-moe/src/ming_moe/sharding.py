"""Sharded training of the MoE LLM: FSDP2 (``torch.distributed.fsdp.fully_shard``) for the dense parts composed with
expert parallelism for the routed experts, over a 2-D device mesh (paper §2: the 103 B-parameter model is trained on
many accelerators).

The mesh is ``(dp, ep)``: ``ep`` consecutive ranks form an expert-parallel group (each holds ``E / ep`` experts per
layer, see :mod:`ming_moe.expert_parallel`), and the ``dp`` groups hold the same experts on different data. Every rank
reads its own batch. Sharding:

- routed experts: split over ``ep``, and FSDP-sharded over ``dp`` (their own FSDP unit per layer);
- everything else (embeddings, attention, norms, routers, shared experts, layer 0's dense MLP, LM head):
  FSDP-sharded over all ``dp × ep`` ranks, one unit per decoder layer plus the root.

Gradients are averaged over all ranks, the gradient of the mean of the ranks' losses: FSDP averages the dense
gradients over the world; an expert's gradient already sums the contributions of its whole ep group (they come back
through the all-to-all), so its unit sums over ``dp`` and divides by the world size.
"""

from __future__ import annotations

import torch.distributed as dist
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from .expert_parallel import apply_expert_parallel
from .modeling import BailingMoeV2DecoderLayer
from .moe import SparseMoeBlock

MESH_DIMS = ("dp", "ep")
"""Names of the device-mesh dimensions built by :func:`build_device_mesh`: data parallel, expert parallel."""


class ParallelLayout(BaseModel):
    """How many ranks, and how they split the model.

    Attributes:
        data_parallel: ``dp``, groups holding the same experts (each rank of the world still reads its own data).
        expert_parallel: ``ep``, ranks that split each layer's experts; must divide ``num_experts``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_parallel: int = Field(1, ge=1)
    expert_parallel: int = Field(1, ge=1)

    @property
    def world_size(self) -> int:
        """``dp × ep``: the number of ranks (processes, accelerators)."""
        return self.data_parallel * self.expert_parallel


def build_device_mesh(layout: ParallelLayout, device_type: str = "cpu") -> DeviceMesh:
    """The ``(dp, ep)`` device mesh of ``layout`` over the initialised default process group.

    Args:
        layout: parallel sizes; their product must equal the world size.
        device_type: ``"cpu"`` (gloo) or ``"cuda"`` (NCCL).
    """
    if not dist.is_initialized():
        raise RuntimeError("torch.distributed is not initialised: call init_process_group (or launch with torchrun)")
    if layout.world_size != dist.get_world_size():
        raise ValueError(
            f"layout data_parallel × expert_parallel = {layout.data_parallel} × {layout.expert_parallel} "
            f"must equal the world size {dist.get_world_size()}"
        )
    return init_device_mesh(device_type, (layout.data_parallel, layout.expert_parallel), mesh_dim_names=MESH_DIMS)


def shard_model(
    model: nn.Module,
    mesh: DeviceMesh,
    *,
    mp_policy: MixedPrecisionPolicy | None = None,
    reshard_after_forward: bool = True,
) -> nn.Module:
    """Apply expert parallelism and FSDP2 to a BailingMoeV2 model (in place).

    Every rank calls this with the same model: same weights, or built on ``meta`` (then allocate the shards with
    :func:`ming_moe.materialize_model` and load them with :func:`ming_moe.load_distributed_checkpoint`).

    Args:
        model: :class:`ming_moe.BailingMoeV2ForCausalLM` or :class:`ming_moe.BailingMoeV2Model`.
        mesh: the ``(dp, ep)`` mesh from :func:`build_device_mesh`.
        mp_policy: FSDP2 mixed precision (e.g. bf16 parameters, fp32 gradient reduction); default: none.
        reshard_after_forward: FSDP2's choice: free the gathered layer weights after forward (less memory).

    Returns:
        ``model``, whose parameters are now ``DTensor`` s.
    """
    if mesh.mesh_dim_names != MESH_DIMS:
        raise ValueError(f"mesh must have dimensions {MESH_DIMS}, got {mesh.mesh_dim_names}")
    layers = [module for module in model.modules() if isinstance(module, BailingMoeV2DecoderLayer)]
    if not layers:
        raise ValueError("model has no BailingMoeV2DecoderLayer to shard")
    options = {"mp_policy": mp_policy or MixedPrecisionPolicy(), "reshard_after_forward": reshard_after_forward}
    expert_parallel = mesh["ep"].size() > 1
    if expert_parallel:
        apply_expert_parallel(model, mesh["ep"])
    # the dense parts are sharded over every rank: a 1-D mesh over the whole world
    world = init_device_mesh(mesh.device_type, (mesh.size(),), mesh_dim_names=("world",))
    for layer in layers:
        if expert_parallel and isinstance(layer.mlp, SparseMoeBlock):
            experts = fully_shard(layer.mlp.experts, mesh=mesh["dp"], **options)
            experts.set_gradient_divide_factor(float(mesh.size()))
            if dist.get_backend(mesh["dp"].get_group()) != "nccl":
                experts.set_force_sum_reduction_for_comms(True)  # gloo has no pre-multiplied sum
        fully_shard(layer, mesh=world, **options)
    fully_shard(model, mesh=world, **options)
    return model
