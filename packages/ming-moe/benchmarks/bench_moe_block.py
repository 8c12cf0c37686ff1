"""MoE block throughput on CPU: ming_moe's ``SparseMoeBlock`` vs transformers' ``BailingHybridMoE``.

Both blocks get identical weights (one router, zero expert bias) and must give the same output within 1e-4 (fp32)
with every experts implementation, or the benchmark fails. Then forward (eval, no grad) and forward+backward (train
mode, gradients set to None before each step as an optimizer does; ours also computes its auxiliary balance loss and
load counts) are timed for each experts implementation of each block, at the tiny preset's block and at a one-layer
slice with 256 experts (hidden 1024, expert width 256, top-8, 8 groups / best 4), for 16, 256 and 2048 tokens.
Timed in the same run on the slice: a dense GEMM of the block's forward FLOPs and the routed experts' GEMMs alone
(2048 tokens), the memory read bandwidth of a 512 MiB sum and the expert GEMMs alone (16 tokens).
Goals: at least as fast as the peer's best everywhere; at 2048 tokens ≥ 70% of the dense GEMM's FLOP/s.
Prints a table and writes ``results/moe_block.json``.

    python packages/ming-moe/benchmarks/bench_moe_block.py [--repeats 11] [--threads 2]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import NamedTuple

import torch
import transformers
from transformers.models.bailing_hybrid.configuration_bailing_hybrid import BailingHybridConfig
from transformers.models.bailing_hybrid.modeling_bailing_hybrid import BailingHybridMoE

from ming_moe import BailingMoeV2Config, SparseMoeBlock
from ming_moe.experts import fused_loop_plan
from ming_testdata.results import describe_machine, write_results

PEER, OURS = "transformers", "ming_moe"
IMPLEMENTATIONS = {
    PEER: ("eager", "batched_mm", "grouped_mm"),
    OURS: ("eager", "batched_mm", "grouped_mm", "fused_loop"),
}
FORWARD, BOTH = "forward", "fwd+bwd"
DENSE, GEMMS, MEMORY = ("reference", "dense GEMM"), ("reference", "expert GEMMs"), ("reference", "memory read")
TOKENS = (16, 256, 2048)
SLICE = "256 experts"
SHAPES = {
    "tiny": BailingMoeV2Config.tiny(router_modalities=["text"]),
    SLICE: BailingMoeV2Config(
        hidden_size=1024,
        moe_intermediate_size=256,
        num_experts=256,
        num_experts_per_tok=8,
        n_group=8,
        topk_group=4,
        router_modalities=["text"],
    ),
}
Case = tuple[Callable[[], object], Callable[[], object]]  # (set-up before a sample, timed call)


class Timing(NamedTuple):
    seconds: float  # median per call
    spread: float  # (max - min) / median of the samples
    single: bool  # one call only: it took longer than --max-call-s


def make_blocks(config: BailingMoeV2Config, seed: int) -> tuple[SparseMoeBlock, BailingHybridMoE]:
    """Our block with random weights and transformers' block holding copies of them."""
    torch.manual_seed(seed)
    ours = SparseMoeBlock(config)
    with torch.no_grad():
        for parameter in ours.parameters():
            parameter.normal_(std=config.initializer_range)
    peer = BailingHybridMoE(
        BailingHybridConfig(
            hidden_size=config.hidden_size,
            moe_intermediate_size=config.moe_intermediate_size,
            num_local_experts=config.num_experts,
            num_experts_per_tok=config.num_experts_per_tok,
            n_group=config.n_group,
            topk_group=config.topk_group,
            n_shared_experts=config.num_shared_experts,
            routed_scaling_factor=config.routed_scaling_factor,
            norm_topk_prob=config.norm_topk_prob,
            hidden_act=config.hidden_act,
            num_hidden_layers=1,
        )
    )
    # Same layouts: gate_up_proj (E, 2I, H) with the gate rows first, down_proj (E, H, I); shared expert by name.
    weights = {
        "gate.weight": ours.gate.weight,
        "gate.e_score_correction_bias": ours.gate.expert_bias,
        "experts.gate_up_proj": ours.experts.gate_up_proj,
        "experts.down_proj": ours.experts.down_proj,
        **{f"shared_experts.{name}": value for name, value in ours.shared_experts.state_dict().items()},
    }
    peer.load_state_dict({name: value.detach().clone() for name, value in weights.items()}, strict=True)
    return ours, peer


