"""Routed experts as stacked 3D weights, run through transformers' experts interface, and the dense SwiGLU MLP.

``experts_implementation`` (``"eager"``, ``"batched_mm"``, ``"grouped_mm"``, ``"fused_loop"``) picks the kernel:
transformers dispatches :class:`MoeExperts.forward` to its own batched/grouped implementations; we write the eager
loop and ``"fused_loop"``, registered in transformers' ``ExpertsInterface`` (so any model's
``set_experts_implementation("fused_loop")`` accepts it): a loop over cache-sized chunks of experts with a
hand-written backward, run on one single-threaded lane per intra-op thread; for small experts, all experts at once
as one padded batch (two batched GEMMs, hand-written backward); or, where the FLOPs this wastes stay small (few
tokens), every expert on every token in two GEMMs. ``benchmarks/bench_moe_block.py`` times it against transformers'
kernels.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import torch
from torch import nn
from transformers.activations import ACT2FN, SiLUActivation
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

_LANE_MIN_FLOPS = 2e7
"""Forward FLOPs of the routed experts from which :class:`_FusedLoopExperts` splits the experts over lanes."""

_ALL_EXPERTS_WASTE_PER_EXPERT = 3e6
"""``fused_loop`` runs every expert on every token while the FLOPs this wastes stay below this figure per expert
that can have tokens (few tokens, or few and tiny experts): there the loop's per-expert calls cost more. Measured
on one core: the tiny preset's 16 experts of 64 × 32 at 2048 tokens (19 MFLOP wasted per expert) ran 2.4× faster
in the loop (forward and backward), at 256 tokens (2.4 MFLOP) about as fast as every expert on every token."""

_PADDED_WASTE_PER_EXPERT = 2e6
"""``fused_loop`` runs the experts as one padded batch (:class:`_PaddedExperts`) while the FLOPs of the expected
padding stay below this figure per expert: about what the loop's two GEMM calls per expert cost on their own
(~50 µs at the ~40 GFLOP/s of such small GEMMs on one core). The padding is taken as ``3·√r + 1`` rows per expert
for ``r`` slots per expert on average (roughly the spread of the busiest expert's load under balanced routing)."""

_PADDED_EXTRA_OPS_FLOPS = 6e6
"""The padded batch's bookkeeping (about a dozen more small ops than every expert on every token, ~150 µs on one
core) in FLOPs at that rate: every expert on every token is kept while it wastes less than the padding plus this.
Measured on one core, forward and backward: the tiny preset at 16 tokens every expert on every token is faster, at
256 and 2048 tokens the padded batch (256: 2.1 against 2.3 ms forward, 4.2 against 6.4 ms with backward)."""

_SHARED_ROWS = 256
"""Most token rows per task of the shared expert when it joins :class:`_FusedLoopExperts`' lanes (inference): its
tasks come last in the queue, so the lanes end within one such task (~7 ms at the 256-expert slice) of each other."""

Chunk = tuple[list[int], list[int], int, int]
"""Consecutive experts with slots, their slot counts, and their ``[start, end)`` range of the sorted slots."""


def _chunks(counts: list[int], slots: int) -> list[Chunk]:
    """The experts with slots, in chunks of consecutive experts of about ``slots`` sorted slots each."""
    chunks, experts, sizes, start, end = [], [], [], 0, 0
    for expert, count in enumerate(counts):
        if count == 0:
            continue
        experts.append(expert)
        sizes.append(count)
        end += count
        if end - start >= slots:
            chunks.append((experts, sizes, start, end))
            experts, sizes, start = [], [], end
    if experts:
        chunks.append((experts, sizes, start, end))
    return chunks


def _lane_count(flops: float) -> int:
    """Lanes for routed experts of ``flops`` forward FLOPs: the calling thread's intra-op threads, 1 for little work."""
    return torch.get_num_threads() if flops >= _LANE_MIN_FLOPS else 1


class _LanePool:
    """``lanes`` worker threads that run ATen ops on one intra-op thread each.

    ATen ops release the GIL, so the lanes' single-threaded GEMMs keep ``lanes`` cores busy at once; an expert's
    GEMM of a few dozen rows split over several intra-op threads runs at about half a core's GEMM rate instead.
    """

    _pools: ClassVar[dict[tuple[int, int], _LanePool]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, lanes: int) -> None:
        self._executor = ThreadPoolExecutor(lanes, thread_name_prefix="ming-moe-lane")
        started = threading.Barrier(lanes)  # one task per thread: each thread sets its own count

        def one_thread() -> None:
            # A thread's first parallel op (or get_num_threads) sets its count to the process default, once: done
            # first here, or it would undo the 1 below and each lane would run on every intra-op thread.
            torch.get_num_threads()
            torch.set_num_threads(1)
            started.wait()

        for future in [self._executor.submit(one_thread) for _ in range(lanes)]:
            future.result()
        # set_num_threads also set the default of threads started later to 1; restore it (this thread keeps its own)
        torch.set_num_threads(torch.get_num_threads())

    @classmethod
    def run(cls, function: Callable[..., None], lanes: list[tuple]) -> None:
        """``function(*arguments)`` for each lane's arguments, on the lanes at once (inline for a single lane)."""
        if len(lanes) == 1:
            function(*lanes[0])
            return
        key = (os.getpid(), len(lanes))  # a forked child has none of its parent's threads
        with cls._lock:
            pool = cls._pools.get(key)
            if pool is None:
                pool = cls._pools[key] = cls(len(lanes))
        for future in [pool._executor.submit(function, *arguments) for arguments in lanes]:
            future.result()


class _Workspace(threading.local):
    """Scratch buffers of the calling thread, kept between calls and grown as needed.

    Fresh memory costs a page fault per 4 KiB page on first touch, about 0.6 ms per MB on the machine the benchmark
    ran on: as much as the arithmetic of a chunk. Buffers over :data:`_WORKSPACE_MAX_BYTES` are not kept.
    """

    def __init__(self) -> None:
        self.buffers: dict[tuple, torch.Tensor] = {}

    def take(self, name: str, rows: int, columns: int, like: torch.Tensor) -> torch.Tensor:
        """An uninitialised ``(rows, columns)`` buffer of ``like``'s dtype and device, this thread's ``name``."""
        size = rows * columns
        if size * like.element_size() > _WORKSPACE_MAX_BYTES:
            return like.new_empty(rows, columns)
        key = (name, like.dtype, like.device)
        buffer = self.buffers.get(key)
        if buffer is None or buffer.numel() < size:
            buffer = self.buffers[key] = like.new_empty(size)
        return buffer[:size].view(rows, columns)


_WORKSPACE = _Workspace()
_WORKSPACE_MAX_BYTES = 64 * 2**20


def _partial_sums(like: torch.Tensor, lanes: int) -> list[torch.Tensor]:
    """Zeroed sums for ``lanes`` lanes: the first is returned to the caller, the others are scratch."""
    extra = [_WORKSPACE.take(f"lane sum {lane}", *like.shape, like).zero_() for lane in range(1, lanes)]
    return [torch.zeros_like(like), *extra]


def _forward_lane(
    tasks, hidden_states, tokens, weights, gate_up_proj, down_proj, act_fn, gate_up, shared, output
) -> None:
    """The forward of the tasks this lane takes from the shared iterator ``tasks`` (see :class:`_FusedLoopExperts`),
    summed into ``output``: chunks of routed experts, whose gate/up projections go to their rows of ``gate_up``, or
    to scratch where ``gate_up`` is None (no backward), and token rows (a ``slice``) of the shared expert ``shared``."""
    hidden, intermediate = hidden_states.shape[1], down_proj.shape[2]
    with torch.no_grad():  # lanes on worker threads start with grad mode on
        for task in tasks:
            if isinstance(task, slice):
                _shared_expert_rows(shared, hidden_states[task], output[task])
                continue
            experts, sizes, start, end = task
            n, rows = end - start, tokens[start:end]
            x = torch.index_select(hidden_states, 0, rows, out=_WORKSPACE.take("rows", n, hidden, hidden_states))
            projected = _WORKSPACE.take("gate_up", n, 2 * intermediate, x) if gate_up is None else gate_up[start:end]
            for expert, x_e, out_e in zip(experts, x.split(sizes), projected.split(sizes), strict=True):
                torch.mm(x_e, gate_up_proj[expert].T, out=out_e)
            gate, up = projected.chunk(2, dim=-1)
            inner = torch.mul(act_fn(gate), up, out=_WORKSPACE.take("inner", n, intermediate, x))
            inner.mul_(weights[start:end])  # the routing weight, on the narrower side of the down projection
            for expert, inner_e, out_e in zip(experts, inner.split(sizes), x.split(sizes), strict=True):
                torch.mm(inner_e, down_proj[expert].T, out=out_e)  # the gathered rows are used up
            output.index_add_(0, rows, x)


def _shared_expert_rows(mlp: DenseMLP, x: torch.Tensor, output: torch.Tensor) -> None:
    """Add the shared expert ``mlp`` of the rows ``x`` to ``output``, its projections in this thread's buffers."""
    n, width = x.shape[0], mlp.gate_proj.out_features
    gate = torch.mm(x, mlp.gate_proj.weight.T, out=_WORKSPACE.take("shared gate", n, width, x))
    up = torch.mm(x, mlp.up_proj.weight.T, out=_WORKSPACE.take("shared up", n, width, x))
    output.addmm_(torch.mul(mlp.act_fn(gate), up, out=up), mlp.down_proj.weight.T)


def _backward_lane(
    chunks, grad_output, hidden_states, tokens, weights, gate_up_proj, down_proj, act_fn, gate_up, grads
) -> None:
    """The backward of the chunks this lane takes from ``chunks``: writes their experts' slices of the weight and
    routing-weight gradients in ``grads`` and sums the input gradient into ``grads[0]``."""
    grad_hidden, grad_weights, grad_gate_up, grad_down = grads
    hidden, intermediate = hidden_states.shape[1], down_proj.shape[2]
    with torch.no_grad():
        for experts, sizes, start, end in chunks:
            rows, weight, n = tokens[start:end], weights[start:end], end - start
            gate, up = gate_up[start:end].chunk(2, dim=-1)
            with torch.enable_grad():
                gate = gate.detach().requires_grad_()
                activated = act_fn(gate)
            inner = torch.mul(activated.detach(), up, out=_WORKSPACE.take("inner", n, intermediate, up))
            grad_out = torch.index_select(grad_output, 0, rows, out=_WORKSPACE.take("rows", n, hidden, up))
            grad_inner = _WORKSPACE.take("grad inner", n, intermediate, up)  # before the routing weight
            for expert, grad_out_e, out_e in zip(experts, grad_out.split(sizes), grad_inner.split(sizes), strict=True):
                torch.mm(grad_out_e, down_proj[expert], out=out_e)
            torch.sum(grad_inner * inner, dim=-1, keepdim=True, out=grad_weights[start:end])
            inner.mul_(weight)  # the routing weight, on the narrower side of the down projection
            for expert, grad_out_e, inner_e in zip(experts, grad_out.split(sizes), inner.split(sizes), strict=True):
                torch.mm(grad_out_e.T, inner_e, out=grad_down[expert])
            grad_inner.mul_(weight)
            grad_projected = _WORKSPACE.take("grad gate_up", n, 2 * intermediate, up)
            torch.mul(grad_inner, activated.detach(), out=grad_projected[:, intermediate:])
            (grad_gate,) = torch.autograd.grad(activated, gate, grad_inner.mul_(up))
            grad_projected[:, :intermediate] = grad_gate
            x = torch.index_select(hidden_states, 0, rows, out=grad_out)  # grad_out is used up
            for expert, grad_e, x_e in zip(experts, grad_projected.split(sizes), x.split(sizes), strict=True):
                torch.mm(grad_e.T, x_e, out=grad_gate_up[expert])
                torch.mm(grad_e, gate_up_proj[expert], out=x_e)  # x_e is used up: it takes the input gradient
            grad_hidden.index_add_(0, rows, x)


class _FusedLoopExperts(torch.autograd.Function):
    """Gated experts ``down(act(gate) · up · weight)`` per (token, expert) slot, summed per token.

    Slots are sorted by expert and taken in chunks of consecutive experts: a chunk gathers its rows, runs each
    expert's GEMMs on its slice, applies the activation and the routing weights to the whole chunk at once and
    scatter-adds into the output. Nothing of size ``(tokens × top_k, hidden)`` is built (grouped_mm builds several),
    the per-expert work is the GEMMs alone, and the backward, written by hand, loops the same way: autograd through
    the eager loop zero-fills a full-size gradient per expert instead. Only the activation is recomputed, and only
    the gate/up projections are kept for backward (not at all where no input needs a gradient); the chunks' other
    buffers are each thread's :class:`_Workspace`.

    With enough work, one lane per intra-op thread of the caller runs on :class:`_LanePool`'s single-threaded
    workers; the lanes take the next chunk as they finish one (so a lane slowed by other work on its core takes
    fewer; chunks are smaller then, about 8 per lane) and each sums into its own output, added at the end: the
    result varies with the split only in rounding. The weight gradients of different experts do not overlap.
    Without a backward, ``shared`` (the block's shared expert, or None) joins the queue as its last tasks of at most
    :data:`_SHARED_ROWS` tokens each, summed into the same outputs: instead of running on all threads before or
    after the loop, it fills the loop's tail, where a lane would wait for the other to finish its last chunk.
    """

    @staticmethod
    def forward(ctx, hidden_states, top_k_weights, gate_up_proj, down_proj, top_k_index, act_fn, backward, shared):
        num_experts, hidden, intermediate = down_proj.shape
        top_k = top_k_index.shape[-1]
        flat_experts = top_k_index.reshape(-1)
        order = torch.sort(flat_experts).indices  # any order within an expert: unstable is faster
        tokens = order // top_k
        weights = top_k_weights.reshape(-1)[order, None]
        counts = torch.bincount(flat_experts, minlength=num_experts).tolist()
        lanes = _lane_count(6 * order.shape[0] * hidden * intermediate)
        slots = _CHUNK_SLOTS if lanes == 1 else min(_CHUNK_SLOTS, order.shape[0] // (8 * lanes))
        chunks = _chunks(counts, slots)
        tasks: list[Chunk | slice] = list(chunks)
        if shared is not None:
            n_tokens, step = hidden_states.shape[0], max(1, min(_SHARED_ROWS, slots))
            tasks += [slice(start, min(start + step, n_tokens)) for start in range(0, n_tokens, step)]
        lanes = max(min(lanes, len(tasks)), 1)
        gate_up = hidden_states.new_empty(order.shape[0], 2 * intermediate) if backward else None
        outputs = _partial_sums(hidden_states, lanes)
        pending = iter(tasks)  # the lanes share it: next() on a list iterator holds the GIL
        common = (pending, hidden_states, tokens, weights, gate_up_proj, down_proj, act_fn, gate_up, shared)
        _LanePool.run(_forward_lane, [(*common, out) for out in outputs])
        output = outputs[0]
        for other in outputs[1:]:
            output += other
        if backward:
            ctx.save_for_backward(hidden_states, gate_up_proj, down_proj, order, gate_up, weights)
            ctx.counts, ctx.chunks, ctx.lanes, ctx.top_k, ctx.act_fn = counts, chunks, lanes, top_k, act_fn
        return output

    @staticmethod
    def backward(ctx, grad_output):
        hidden_states, gate_up_proj, down_proj, order, gate_up, weights = ctx.saved_tensors
        tokens = order // ctx.top_k
        grad_weights = torch.zeros_like(weights)
        # every expert with slots writes its whole gradient slice; only the idle ones need zeros
        grad_gate_up = torch.empty_like(gate_up_proj)
        grad_down = torch.empty_like(down_proj)
        idle = [expert for expert, count in enumerate(ctx.counts) if count == 0]
        grad_gate_up[idle] = 0
        grad_down[idle] = 0
        grad_hidden = _partial_sums(hidden_states, ctx.lanes)
        common = (iter(ctx.chunks), grad_output, hidden_states, tokens, weights, gate_up_proj, down_proj)
        common += (ctx.act_fn, gate_up)
        _LanePool.run(
            _backward_lane, [(*common, (grad, grad_weights, grad_gate_up, grad_down)) for grad in grad_hidden]
        )
        for other in grad_hidden[1:]:
            grad_hidden[0] += other
        grad_top_k_weights = torch.empty_like(grad_weights).index_copy_(0, order, grad_weights)
        return grad_hidden[0], grad_top_k_weights.view(-1, ctx.top_k), grad_gate_up, grad_down, None, None, None, None


def _all_experts(
    hidden_states: torch.Tensor,
    top_k_index: torch.Tensor,
    top_k_weights: torch.Tensor,
    gate_up_proj: torch.Tensor,
    down_proj: torch.Tensor,
    act_fn: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Every expert on every token, weighted by its routing weight (zero where not chosen): one GEMM for all
    experts' gate/up projections, one for their down projections, plain autograd."""
    n_tokens = hidden_states.shape[0]
    num_experts, hidden, intermediate = down_proj.shape
    projected = nn.functional.linear(hidden_states, gate_up_proj.reshape(-1, hidden))
    gate, up = projected.view(n_tokens, num_experts, 2 * intermediate).chunk(2, dim=-1)
    routing = top_k_weights.new_zeros(n_tokens, num_experts).scatter(1, top_k_index, top_k_weights)
    inner = act_fn(gate) * up * routing.unsqueeze(-1)
    return inner.view(n_tokens, -1) @ down_proj.transpose(1, 2).reshape(-1, hidden)


def _is_silu(act_fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    return isinstance(act_fn, (nn.SiLU, SiLUActivation)) or act_fn is nn.functional.silu


def _gated(act_fn, gate: torch.Tensor, up: torch.Tensor, keep: bool, out: torch.Tensor):
    """``act(gate) · up`` (in ``out`` where it can) and, where ``keep`` and the activation is SiLU, its sigmoid for
    :func:`_activation_for_backward` (else None)."""
    if not _is_silu(act_fn):
        return act_fn(gate).mul_(up), None
    if not keep:
        return torch.sigmoid(gate, out=out).mul_(gate).mul_(up), None
    sigmoid = torch.sigmoid(gate)
    return torch.mul(gate, sigmoid, out=out).mul_(up), sigmoid


def _activation_for_backward(act_fn, gate: torch.Tensor, sigmoid: torch.Tensor | None, buffer: Callable):
    """``act(gate)`` and a function writing the gradient at ``gate`` for a gradient at ``act(gate)`` into ``out``.
    With SiLU's kept sigmoid no exponential is needed: SiLU' = σ · (1 + x · (1 − σ)); any other activation is
    recomputed under autograd."""
    if sigmoid is not None:
        activated = torch.mul(gate, sigmoid, out=buffer("activated"))
        slope = torch.sub(1, sigmoid, out=buffer("slope")).mul_(gate).add_(1).mul_(sigmoid)
        return activated, lambda grad, out: torch.mul(grad, slope, out=out)
    with torch.enable_grad():
        leaf = gate.detach().requires_grad_()
        recomputed = act_fn(leaf)
    return recomputed.detach(), lambda grad, out: out.copy_(torch.autograd.grad(recomputed, leaf, grad)[0])


class _PaddedExperts(torch.autograd.Function):
    """Every expert on a batch of ``capacity`` rows: its slots, then padding rows of routing weight 0 (capacity =
    the most slots any expert has). Two batched GEMMs over all experts, one gather and one scatter-add, and a
    backward written by hand (four batched GEMMs); the shared expert, if given, in the same call.

    For small experts, where a GEMM call per expert costs more than its arithmetic: the work is a fixed dozen ops
    whatever the number of experts, and the FLOPs are those of the chosen slots plus the padding (at worst, all
    tokens on one expert, those of every expert on every token). Padding rows read token 0 and, with weight 0, add
    zeros to its output and input gradient; an expert without slots gets zero weight gradients the same way.
    Temporaries are the calling thread's :class:`_Workspace` buffers (fresh memory costs page faults): the backward
    gathers the rows again rather than keep them. SiLU keeps its sigmoid for the backward, which then needs no
    exponential (the costly part of an activation on CPU).
    """

    @staticmethod
    def forward(ctx, hidden_states, top_k_weights, gate_up_proj, down_proj, top_k_index, act_fn, backward, *shared):
        num_experts, hidden, intermediate = down_proj.shape
        flat = top_k_index.reshape(-1)
        sorted_experts, order = torch.sort(flat)
        counts = torch.bincount(flat, minlength=num_experts)
        capacity = int(counts.max())
        padded = num_experts * capacity
        # padded row of the i-th sorted slot: its expert's first row + its rank among that expert's slots
        shift = torch.arange(0, padded, capacity) - (counts.cumsum(0) - counts)
        rows = shift.index_select(0, sorted_experts).add_(torch.arange(flat.shape[0]))
        tokens = torch.zeros(padded, dtype=torch.long).index_copy_(0, rows, order // top_k_index.shape[-1])
        sorted_weights = top_k_weights.reshape(-1).index_select(0, order)
        weights = sorted_weights.new_zeros(padded).index_copy_(0, rows, sorted_weights).view(-1, capacity, 1)

        def buffer(name: str, columns: int, kept: bool = False, count: int = padded) -> torch.Tensor:
            if kept:  # saved for the backward: a later call must not overwrite it
                return hidden_states.new_empty(count, columns)
            return _WORKSPACE.take(name, count, columns, hidden_states)

        x = torch.index_select(hidden_states, 0, tokens, out=buffer("x", hidden)).view(num_experts, capacity, -1)
        projected = buffer("gate_up", 2 * intermediate, backward).view(num_experts, capacity, -1)
        torch.bmm(x, gate_up_proj.transpose(1, 2), out=projected)
        inner_buffer = buffer("inner", intermediate).view(num_experts, capacity, -1)
        inner, sigmoid = _gated(act_fn, *projected.chunk(2, dim=-1), backward, inner_buffer)
        inner.mul_(weights)  # the routing weight, on the narrower side
        out = torch.bmm(inner, down_proj.transpose(1, 2), out=x)  # the gathered rows are used up
        output = hidden_states.new_zeros(hidden_states.shape).index_add_(0, tokens, out.view(padded, hidden))
        saved = (hidden_states, gate_up_proj, down_proj, projected, weights, tokens, rows, order, sigmoid)
        if shared:  # the shared expert's (gate, up, down, activation)
            gate_weight, up_weight, down_weight, shared_act = shared
            n_tokens, width = hidden_states.shape[0], gate_weight.shape[0]
            gate = torch.mm(hidden_states, gate_weight.T, out=buffer("shared gate", width, backward, n_tokens))
            up = torch.mm(hidden_states, up_weight.T, out=buffer("shared up", width, backward, n_tokens))
            shared_inner, shared_sigmoid = _gated(
                shared_act, gate, up, backward, buffer("shared inner", width, False, n_tokens)
            )
            output.addmm_(shared_inner, down_weight.T)
            saved += (gate_weight, up_weight, down_weight, gate, up, shared_sigmoid)
            ctx.shared_act = shared_act
        if backward:
            ctx.save_for_backward(*saved)
            ctx.act_fn, ctx.top_k = act_fn, top_k_index.shape[-1]
        return output

    @staticmethod
    def backward(ctx, grad_output):
        hidden_states, gate_up_proj, down_proj, projected, weights, tokens, rows, order, sigmoid = ctx.saved_tensors[:9]
        num_experts, capacity, _ = projected.shape
        padded, (n_tokens, hidden), intermediate = num_experts * capacity, grad_output.shape, down_proj.shape[2]

        def buffer(name: str, columns: int = intermediate) -> torch.Tensor:
            return _WORKSPACE.take(name, padded, columns, grad_output).view(num_experts, capacity, columns)

        grad_out = buffer("rows", hidden)
        torch.index_select(grad_output, 0, tokens, out=grad_out.view(padded, hidden))
        gate, up = projected.chunk(2, dim=-1)
        activated, gate_grad = _activation_for_backward(ctx.act_fn, gate, sigmoid, buffer)
        inner = torch.mul(activated, up, out=buffer("inner"))
        grad_inner = torch.bmm(grad_out, down_proj, out=buffer("grad inner"))  # before the routing weight
        products = torch.mul(grad_inner, inner, out=buffer("products"))
        grad_slot_weights = products.sum(-1).view(-1).index_select(0, rows)
        grad_weights = torch.empty_like(grad_slot_weights).index_copy_(0, order, grad_slot_weights)
        grad_down = torch.bmm(grad_out.transpose(1, 2), inner.mul_(weights))
        grad_inner.mul_(weights)
        grad_projected = buffer("grad gate_up", 2 * intermediate)
        torch.mul(grad_inner, activated, out=grad_projected[..., intermediate:])
        gate_grad(grad_inner.mul_(up), grad_projected[..., :intermediate])
        x = buffer("x", hidden)
        torch.index_select(hidden_states, 0, tokens, out=x.view(padded, hidden))
        grad_gate_up = torch.bmm(grad_projected.transpose(1, 2), x)
        grad_x = torch.bmm(grad_projected, gate_up_proj, out=grad_out)  # grad_out is used up
        grad_hidden = grad_output.new_zeros(grad_output.shape).index_add_(0, tokens, grad_x.view(padded, hidden))
        grads = [grad_hidden, grad_weights.view(-1, ctx.top_k), grad_gate_up, grad_down, None, None, None]
        if len(ctx.saved_tensors) > 9:
            gate_weight, up_weight, down_weight, gate, up, shared_sigmoid = ctx.saved_tensors[9:]
            width = gate_weight.shape[0]

            def shared_buffer(name: str, columns: int = width) -> torch.Tensor:
                return _WORKSPACE.take(f"shared {name}", n_tokens, columns, grad_output)

            activated, gate_grad = _activation_for_backward(ctx.shared_act, gate, shared_sigmoid, shared_buffer)
            inner = torch.mul(activated, up, out=shared_buffer("inner"))
            grad_down_weight = torch.mm(grad_output.T, inner)
            grad_inner = torch.mm(grad_output, down_weight, out=shared_buffer("grad inner"))
            grad_up = torch.mul(grad_inner, activated, out=shared_buffer("grad up"))
            grad_gate = shared_buffer("grad gate")
            gate_grad(grad_inner.mul_(up), grad_gate)
            grad_hidden.addmm_(grad_gate, gate_weight).addmm_(grad_up, up_weight)
            grads += [torch.mm(grad_gate.T, hidden_states), torch.mm(grad_up.T, hidden_states), grad_down_weight, None]
        return tuple(grads)


def fused_loop_experts_forward(
    self: nn.Module,
    hidden_states: torch.Tensor,
    top_k_index: torch.Tensor,
    top_k_weights: torch.Tensor,
    shared_expert: DenseMLP | None = None,
) -> torch.Tensor:
    """The ``"fused_loop"`` experts implementation (concatenated gate/up weights, no bias, not transposed).

    Where the cost is per call rather than per FLOP (few tokens, or few and tiny experts), every expert runs on
    every token in two GEMMs (:func:`_all_experts`); with small experts, all of them in one padded batch
    (:class:`_PaddedExperts`); otherwise :class:`_FusedLoopExperts`. :func:`fused_loop_plan` picks. ``shared_expert``
    (:class:`ming_moe.SparseMoeBlock` passes its own) is added to the output: inside the padded batch, on the loop's
    lanes where nothing needs a gradient, else on its own after the routed experts.
    """
    plain = self.has_gate and self.is_concatenated and not (self.has_bias or self.is_transposed)
    if not plain or self.has_post_expert_norm or self._is_expert_parallel:
        raise NotImplementedError(
            "fused_loop supports gated experts with concatenated, untransposed weights, without expert parallelism"
        )
    plan = fused_loop_plan(*top_k_index.shape, *self.down_proj.shape)
    weights = (self.gate_up_proj, self.down_proj)
    grad = torch.is_grad_enabled()
    backward = grad and any(t.requires_grad for t in (hidden_states, top_k_weights, *weights))
    shared_grad = grad and shared_expert is not None and any(p.requires_grad for p in shared_expert.parameters())
    inference = not (backward or shared_grad)
    in_lanes = plan not in (ALL_EXPERTS, PADDED) and inference
    if plan == ALL_EXPERTS:
        output = _all_experts(hidden_states, top_k_index, top_k_weights, *weights, self.act_fn)
    elif plan == PADDED:
        shared = () if shared_expert is None else _shared_weights(shared_expert)
        return _PaddedExperts.apply(
            hidden_states, top_k_weights, *weights, top_k_index, self.act_fn, backward or shared_grad, *shared
        )
    else:
        arguments = (top_k_index, self.act_fn, backward, shared_expert if in_lanes else None)
        output = _FusedLoopExperts.apply(hidden_states, top_k_weights, *weights, *arguments)
    if shared_expert is None or in_lanes:
        return output
    if inference:  # in this thread's buffers, added in place
        _shared_expert_rows(shared_expert, hidden_states, output)
        return output
    return output + shared_expert(hidden_states)


def _shared_weights(mlp: DenseMLP) -> tuple:
    return mlp.gate_proj.weight, mlp.up_proj.weight, mlp.down_proj.weight, mlp.act_fn


ALL_EXPERTS = "every expert on every token"
PADDED = "padded batch"


def fused_loop_plan(n_tokens: int, top_k: int, num_experts: int, hidden: int, intermediate: int) -> str:
    """How ``fused_loop`` runs ``n_tokens`` tokens: :data:`ALL_EXPERTS`, :data:`PADDED` or ``"loop on N lanes"``."""
    slots, expert_flops = n_tokens * top_k, 6 * hidden * intermediate
    all_experts_waste = n_tokens * (num_experts - top_k) * expert_flops
    padding = (3 * math.sqrt(slots / num_experts) + 1) * expert_flops  # expected, per expert
    if padding <= _PADDED_WASTE_PER_EXPERT:
        return ALL_EXPERTS if all_experts_waste <= num_experts * padding + _PADDED_EXTRA_OPS_FLOPS else PADDED
    if all_experts_waste <= _ALL_EXPERTS_WASTE_PER_EXPERT * min(num_experts, slots):
        return ALL_EXPERTS
    lanes = _lane_count(slots * expert_flops)
    return f"loop on {lanes} lane{'s' * (lanes > 1)}"


ExpertsInterface.register("fused_loop", fused_loop_experts_forward)
