"""Expert-parallel MoE block on 2 CPU processes (gloo) vs 1 process: tokens/s and all-to-all bytes per token.

The block is the one-layer slice of ``bench_moe_block.py`` (hidden 1024, 256 experts of width 256, top-8, 8 groups /
best 4, one router, fp32). The same global batch is run by one process (one thread, and two threads: the same two
cores) and by two processes with one thread each, expert-parallel (128 experts per rank, each rank its half of the
tokens). Each configuration's output must equal the single-process block's within 1e-5, or the benchmark fails.
Timed: forward (eval, no grad) and forward+backward (training mode); the two-process time of a call is the slower
rank's. The bytes are counted at ``torch.distributed.all_to_all_single`` during one forward: the token payload of the
dispatch (all slots, and the part that leaves the rank), against ``hidden × top_k × dtype size`` per token and
direction; the count exchange is listed apart. Prints a table and writes ``results/expert_parallel.json``.

    python packages/ming-moe/benchmarks/bench_expert_parallel.py [--tokens 512 4096] [--repeats 5]
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from bench_moe_block import SHAPES, SLICE

from ming_moe import ParallelLayout, SparseMoeBlock, apply_expert_parallel, build_device_mesh
from ming_testdata.results import describe_machine, write_results

WORLD = 2
CONFIG = SHAPES[SLICE]  # the one-layer slice of the single-process benchmark
FORWARD, BOTH = "forward", "fwd+bwd"
LOAD = "machine load"  # 1-minute load average after the timings: above the 2 cores, other jobs shared them


def make_block() -> SparseMoeBlock:
    torch.manual_seed(0)
    block = SparseMoeBlock(CONFIG)
    with torch.no_grad():
        for parameter in block.parameters():
            parameter.normal_(std=CONFIG.initializer_range)
    CONFIG._experts_implementation = "fused_loop"  # the fastest on CPU (bench_moe_block.py)
    return block


def tokens_for(count: int) -> torch.Tensor:
    return torch.randn(1, count, CONFIG.hidden_size, generator=torch.Generator().manual_seed(1))


def time_calls(block: SparseMoeBlock, x: torch.Tensor, mode: str, repeats: int, sync) -> float:
    """Median seconds per call (after one warm-up call); ``sync`` lines the ranks up before each call."""
    block.train(mode == BOTH)
    samples = []
    for index in range(repeats + 1):
        block.zero_grad(set_to_none=True)
        sync()
        start = time.perf_counter()
        if mode == FORWARD:
            with torch.no_grad():
                block(x)
        else:
            out, aux, _ = block(x)
            (out.square().mean() + aux).backward()
        elapsed = torch.tensor(time.perf_counter() - start, dtype=torch.float64)
        if dist.is_initialized():
            dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)  # a step ends when the slower rank ends
        if index:
            samples.append(float(elapsed))
    return statistics.median(samples)


class CountingAllToAll:
    """Wraps ``dist.all_to_all_single`` during one forward: bytes of each call, and the part sent to other ranks."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __enter__(self) -> CountingAllToAll:
        self.original = dist.all_to_all_single

        def counting(output, input, output_split_sizes=None, input_split_sizes=None, group=None, async_op=False):
            row = input[0].numel() * input.element_size() if input.shape[0] else 0
            sizes = input_split_sizes or [input.shape[0] // WORLD] * WORLD
            own = sizes[dist.get_rank(group)]
            self.calls.append((input.shape[0] * row, (input.shape[0] - own) * row))
            return self.original(output, input, output_split_sizes, input_split_sizes, group, async_op)

        dist.all_to_all_single = counting
        return self

    def __exit__(self, *exc) -> None:
        dist.all_to_all_single = self.original


def worker(rank: int, directory: str, token_counts: list[int], repeats: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{directory}/rendezvous",
        rank=rank,
        world_size=WORLD,
        timeout=datetime.timedelta(seconds=600),
    )
    block = apply_expert_parallel(make_block(), build_device_mesh(ParallelLayout(expert_parallel=WORLD))["ep"])
    results = {}
    for count in token_counts:
        x = tokens_for(count).chunk(WORLD, dim=1)[rank]
        with torch.no_grad(), CountingAllToAll() as counter:
            output = block.eval()(x)[0]
        parts = [torch.empty_like(output) for _ in range(WORLD)]
        dist.all_gather(parts, output)
        counts, dispatch = counter.calls[0], counter.calls[1]
        totals = torch.tensor([*counts, *dispatch], dtype=torch.float64)
        dist.all_reduce(totals)
        results[count] = {
            "output": torch.cat(parts, dim=1),
            "counts bytes": float(totals[0]) / WORLD,  # per rank and direction
            "dispatch bytes": float(totals[2]),  # all ranks together
            "dispatch bytes to other ranks": float(totals[3]),
            FORWARD: time_calls(block, x, FORWARD, repeats, dist.barrier),
            BOTH: time_calls(block, x, BOTH, repeats, dist.barrier),
            LOAD: os.getloadavg()[0],
        }
    if rank == 0:
        torch.save(results, f"{directory}/results.pt")
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[512, 4096], help="global batch sizes (tokens)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "expert_parallel.json")
    args = parser.parse_args()

    block = make_block()
    single = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for count in args.tokens:
            x = tokens_for(count)
            with torch.no_grad():
                single[count, "output"] = block.eval()(x)[0]
            for mode in (FORWARD, BOTH):
                single[count, threads, mode] = time_calls(block, x, mode, args.repeats, lambda: None)
            single[count, threads, LOAD] = os.getloadavg()[0]
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as directory:
        mp.spawn(worker, args=(directory, args.tokens, args.repeats), nprocs=WORLD)
        parallel = torch.load(f"{directory}/results.pt")

    columns = [
        "tokens",
        "run",
        "forward tok/s",
        "fwd+bwd tok/s",
        "max |Δ| vs 1 process",
        "all-to-all bytes/token (per direction)",
        "of which to the other rank",
        "analytic H·k·4",
        LOAD,
    ]
    analytic = CONFIG.hidden_size * CONFIG.num_experts_per_tok * 4
    rows = []
    for count in args.tokens:
        for threads in (1, 2):
            rows.append(
                {
                    "tokens": count,
                    "run": f"1 process, {threads} thread{'s' if threads > 1 else ''}",
                    "forward tok/s": f"{count / single[count, threads, FORWARD]:,.0f}",
                    "fwd+bwd tok/s": f"{count / single[count, threads, BOTH]:,.0f}",
                    "max |Δ| vs 1 process": "—",
                    "all-to-all bytes/token (per direction)": "—",
                    "of which to the other rank": "—",
                    "analytic H·k·4": "—",
                    LOAD: f"{single[count, threads, LOAD]:.1f}",
                }
            )
        result = parallel[count]
        difference = float((result["output"] - single[count, "output"]).abs().max())
        if difference > 1e-5:
            raise SystemExit(f"expert-parallel output differs from one process by {difference:.2e} at {count} tokens")
        rows.append(
            {
                "tokens": count,
                "run": "2 processes × 1 thread, EP=2",
                "forward tok/s": f"{count / result[FORWARD]:,.0f}",
                "fwd+bwd tok/s": f"{count / result[BOTH]:,.0f}",
                "max |Δ| vs 1 process": f"{difference:.1e}",
                "all-to-all bytes/token (per direction)": f"{result['dispatch bytes'] / count:,.0f}",
                "of which to the other rank": f"{result['dispatch bytes to other ranks'] / count:,.0f}",
                "analytic H·k·4": f"{analytic:,}",
                LOAD: f"{result[LOAD]:.1f}",
            }
        )
    for row in rows:
        print(" | ".join(f"{row[c]}" for c in columns))
    counts_bytes = parallel[args.tokens[0]]["counts bytes"]
    notes = (
        "One-layer slice: hidden 1024, 256 experts of width 256, top-8 (8 groups, best 4), one router, fp32, "
        "experts implementation fused_loop. Same global batch in every run; the 2-process output equals the "
        "1-process block's (column Δ). Bytes: the token payload given to all_to_all_single per token in one "
        "direction (the combine sends the same back); the per-expert count exchange before it adds "
        f"{counts_bytes:,.0f} bytes per rank and MoE layer, independent of the tokens. "
        "On this 2-core machine the 2 processes share the cores with the main process idle, so the comparison "
        "that matters is against 1 process with 2 threads; gloo's all-to-all is a loopback memory copy here, so "
        "network time is not measured. Machine load is the 1-minute load average after each run's timings: "
        "above 2, other jobs were sharing the 2 cores and the throughputs are lower bounds."
    )
    write_results(
        args.out,
        title="Expert-parallel MoE block: 2 processes (gloo) vs 1",
        command="python packages/ming-moe/benchmarks/bench_expert_parallel.py",
        machine=describe_machine(f"{torch.get_num_threads()} thread(s)", torch=torch.__version__),
        columns=columns,
        rows=rows,
        notes=notes,
    )


if __name__ == "__main__":
    main()
