"""Routed experts as stacked 3D weights, run through transformers' experts interface, and the dense SwiGLU MLP.

``experts_implementation`` (``"eager"``, ``"batched_mm"``, ``"grouped_mm"``, ``"fused_loop"``) picks the kernel:
transformers dispatches :class:`MoeExperts.forward` to its own batched/grouped implementations; we write the eager
loop and ``"fused_loop"``, registered in transformers' ``ExpertsInterface`` (so any model's
``set_experts_implementation("fused_loop")`` accepts it): a loop over cache-sized chunks of experts with a
hand-written backward. On CPU it is the fastest at thousands of tokens, where grouped_mm's ``(tokens × top_k,
hidden)`` temporaries cost most (``benchmarks/bench_moe_block.py``); at a few hundred it is on par with grouped_mm.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.integrations import use_experts_implementation
from transformers.integrations.moe import ExpertsInterface

from .configuration import BailingMoeV2Config


@use_experts_implementation
class MoeExperts(nn.Module):
    """``num_experts`` SwiGLU experts: ``gate_up_proj`` ``(E, 2·I, H)`` (gate rows first) and ``down_proj``
    ``(E, H, I)``."""

    def __init__(self, config: BailingMoeV2Config) -> None:
        super().__init__()
        self.num_experts = config.num_experts
        self.hidden_dim = config.hidden_size
        self.intermediate_dim = config.moe_intermediate_size
        self.gate_up_proj = nn.Parameter(torch.empty(self.num_experts, 2 * self.intermediate_dim, self.hidden_dim))
        self.down_proj = nn.Parameter(torch.empty(self.num_experts, self.hidden_dim, self.intermediate_dim))
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(
        self, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor
    ) -> torch.Tensor:
        """Eager path: loop over the experts that received tokens. ``hidden_states`` is ``(N, H)``."""
        output = torch.zeros_like(hidden_states)
        flat_experts = top_k_index.reshape(-1)
        order = torch.argsort(flat_experts, stable=True)
        counts = torch.bincount(flat_experts, minlength=self.num_experts).tolist()
        # One gather, split and unbind for all experts: autograd then builds each full-size gradient once, where
        # indexing per expert zero-fills a full-size gradient of the inputs and of both weights for every expert.
        tokens = order // top_k_index.shape[-1]
        inputs = hidden_states.index_select(0, tokens).split(counts)
        weights = top_k_weights.reshape(-1)[order, None].split(counts)
        gate_up_proj, down_proj = self.gate_up_proj.unbind(0), self.down_proj.unbind(0)
        for expert, rows in enumerate(tokens.split(counts)):
            if rows.numel() == 0:
                continue
            gate, up = nn.functional.linear(inputs[expert], gate_up_proj[expert]).chunk(2, dim=-1)
            out = nn.functional.linear(self.act_fn(gate) * up, down_proj[expert])
            output.index_add_(0, rows, (out * weights[expert]).to(output.dtype))
        return output


class DenseMLP(nn.Module):
    """SwiGLU MLP (layer 0 and the shared experts): ``down(act(gate(x)) · up(x))``."""

    def __init__(self, config: BailingMoeV2Config, intermediate_size: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, config.hidden_size, bias=False)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


_CHUNK_SLOTS = 1024
"""(token, expert) slots per chunk of :class:`_FusedLoopExperts`: a chunk's activations stay in cache between steps."""


def _chunks(counts: list[int]) -> list[tuple[list[int], list[int], int, int]]:
    """Experts with slots, in runs of about ``_CHUNK_SLOTS`` sorted slots: ``(experts, their counts, start, end)``."""
    chunks, experts, sizes, start, end = [], [], [], 0, 0
    for expert, count in enumerate(counts):
        if count == 0:
            continue
        experts.append(expert)
        sizes.append(count)
        end += count
        if end - start >= _CHUNK_SLOTS:
            chunks.append((experts, sizes, start, end))
            experts, sizes, start = [], [], end
    if experts:
        chunks.append((experts, sizes, start, end))
    return chunks


