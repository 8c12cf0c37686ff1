"""Expert parallelism for the MoE block over ``torch.distributed`` (paper §2: the 103 B-parameter LLM fits no single
accelerator; its 256 routed experts per layer are 97% of the weights).

The experts of each MoE layer are split evenly across the ranks of an expert-parallel group: rank ``p`` holds experts
``[p·E/P, (p+1)·E/P)`` as the local shard of a ``DTensor`` (``Shard(0)`` on the expert mesh), so FSDP2 and
``torch.distributed.checkpoint`` see the full, global tensors. Routers and the shared expert stay replicated: every
rank routes its own tokens, then

1. exchanges the per-expert slot counts with ``all_to_all_single`` (so every rank knows what it will receive),
2. sends each (token, expert) slot's hidden vector to the rank owning the expert (``all_to_all_single``, autograd),
3. runs its local experts on what it received with the same experts implementation as the single-process block
   (transformers' experts interface: eager / batched_mm / grouped_mm / fused_loop),
4. sends the outputs back the same way, and weights and sums them per token where the token lives.

Per token and direction the all-to-all moves ``top_k × hidden × dtype size`` bytes (slots whose expert is local are
copied, not sent). Every rank takes part in both collectives of every MoE layer in forward and backward, also when
it receives no token, so the ranks of a group must run the same number of MoE forwards.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.tensor import DTensor, Shard

from .experts import MoeExperts
from .moe import SparseMoeBlock


class ExpertParallelExperts(nn.Module):
    """The routed experts of one MoE layer, split across an expert-parallel mesh; a drop-in for
    :class:`ming_moe.MoeExperts` inside :class:`ming_moe.SparseMoeBlock` (same call, same parameter names).

    Attributes:
        gate_up_proj: ``DTensor`` of global shape ``(E, 2·I, H)``, ``Shard(0)`` on ``ep_mesh``.
        down_proj: ``DTensor`` of global shape ``(E, H, I)``, ``Shard(0)`` on ``ep_mesh``.
        num_experts: ``E``, all experts of the layer.
        num_local_experts: ``E / P``, the experts this rank computes.
    """

    def __init__(self, experts: MoeExperts, ep_mesh: DeviceMesh) -> None:
        """Take this rank's slice of ``experts`` (materialised or on ``meta``).

        Args:
            experts: the layer's experts with all ``E`` experts; only its local slice is kept.
            ep_mesh: 1-D device mesh of the expert-parallel group; ``E`` must be divisible by its size.
        """
        super().__init__()
        if ep_mesh.ndim != 1:
            raise ValueError(f"ep_mesh must be a 1-D device mesh, got {ep_mesh.ndim} dimensions")
        ranks = ep_mesh.size()
        if experts.num_experts % ranks:
            raise ValueError(
                f"num_experts ({experts.num_experts}) must be divisible by the expert-parallel size ({ranks})"
            )
        self.ep_mesh = ep_mesh
        self.num_experts = experts.num_experts
        self.num_local_experts = experts.num_experts // ranks
        first = ep_mesh.get_local_rank() * self.num_local_experts
        for name in ("gate_up_proj", "down_proj"):
            local = getattr(experts, name).detach()[first : first + self.num_local_experts].clone()
            shard = DTensor.from_local(local, ep_mesh, [Shard(0)], run_check=False)
            self.register_parameter(name, nn.Parameter(shard, requires_grad=getattr(experts, name).requires_grad))
        # The computation is the experts module's own forward (its configured implementation) on local weights; this
        # copy on `meta` is its template, not a submodule, so it holds no memory and adds no state-dict keys.
        with torch.device("meta"):
            template = type(experts)(experts.config)
        template.num_experts = self.num_local_experts
        self._template = (template,)

    def forward(
        self, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor
    ) -> torch.Tensor:
        """``sum_k weight_k · expert_{index_k}(x)`` for ``(N, H)`` tokens, wherever their experts live.

        Args:
            hidden_states: ``(N, H)`` this rank's tokens.
            top_k_index: ``(N, top_k)`` global expert ids.
            top_k_weights: ``(N, top_k)`` routing weights.
        """
        group = self.ep_mesh.get_group()
        ranks, local = self.ep_mesh.size(), self.num_local_experts
        top_k = top_k_index.shape[-1]
        flat_experts = top_k_index.reshape(-1)
        order = torch.argsort(flat_experts, stable=True)  # slots grouped by owning rank, then by expert
        tokens = order // top_k
        sent_per_expert = torch.bincount(flat_experts, minlength=self.num_experts)
        received_per_expert = torch.empty_like(sent_per_expert)
        dist.all_to_all_single(received_per_expert, sent_per_expert, group=group)  # counts first
        send_sizes = sent_per_expert.view(ranks, local).sum(1).tolist()
        receive_sizes = received_per_expert.view(ranks, local).sum(1).tolist()

        rows = hidden_states.index_select(0, tokens)
        received = dist_fn.all_to_all_single(
            rows.new_empty(sum(receive_sizes), rows.shape[1]), rows, receive_sizes, send_sizes, group=group
        )
        local_ids = torch.arange(local, device=rows.device).repeat(ranks).repeat_interleave(received_per_expert)
        computed = self._local_experts(received, local_ids)
        returned = dist_fn.all_to_all_single(torch.empty_like(rows), computed, send_sizes, receive_sizes, group=group)

        weights = top_k_weights.reshape(-1)[order, None]
        return torch.zeros_like(hidden_states).index_add(0, tokens, (returned * weights).to(hidden_states.dtype))

    def _local_experts(self, rows: torch.Tensor, local_ids: torch.Tensor) -> torch.Tensor:
        """Each received row through its local expert (weight 1: the routing weight is applied by the sender)."""
        gate_up_proj, down_proj = self.gate_up_proj.to_local(), self.down_proj.to_local()
        if rows.shape[0] == 0:
            # Still depend on the weights: the backward all-to-all must run on every rank, and these experts get
            # (zero) gradients like the other ranks' experts, so the gradient reductions match across ranks.
            return rows + 0 * (gate_up_proj.sum() + down_proj.sum())
        ones = rows.new_ones(rows.shape[0], 1)
        return torch.func.functional_call(
            self._template[0],
            {"gate_up_proj": gate_up_proj, "down_proj": down_proj},
            (rows, local_ids[:, None], ones),
        )


def apply_expert_parallel(model: nn.Module, ep_mesh: DeviceMesh) -> nn.Module:
    """Replace the experts of every :class:`ming_moe.SparseMoeBlock` in ``model`` by their expert-parallel slice.

    Every rank of ``ep_mesh`` must call this with the same model (same weights, or all on ``meta``); afterwards each
    rank holds ``E / P`` experts per layer and the blocks dispatch tokens with ``all_to_all_single``. Routers, the
    shared expert and everything outside the MoE blocks are untouched (replicated).

    Args:
        model: a model or module containing MoE blocks (modified in place).
        ep_mesh: 1-D device mesh of the expert-parallel group.

    Returns:
        ``model``.
    """
    blocks = [module for module in model.modules() if isinstance(module, SparseMoeBlock)]
    if not blocks:
        raise ValueError("model has no SparseMoeBlock layers to parallelise")
    for block in blocks:
        if isinstance(block.experts, ExpertParallelExperts):
            raise ValueError("model is already expert-parallel")
        block.experts = ExpertParallelExperts(block.experts, ep_mesh)
    return model
