"""Streaming generation speed on CPU, tiny and flash presets, batched vs naive classifier-free guidance.

Time to the first patch, real-time factor, network evaluations per patch and where the time goes (backbone,
aggregator, flow head), at random initialisation, with classifier-free guidance batched (both branches in one DiT
forward, as ``stream_speech`` does) against a naive sampler that runs the two branches as separate forwards.

Speed does not depend on the weights, so no training is needed. Every run generates exactly 50 (tiny) or 4 (flash)
patches (``min_patches = max_patches``: the untrained stop head cannot end it early) for a ``--text-tokens``-token
text with the paper's sampler (10 EPSS Euler steps, CFG 2, KV cache). Prints a table and writes
``results/generation_speed.json``.

    python packages/ming-tts-head/benchmarks/bench_generation_speed.py [--repeats 3] [--presets tiny flash]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
from report import machine, write_result

from ming_tts_head import FlowHead, GenerationOptions, TTSHeadConfig, TTSHeadModel, stream_speech

PRESETS: dict[str, Callable[[], TTSHeadConfig]] = {"tiny": TTSHeadConfig.tiny, "flash": TTSHeadConfig.flash}
PATCHES = {"tiny": 50, "flash": 4}  # flash: one patch is seconds on one core
PARTS = ("backbone", "aggregator", "flow_head")
BATCHED, NAIVE = "batched CFG (1 forward of 2 rows)", "naive CFG (2 forwards of 1 row)"
FRAME_S = 0.02  # 50 latent frames per second


@contextmanager
def naive_cfg(flow_head: FlowHead) -> Iterator[None]:
    """Replace ``flow_head.guided_velocity`` by the naive version: the conditional and the unconditional branch as
    two separate forwards (the same arithmetic, twice the calls)."""

    def guided_velocity(noisy, t, condition, history, history_mask, cfg_scale):
        conditional = flow_head(noisy, t, condition, history, history_mask)
        if cfg_scale == 1:
            return conditional
        null = flow_head.null_condition.to(condition.dtype).expand_as(condition)
        unconditional = flow_head(noisy, t, null, history, history_mask)
        return unconditional + cfg_scale * (conditional - unconditional)

    flow_head.guided_velocity = guided_velocity  # an instance attribute shadows the method
    try:
        yield
    finally:
        del flow_head.guided_velocity


class Timing(NamedTuple):
    """Seconds to the first patch and in all, by the wall clock and by this process's CPU time."""

    first_wall: float
    total_wall: float
    first_cpu: float
    total_cpu: float