def set_implementation(block: torch.nn.Module, implementation: str) -> None:
    # transformers dispatches the experts' forward on the config they hold
    block.experts.config._experts_implementation = implementation


def check_agreement(ours: SparseMoeBlock, peer: BailingHybridMoE, hidden: int, seed: int) -> float:
    """Largest |difference| of every implementation of both blocks from transformers' eager block; exits if > 1e-4."""
    x = torch.randn(2, 40, hidden, generator=torch.Generator().manual_seed(seed))
    ours.eval()
    peer.eval()
    worst = 0.0
    with torch.no_grad():
        set_implementation(peer, "eager")
        reference = peer(x)
        for name, block in ((PEER, peer), (OURS, ours)):
            for implementation in IMPLEMENTATIONS[name]:
                set_implementation(block, implementation)
                out = block(x)[0] if block is ours else block(x)
                error = (out - reference).abs().max().item()
                if not torch.allclose(out, reference, atol=1e-4, rtol=1e-4):
                    raise SystemExit(f"{name} {implementation} differs from transformers' eager block by {error:.2e}")
                worst = max(worst, error)
    return worst


def block_cases(block: torch.nn.Module, implementations: tuple[str, ...], x: torch.Tensor) -> dict[tuple, Case]:
    """Forward and forward+backward of ``block`` on ``x`` for each implementation."""
    ours = isinstance(block, SparseMoeBlock)
    x_grad = x.clone().requires_grad_(True)
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))

    def forward() -> None:
        with torch.no_grad():
            block(x)

    def forward_backward() -> None:
        block.zero_grad(set_to_none=True)
        x_grad.grad = None
        if ours:
            out, aux_loss, _ = block(x_grad)
            torch.autograd.backward([out, aux_loss], [grad, torch.ones_like(aux_loss)])
        else:
            block(x_grad).backward(grad)

    def setup(implementation: str, training: bool) -> Callable[[], None]:
        return lambda: (set_implementation(block, implementation), block.train(training))

    cases = {}
    for implementation in implementations:
        cases[implementation, FORWARD] = (setup(implementation, False), forward)
        cases[implementation, BOTH] = (setup(implementation, True), forward_backward)
    return cases


def expert_gemms(block: SparseMoeBlock, x: torch.Tensor) -> tuple[Callable[[], None], int]:
    """The routed experts' two GEMMs alone for ``x``'s routing (rows already grouped by expert: no gather,
    activation or scatter), and the bytes of expert weights they read."""
    with torch.no_grad():
        _, _, indices = block.gate(x)
    counts = torch.bincount(indices.reshape(-1), minlength=block.num_experts).tolist()
    experts = block.experts
    rows, inner = torch.randn(sum(counts), experts.hidden_dim), torch.randn(sum(counts), experts.intermediate_dim)
    projected, out = torch.empty(sum(counts), 2 * experts.intermediate_dim), torch.empty_like(rows)
    spans, start = [], 0
    for expert, count in enumerate(counts):
        if count:
            spans.append(
                (experts.gate_up_proj[expert].detach(), experts.down_proj[expert].detach(), start, start + count)
            )
        start += count

    def run() -> None:
        for gate_up, down, begin, end in spans:
            torch.mm(rows[begin:end], gate_up.T, out=projected[begin:end])
            torch.mm(inner[begin:end], down.T, out=out[begin:end])

    per_expert = (experts.gate_up_proj[0].numel() + experts.down_proj[0].numel()) * 4
    return run, len(spans) * per_expert


