"""One lane's expert GEMMs against a dense GEMM on one thread: what bounds ``fused_loop`` at the 256-expert slice.

``fused_loop`` runs each expert's two GEMMs single-threaded on a lane (one per core), so the rate it can reach is
that of these GEMMs on one thread. Timed on one thread, fp32, at the slice's shapes (hidden 1024, expert width 256,
256 experts): a dense GEMM of the block forward's FLOPs at 2048 tokens; each expert's gate/up (``rows × 1024`` by
``1024 × 512``) and down (``rows × 256`` by ``256 × 1024``) GEMM at 8 rows per expert (256 tokens) and 64 (2048
tokens), with the weights of all 256 experts in turn (read from memory, as in the block) and with one expert's
weights over and over (in cache); and the memory read bandwidth (sum of a 512 MiB tensor). Prints a table and
writes ``results/expert_gemm.json``.

    python packages/ming-moe/benchmarks/bench_expert_gemm.py [--repeats 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ming_testdata.results import describe_machine, write_results

HIDDEN, WIDTH, EXPERTS, TOKENS = 1024, 256, 256, 2048
DENSE_COLUMNS = 7168  # the block forward's FLOPs per token (routed top-8 + shared expert + router) / (2 · hidden)


def median_seconds(cases: dict[tuple, Callable[[], object]], repeats: int) -> dict[tuple, float]:
    """Median seconds of each case over ``repeats`` samples after one warm-up call, the cases interleaved (so other
    load on the machine hits them alike)."""
    for run in cases.values():
        run()
    samples = {key: [] for key in cases}
    for _ in range(repeats):
        for key, run in cases.items():
            start = time.perf_counter()
            run()
            samples[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "expert_gemm.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    gate_up = torch.randn(EXPERTS, 2 * WIDTH, HIDDEN)
    down = torch.randn(EXPERTS, HIDDEN, WIDTH)
    a, b = torch.randn(TOKENS, HIDDEN), torch.randn(HIDDEN, DENSE_COLUMNS)
    big = torch.ones(128 * 2**20)
    cases, flops = {("dense", TOKENS, "in cache"): lambda: a @ b, ("memory",): big.sum}, {}
    flops["dense", TOKENS, "in cache"] = 2 * TOKENS * HIDDEN * DENSE_COLUMNS
    for per_expert in (8, 64):
        x, inner = torch.randn(per_expert, HIDDEN), torch.randn(per_expert, WIDTH)
        projected, out = torch.empty(per_expert, 2 * WIDTH), torch.empty(per_expert, HIDDEN)
        for name, weights, left, result in (("gate/up", gate_up, x, projected), ("down", down, inner, out)):
            for where, experts in (("from memory", range(EXPERTS)), ("in cache", [0] * EXPERTS)):

                def run(weights=weights, left=left, result=result, experts=experts) -> None:
                    for expert in experts:
                        torch.mm(left, weights[expert].T, out=result)

                cases[name, per_expert, where] = run
                flops[name, per_expert, where] = EXPERTS * 2 * per_expert * weights.shape[1] * weights.shape[2]
    took = median_seconds(cases, args.repeats)
    bandwidth = big.numel() * 4 / took["memory",] / 1e9
    dense = flops["dense", TOKENS, "in cache"] / took["dense", TOKENS, "in cache"] / 1e9
    rows = []
    for key, count in flops.items():
        rate = count / took[key] / 1e9
        row = {"GEMM": key[0], "rows per expert": key[1], "weights": key[2], "GFLOP/s": f"{rate:.1f}"}
        weight_bytes = EXPERTS * (gate_up if key[0] == "gate/up" else down)[0].numel() * 4
        read = "—" if key[0] == "dense" else f"{weight_bytes / took[key] / 1e9:.1f}"
        rows.append(row | {"of dense": f"{rate / dense:.0%}", "weights read GB/s": read})
    columns = list(rows[0])
    notes = (
        f"One thread, fp32, median of {args.repeats} samples after a warm-up call, cases interleaved; memory read "
        f"bandwidth (sum of a 512 MiB tensor) {bandwidth:.1f} GB/s on one thread. The dense GEMM is {TOKENS} × "
        f"{HIDDEN} by {HIDDEN} × {DENSE_COLUMNS}; an expert GEMM runs once per expert, on each of the {EXPERTS} "
        "experts' weights in turn (from memory, as in the block) or on one expert's weights each time (in cache). "
        f"1-minute load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores shared with other work."
    )
    write_results(
        args.out,
        title="Expert GEMMs of the 256-expert slice vs a dense GEMM (CPU, 1 thread, fp32)",
        command="python packages/ming-moe/benchmarks/bench_expert_gemm.py",
        machine=describe_machine("1 thread", torch=torch.__version__),
        columns=columns,
        rows=rows,
        notes=notes,
    )


if __name__ == "__main__":
    main()