class _FusedLoopExperts(torch.autograd.Function):
    """Gated experts ``down(act(gate) · up) · weight`` per (token, expert) slot, summed per token.

    Slots are sorted by expert and taken in chunks of consecutive experts: a chunk gathers its rows, runs each
    expert's GEMMs on its slice, applies the activation and the routing weights to the whole chunk at once and
    scatter-adds into the output. Nothing of size ``(tokens × top_k, hidden)`` is built (grouped_mm builds several),
    the per-expert work is the GEMMs alone, and the backward, written by hand, loops the same way: autograd through
    the eager loop zero-fills a full-size gradient per expert instead. Only the activation is recomputed.
    """

    @staticmethod
    def forward(ctx, hidden_states, top_k_weights, gate_up_proj, down_proj, top_k_index, act_fn):
        num_experts, intermediate, top_k = down_proj.shape[0], down_proj.shape[2], top_k_index.shape[-1]
        flat_experts = top_k_index.reshape(-1)
        order = torch.argsort(flat_experts, stable=True)
        tokens = order // top_k
        weights = top_k_weights.reshape(-1)[order, None]
        counts = torch.bincount(flat_experts, minlength=num_experts).tolist()
        chunks = _chunks(counts)
        most = max((end - start for _, _, start, end in chunks), default=0)
        rows_buffer = hidden_states.new_empty(most, hidden_states.shape[1])
        inner_buffer = hidden_states.new_empty(most, intermediate)
        gate_up = hidden_states.new_empty(order.shape[0], 2 * intermediate)  # kept for backward
        output = torch.zeros_like(hidden_states)
        for experts, sizes, start, end in chunks:
            rows = tokens[start:end]
            x = torch.index_select(hidden_states, 0, rows, out=rows_buffer[: end - start])
            projected = gate_up[start:end]
            for expert, x_e, out_e in zip(experts, x.split(sizes), projected.split(sizes), strict=True):
                torch.mm(x_e, gate_up_proj[expert].T, out=out_e)
            gate, up = projected.chunk(2, dim=-1)
            inner = torch.mul(act_fn(gate), up, out=inner_buffer[: end - start])
            for expert, inner_e, out_e in zip(experts, inner.split(sizes), x.split(sizes), strict=True):
                torch.mm(inner_e, down_proj[expert].T, out=out_e)  # the gathered rows are used up
            output.index_add_(0, rows, x.mul_(weights[start:end]))
        ctx.save_for_backward(hidden_states, gate_up_proj, down_proj, order, gate_up, weights)
        ctx.counts, ctx.chunks, ctx.top_k, ctx.act_fn = counts, chunks, top_k, act_fn
        return output

    @staticmethod
    def backward(ctx, grad_output):
        hidden_states, gate_up_proj, down_proj, order, gate_up, weights = ctx.saved_tensors
        intermediate, tokens = down_proj.shape[2], order // ctx.top_k
        most = max((end - start for _, _, start, end in ctx.chunks), default=0)
        rows_buffer = hidden_states.new_empty(most, hidden_states.shape[1])
        inner_buffer = hidden_states.new_empty(most, intermediate)
        grad_inner_buffer = hidden_states.new_empty(most, intermediate)
        grad_projected_buffer = hidden_states.new_empty(most, 2 * intermediate)
        grad_hidden = torch.zeros_like(hidden_states)
        grad_weights = torch.zeros_like(weights)
        # every expert with slots writes its whole gradient slice; only the idle ones need zeros
        grad_gate_up = torch.empty_like(gate_up_proj)
        grad_down = torch.empty_like(down_proj)
        idle = [expert for expert, count in enumerate(ctx.counts) if count == 0]
        grad_gate_up[idle] = 0
        grad_down[idle] = 0
        for experts, sizes, start, end in ctx.chunks:
            rows, weight, n = tokens[start:end], weights[start:end], end - start
            gate, up = gate_up[start:end].chunk(2, dim=-1)
            with torch.enable_grad():
                gate = gate.detach().requires_grad_()
                activated = ctx.act_fn(gate)
            inner = torch.mul(activated.detach(), up, out=inner_buffer[:n])
            grad_out = torch.index_select(grad_output, 0, rows, out=rows_buffer[:n])
            grad_inner = grad_inner_buffer[:n]  # before the routing weight
            for expert, grad_out_e, out_e in zip(experts, grad_out.split(sizes), grad_inner.split(sizes), strict=True):
                torch.mm(grad_out_e, down_proj[expert], out=out_e)
            torch.sum(grad_inner * inner, dim=-1, keepdim=True, out=grad_weights[start:end])
            grad_out.mul_(weight)
            for expert, grad_out_e, inner_e in zip(experts, grad_out.split(sizes), inner.split(sizes), strict=True):
                torch.mm(grad_out_e.T, inner_e, out=grad_down[expert])
            grad_inner.mul_(weight)
            grad_projected = grad_projected_buffer[:n]
            torch.mul(grad_inner, activated.detach(), out=grad_projected[:, intermediate:])
            (grad_gate,) = torch.autograd.grad(activated, gate, grad_inner.mul_(up))
            grad_projected[:, :intermediate] = grad_gate
            x = torch.index_select(hidden_states, 0, rows, out=rows_buffer[:n])  # grad_out is used up
            for expert, grad_e, x_e in zip(experts, grad_projected.split(sizes), x.split(sizes), strict=True):
                torch.mm(grad_e.T, x_e, out=grad_gate_up[expert])
                torch.mm(grad_e, gate_up_proj[expert], out=x_e)  # x_e is used up: it takes the input gradient
            grad_hidden.index_add_(0, rows, x)
        grad_top_k_weights = torch.empty_like(grad_weights).index_copy_(0, order, grad_weights)
        return grad_hidden, grad_top_k_weights.view(-1, ctx.top_k), grad_gate_up, grad_down, None, None


def fused_loop_experts_forward(
    self: nn.Module, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor
) -> torch.Tensor:
    """The ``"fused_loop"`` experts implementation (concatenated gate/up weights, no bias, not transposed)."""
    plain = self.has_gate and self.is_concatenated and not (self.has_bias or self.is_transposed)
    if not plain or self.has_post_expert_norm or self._is_expert_parallel:
        raise NotImplementedError(
            "fused_loop supports gated experts with concatenated, untransposed weights, without expert parallelism"
        )
    return _FusedLoopExperts.apply(
        hidden_states, top_k_weights, self.gate_up_proj, self.down_proj, top_k_index, self.act_fn
    )


ExpertsInterface.register("fused_loop", fused_loop_experts_forward)