def measure(cases: dict[tuple, Case], repeats: int, max_call_s: float) -> dict[tuple, Timing]:
    """Median seconds per call of each case over ``repeats`` samples of >= 20 ms, cases interleaved."""
    results, inner = {}, {}
    for key, (setup, run) in cases.items():
        setup()
        for _ in range(2):  # warm-up: first calls on fresh memory are several times slower
            start = time.perf_counter()
            run()
            took = time.perf_counter() - start
            if took > max_call_s:
                results[key] = Timing(took, 0.0, True)
                break
        else:
            inner[key] = math.ceil(0.02 / took)
    samples = {key: [] for key in inner}
    for _ in range(repeats):
        for key, calls in inner.items():  # round-robin, so other load on the machine hits every case alike
            setup, run = cases[key]
            setup()
            start = time.perf_counter()
            for _ in range(calls):
                run()
            samples[key].append((time.perf_counter() - start) / calls)
    for key, values in samples.items():
        median = statistics.median(values)
        results[key] = Timing(median, (max(values) - min(values)) / median, False)
    return results


def forward_flops(config: BailingMoeV2Config) -> tuple[int, int]:
    """FLOPs per token of the forward: (routed experts, whole block = routed + shared expert + router GEMM)."""
    expert = 2 * 3 * config.hidden_size * config.moe_intermediate_size
    routed = config.num_experts_per_tok * expert
    return routed, routed + config.num_shared_experts * expert + 2 * config.hidden_size * config.num_experts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-call-s",
        type=float,
        default=10.0,
        help="a case whose call takes longer is timed once and not run at larger token counts",
    )
    parser.add_argument(
        "--batched-mm-max-gb",
        type=float,
        default=2.0,
        help="skip batched_mm where its per-slot copies of the expert weights would exceed this many GB",
    )
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES), help="for quick checks")
    parser.add_argument("--tokens", nargs="+", type=int, default=list(TOKENS), help="for quick checks")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "moe_block.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_at_start = os.getloadavg()[0]

    rows, notes, verdicts, no_batched, spreads, slow = [], [], [], [], [], []
    too_slow: set[tuple] = set()
    plans = []
    for shape in args.shapes:
        config = SHAPES[shape]
        ours, peer = make_blocks(config, args.seed)
        worst = check_agreement(ours, peer, config.hidden_size, args.seed)
        notes.append(f"{shape}: every implementation of both blocks is within {worst:.1e} of transformers' eager.")
        routed_flops, flops = forward_flops(config)
        for n_tokens in args.tokens:
            sizes = (config.num_experts, config.hidden_size, config.moe_intermediate_size)
            plan = fused_loop_plan(n_tokens, config.num_experts_per_tok, *sizes)
            plans.append(f"{shape}, {n_tokens} tokens: {plan}")
            x = torch.randn(1, n_tokens, config.hidden_size, generator=torch.Generator().manual_seed(args.seed))
            slot_gb = 3 * config.hidden_size * config.moe_intermediate_size * 4 / 1e9
            batched_gb = n_tokens * config.num_experts_per_tok * slot_gb
            if batched_gb > args.batched_mm_max_gb:
                no_batched.append(f"{shape}, {n_tokens} tokens ({batched_gb:.0f} GB)")
            cases = {}
            for name, block in ((PEER, peer), (OURS, ours)):
                implementations = IMPLEMENTATIONS[name]
                if batched_gb > args.batched_mm_max_gb:
                    implementations = tuple(i for i in implementations if i != "batched_mm")
                for key, case in block_cases(block, implementations, x).items():
                    if (shape, name, *key) not in too_slow:
                        cases[(name, *key)] = case
            if shape == SLICE and n_tokens in (TOKENS[0], TOKENS[-1]):
                gemms, gemm_bytes = expert_gemms(ours, x.view(n_tokens, -1))
                cases[GEMMS] = (_no_setup, gemms)
            if shape == SLICE and n_tokens == TOKENS[0]:
                big = torch.ones(128 * 2**20)  # 512 MiB, far beyond the caches
                cases[MEMORY] = (_no_setup, big.sum)
            if shape == SLICE and n_tokens == TOKENS[-1]:
                a = torch.randn(n_tokens, config.hidden_size)
                b = torch.randn(config.hidden_size, flops // (2 * config.hidden_size))  # the forward's FLOPs
                cases[DENSE] = (_no_setup, partial(torch.matmul, a, b))
            results = measure(cases, args.repeats, args.max_call_s)
            for key, timing in results.items():
                if timing.single:
                    too_slow.add((shape, *key))
                    slow.append(f"{' '.join(key)} at {shape}, {n_tokens} tokens ({timing.seconds:.1f} s)")
            spreads += [timing.spread for timing in results.values() if not timing.single]
            rows += table_rows(shape, n_tokens, flops, results, args.max_call_s)
            verdicts += goal_verdicts(shape, n_tokens, flops, routed_flops, results)
            if MEMORY in results:
                shared = sum(p.numel() for p in ours.shared_experts.parameters()) + ours.gate.weight.numel()
                verdicts += bandwidth_verdicts(shape, n_tokens, results, gemm_bytes, 4 * shared, big.numel() * 4)
                del big
            print(f"measured {shape}, {n_tokens} tokens", flush=True)
        del ours, peer

    columns = ["shape", "tokens", "block", "experts", "forward tok/s", "fwd+bwd tok/s", "forward GFLOP/s"]
    columns += ["forward vs peer best", "fwd+bwd vs peer best"]
    notes += [
        f"Blocks: {OURS} SparseMoeBlock (one router) and transformers {transformers.__version__} BailingHybridMoE.",
        "fused_loop is ming_moe's experts implementation (registered in transformers' ExpertsInterface), here run as: "
        f"{'; '.join(plans)}.",
        "batched_mm copies the expert weights of every (token, expert) slot and is not run where they exceed "
        f"{args.batched_mm_max_gb:g} GB: {'; '.join(no_batched)}.",
        f"Timed once (a call over {args.max_call_s:g} s) and not run at more tokens: {'; '.join(slow) or 'none'}; "
        "transformers' eager loop indexes the 3D weights per expert, so its backward zero-fills a full-size weight "
        "gradient per expert.",
        f"Median of {args.repeats} samples (each ≥ 20 ms) after two warm-up calls, all cases of a shape and token "
        f"count interleaved; fp32. Samples spread by {statistics.median(spreads):.0%} ((max − min) / median, median "
        f"over cases); 1-minute load average {load_at_start:.1f} at the start and {os.getloadavg()[0]:.1f} at the "
        f"end on {os.cpu_count()} cores shared with other work.",
        *verdicts,
    ]
    write_results(
        args.out,
        title="MoE block vs transformers' BailingHybridMoE (CPU, fp32, tokens/s)",
        command="nox -s bench-ming-moe",
        machine=describe_machine(f"{args.threads} threads", torch=torch.__version__),
        columns=columns,
        rows=rows,
        notes=" ".join(notes),
    )


def _no_setup() -> None:
    pass


def best(results: dict[tuple, Timing], name: str, kind: str) -> tuple[float, str] | None:
    """(seconds, implementation) of ``name``'s fastest implementation for ``kind``; None if none was run."""
    timed = [(timing.seconds, key[1]) for key, timing in results.items() if key[0] == name and key[2] == kind]
    return min(timed, default=None)


def table_rows(shape: str, n_tokens: int, flops: int, results: dict[tuple, Timing], max_call_s: float) -> list[dict]:
    peer_best = {kind: best(results, PEER, kind) for kind in (FORWARD, BOTH)}
    rows = []
    for name in (PEER, OURS):
        for implementation in IMPLEMENTATIONS[name]:
            timings = {kind: results.get((name, implementation, kind)) for kind in (FORWARD, BOTH)}
            if not any(timings.values()):
                continue  # not run: batched_mm's weight copies
            row = {"shape": shape, "tokens": n_tokens, "block": name, "experts": implementation}
            for kind, timing in timings.items():
                if timing is None:
                    row[f"{kind} tok/s"] = f"skipped (> {max_call_s:g} s per call at fewer tokens)"
                    row[f"{kind} vs peer best"] = "—"
                else:
                    row[f"{kind} tok/s"] = f"{n_tokens / timing.seconds:,.1f}" + (" (1 call)" if timing.single else "")
                    ratio = peer_best[kind] and peer_best[kind][0] / timing.seconds
                    row[f"{kind} vs peer best"] = f"{ratio:.2f}×" if ratio else "—"
            forward = timings[FORWARD]
            row["forward GFLOP/s"] = f"{n_tokens * flops / forward.seconds / 1e9:.2f}" if forward else "—"
            rows.append(row)
    return rows


def goal_verdicts(shape: str, n_tokens: int, flops: int, routed_flops: int, results: dict[tuple, Timing]) -> list[str]:
    ours = {kind: best(results, OURS, kind) for kind in (FORWARD, BOTH)}
    peer = {kind: best(results, PEER, kind) for kind in (FORWARD, BOTH)}
    if None in (*ours.values(), *peer.values()):
        return [f"{shape}, {n_tokens} tokens: not compared (a block had no case under --max-call-s)."]
    met = all(ours[kind][0] <= peer[kind][0] for kind in (FORWARD, BOTH))
    verdicts = [
        f"{shape}, {n_tokens} tokens: ours is {peer[FORWARD][0] / ours[FORWARD][0]:.2f}× the peer's best forward "
        f"({ours[FORWARD][1]} vs {peer[FORWARD][1]}) and {peer[BOTH][0] / ours[BOTH][0]:.2f}× its best fwd+bwd "
        f"({ours[BOTH][1]} vs {peer[BOTH][1]}): goal {'met' if met else 'NOT met'}."
    ]
    if DENSE in results:
        dense = n_tokens * flops / results[DENSE].seconds / 1e9
        achieved, peer_achieved = (n_tokens * flops / t[0] / 1e9 for t in (ours[FORWARD], peer[FORWARD]))
        gemms = n_tokens * routed_flops / results[GEMMS].seconds / 1e9
        verdicts.append(
            f"{shape}, {n_tokens} tokens: a dense GEMM of the forward's FLOPs runs at {dense:.1f} GFLOP/s; ours "
            f"({ours[FORWARD][1]}) {achieved:.1f} GFLOP/s = {achieved / dense:.0%} of it (goal ≥ 70%: "
            f"{'met' if achieved >= 0.7 * dense else 'NOT met'}), the peer's best {peer_achieved:.1f} GFLOP/s = "
            f"{peer_achieved / dense:.0%}; the routed experts' GEMMs alone (no gather, activation or scatter) reach "
            f"{gemms:.1f} GFLOP/s = {gemms / dense:.0%}."
        )
    return verdicts


def bandwidth_verdicts(
    shape: str, n_tokens: int, results: dict[tuple, Timing], gemm_bytes: int, other_bytes: int, summed_bytes: int
) -> list[str]:
    ours, peer = best(results, OURS, FORWARD), best(results, PEER, FORWARD)
    if ours is None or peer is None:
        return []
    read = gemm_bytes + other_bytes
    bandwidth = summed_bytes / results[MEMORY].seconds / 1e9
    return [
        f"{shape}, {n_tokens} tokens: a forward reads {read / 1e6:.0f} MB of weights (the routed experts it picks, "
        f"the shared expert, the router); memory read bandwidth (sum of a {summed_bytes / 2**20:.0f} MiB tensor) "
        f"{bandwidth:.1f} GB/s; ours ({ours[1]}) reads the weights at {read / ours[0] / 1e9:.1f} GB/s "
        f"({read / ours[0] / 1e9 / bandwidth:.0%} of it), the peer's best ({peer[1]}) at {read / peer[0] / 1e9:.1f} "
        f"GB/s; the expert GEMMs alone stream their weights at {gemm_bytes / results[GEMMS].seconds / 1e9:.1f} GB/s."
    ]


if __name__ == "__main__":
    main()