@dataclass
class Profile:
    """Seconds and calls per part of the model, and DiT rows per call, over one generation."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PARTS, 0.0))
    calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PARTS, 0))
    flow_rows: int = 0


@contextmanager
def profiled(model: TTSHeadModel) -> Iterator[Profile]:
    """Time every forward of the backbone, the aggregator and the flow head with hooks (CPU: calls are
    synchronous, so wall time between the pre-hook and the hook is the call's time)."""
    profile, started, handles = Profile(), {}, []
    for name in PARTS:
        module = getattr(model, name)

        def before(_module, args, name=name):
            started[name] = time.perf_counter()
            if name == "flow_head":
                profile.flow_rows += args[0].shape[0]

        def after(_module, _args, _output, name=name):
            profile.seconds[name] += time.perf_counter() - started[name]
            profile.calls[name] += 1

        handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    try:
        yield profile
    finally:
        for handle in handles:
            handle.remove()


def generate(model: TTSHeadModel, text: list[int], options: GenerationOptions) -> tuple[Timing, torch.Tensor]:
    """Timings of one streamed generation, and its latents."""
    wall, cpu = time.perf_counter(), time.process_time()
    chunks = stream_speech(model, text, options)
    first = next(chunks)
    first_wall, first_cpu = time.perf_counter() - wall, time.process_time() - cpu
    latents = torch.cat([first.latents, *(chunk.latents for chunk in chunks)], dim=1)
    return Timing(first_wall, time.perf_counter() - wall, first_cpu, time.process_time() - cpu), latents


def measure_preset(preset: str, repeats: int, text_tokens: int, seed: int) -> tuple[list[dict], list[str]]:
    torch.manual_seed(seed)
    built = time.perf_counter()
    model = TTSHeadModel(PRESETS[preset]()).eval()
    built = time.perf_counter() - built
    patches = PATCHES[preset]
    text = torch.randint(0, model.config.vocab_size, (text_tokens,), generator=torch.Generator().manual_seed(seed))
    options = GenerationOptions(min_patches=patches, max_patches=patches, seed=seed)
    audio_s = patches * model.config.patch_size * FRAME_S
    samplers = {BATCHED: nullcontext, NAIVE: lambda: naive_cfg(model.flow_head)}

    for sampler in samplers.values():  # warm-up: first calls allocate
        with sampler():
            generate(model, text.tolist(), options.model_copy(update={"max_patches": 2, "min_patches": 2}))
    timings: dict[str, list[Timing]] = {name: [] for name in samplers}
    outputs = {}
    for _ in range(repeats):
        for name, sampler in samplers.items():  # interleaved, so load from other work hits both alike
            with sampler():
                timing, outputs[name] = generate(model, text.tolist(), options)
            timings[name].append(timing)
    rows, medians = [], {}
    for name, sampler in samplers.items():
        with sampler(), profiled(model) as profile:
            profiled_s = generate(model, text.tolist(), options)[0].total_wall
        median = medians[name] = Timing(*(statistics.median(values) for values in zip(*timings[name], strict=True)))
        shares = {part: profile.seconds[part] / profiled_s for part in PARTS}
        per_patch = [(total - first) / (patches - 1) for first, total in (median[:2], median[2:])]
        rows.append(
            {
                "preset": preset,
                "sampler": name,
                "NFE / patch": f"{profile.calls['flow_head'] / patches:g} DiT calls × "
                f"{profile.flow_rows / profile.calls['flow_head']:g} rows",
                "first patch ms (wall / CPU)": f"{median.first_wall * 1e3:,.0f} / {median.first_cpu * 1e3:,.0f}",
                "ms / later patch (wall / CPU)": " / ".join(f"{s * 1e3:,.1f}" for s in per_patch),
                "RTF (wall / CPU)": f"{median.total_wall / audio_s:.3g} / {median.total_cpu / audio_s:.3g}",
                "backbone %": f"{100 * shares['backbone']:.1f}",
                "aggregator %": f"{100 * shares['aggregator']:.1f}",
                "flow head %": f"{100 * shares['flow_head']:.1f}",
                "other %": f"{100 * (1 - sum(shares.values())):.1f}",
            }
        )
    batched, naive = medians[BATCHED], medians[NAIVE]
    difference = (outputs[BATCHED] - outputs[NAIVE]).abs().max().item()
    parameters = sum(p.numel() for p in model.parameters())
    notes = [
        f"{preset}: {parameters / 1e6:,.1f} M parameters (built in {built:.1f} s), {text_tokens} text tokens, "
        f"{patches} patches = {audio_s:.2f} s of audio; batched CFG takes "
        f"{batched.total_wall / naive.total_wall:.2f}× the naive sampler's wall time "
        f"({batched.total_cpu / naive.total_cpu:.2f}× its CPU time); their latents differ by at most "
        f"{difference:.1e} (the same arithmetic in another batch layout)."
    ]
    return rows, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed generations per preset and sampler")
    parser.add_argument("--presets", nargs="+", choices=list(PRESETS), default=list(PRESETS))
    parser.add_argument("--text-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: the machine is shared)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "generation_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_at_start = os.getloadavg()[0]
    rows, notes = [], []
    for preset in args.presets:
        preset_rows, preset_notes = measure_preset(preset, args.repeats, args.text_tokens, args.seed)
        rows += preset_rows
        notes += preset_notes
        print(f"measured {preset}", flush=True)
    notes += [
        "Sampler: 10 EPSS Euler steps, CFG 2, KV cache, fp32, sdpa attention, weights at random initialisation "
        "(speed does not depend on them). Time to the first patch includes the prefill of the text; RTF = generation "
        f"time / audio time (80 ms per patch). Times are the median of {args.repeats} streamed generations per "
        "sampler, the samplers interleaved, after a warm-up, by the wall clock and by the process's CPU time (one "
        "thread: CPU time is the compute, less sensitive to other work on the machine than the wall clock). The "
        "shares come from one further generation timed per part with forward hooks; 'other' is the stop head, "
        "noise, Euler updates and Python. NFE: with batched CFG one DiT call of 2 rows per Euler step (10 per "
        "patch), naively two calls of 1 row (20 per patch).",
        f"1-minute load average {load_at_start:.1f} at the start and {os.getloadavg()[0]:.1f} at the end on "
        f"{os.cpu_count()} cores shared with other work: wall times above CPU times mean the process waited for a "
        "core.",
    ]
    write_result(
        args.out,
        "Streaming generation speed: time to first patch, RTF, NFE, time per part; batched vs naive CFG (CPU, fp32)",
        machine(args.threads),
        rows,
        notes,
    )


if __name__ == "__main__":
    main()
