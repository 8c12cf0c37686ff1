"""ming-omni loading and generation on CPU.

1. Loading: a random checkpoint of a few GB (the composed tiny model with its LLM widened to 1024 and given enough
   64-expert MoE layers to reach ``--checkpoint-gb``) is written as safetensors shards outside the repository, then
   loaded with ``MingOmniForConditionalGeneration.from_pretrained`` in a fresh process. Reported: load time, peak
   RSS of that process, the RSS of the same process before loading (interpreter, torch, the model built on
   ``meta``), and (peak − before) / checkpoint size. Goal: ≤ 1.1× (the weights are read once from the memory-mapped
   shards into a model built on ``meta``; no second copy). The checkpoint is deleted afterwards.
2. Text generation with the tiny preset: new tokens per second, greedy, with and without the KV cache (a text
   prompt and one with an image and audio), median of ``--repeats``.

Prints a table and writes ``results/omni.json``.

    python packages/ming-omni/benchmarks/bench_omni.py [--checkpoint-gb 3] [--checkpoint-dir /tmp/ming-omni-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import torch

from ming_moe import BailingMoeV2Config
from ming_omni import MingOmni, MingOmniConfig, MingOmniForConditionalGeneration, OmniOptions
from ming_testdata.results import describe_machine, write_results

RESULTS = Path(__file__).parent / "results"
_WIDTH, _EXPERTS, _EXPERT_WIDTH = 1024, 64, 512


def _big_config(gigabytes: float) -> MingOmniConfig:
    per_layer = 4 * _EXPERTS * 3 * _WIDTH * _EXPERT_WIDTH  # fp32 bytes of one MoE layer's experts
    layers = 1 + max(1, round(gigabytes * 1e9 / per_layer))  # layer 0 is dense
    llm = BailingMoeV2Config.tiny(
        vocab_size=512,
        hidden_size=_WIDTH,
        intermediate_size=2 * _WIDTH,
        num_hidden_layers=layers,
        num_attention_heads=8,
        num_key_value_heads=2,
        head_dim=128,
        num_experts=_EXPERTS,
        moe_intermediate_size=_EXPERT_WIDTH,
    )
    audio = MingOmniConfig.tiny().audio_config
    audio.llm_hidden_size = _WIDTH
    return MingOmniConfig.tiny(llm_config=llm, audio_config=audio)


_CHILD = textwrap.dedent(
    """
    import json, sys, time, torch
    torch.set_num_threads(1)

    def high_water():  # VmHWM: this process's peak RSS (ru_maxrss would include the parent's from before exec)
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

    from ming_omni import MingOmniConfig, MingOmniForConditionalGeneration, load_checkpoint
    directory, loader = sys.argv[1], sys.argv[2]
    config = MingOmniConfig.from_pretrained(directory)
    with torch.device("meta"):
        MingOmniForConditionalGeneration(config)  # warm the imports and the meta build
    before = high_water()
    start = time.perf_counter()
    if loader == "from_pretrained":
        model = MingOmniForConditionalGeneration.from_pretrained(directory)
    else:
        model = load_checkpoint(directory)
    seconds = time.perf_counter() - start
    peak = high_water()
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    print(json.dumps({"seconds": seconds, "before": before, "peak": peak, "param_bytes": size}))
    """
)


LOADERS = ("load_checkpoint", "from_pretrained")


def bench_loading(gigabytes: float, directory: Path) -> dict:
    config = _big_config(gigabytes)
    if directory.exists():
        shutil.rmtree(directory)
    torch.manual_seed(0)
    start = time.perf_counter()
    model = MingOmniForConditionalGeneration(config)
    model.save_pretrained(directory, max_shard_size="1GB")
    write_seconds = time.perf_counter() - start
    del model
    try:
        size = sum(f.stat().st_size for f in directory.glob("*.safetensors"))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        runs = {}
        for loader in LOADERS:
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, str(directory), loader],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            )
            runs[loader] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return {"layers": config.llm_config.num_hidden_layers, "size": size, "write_s": write_seconds, "runs": runs}


def _tokens_per_second(omni: MingOmni, messages, use_cache: bool, new_tokens: int, repeats: int) -> float:
    options = OmniOptions(max_new_tokens=new_tokens, use_cache=use_cache)
    inputs = omni.processor(messages)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.no_grad():
            out = omni.model.generate(
                **inputs.model_kwargs(),
                max_new_tokens=options.max_new_tokens,
                do_sample=False,
                use_cache=use_cache,
                eos_token_id=None,
                pad_token_id=omni.processor.pad_token_id,
            )
        times.append(time.perf_counter() - start)
        assert out.shape[1] == inputs.input_ids.shape[1] + new_tokens
    return new_tokens / statistics.median(times)


def bench_generation(new_tokens: int, repeats: int) -> list[dict]:
    omni = MingOmni.tiny(seed=0)
    rng = np.random.default_rng(0)
    text = [{"role": "user", "content": "Describe a red circle and a blue square on a white background."}]
    media = [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)},
                {"type": "audio", "audio": 0.1 * rng.standard_normal(16000).astype(np.float32)},
                {"type": "text", "text": "What is this?"},
            ],
        }
    ]
    rows = []
    for name, messages in (("text prompt", text), ("image + 1 s audio prompt", media)):
        prompt = omni.processor(messages).input_ids.shape[1]
        cached = _tokens_per_second(omni, messages, True, new_tokens, repeats)
        recomputed = _tokens_per_second(omni, messages, False, new_tokens, repeats)
        rows.append({"prompt": f"{name} ({prompt} tokens)", "cache": cached, "no cache": recomputed})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint-gb", type=float, default=3.0)
    parser.add_argument("--checkpoint-dir", type=Path, default=Path("/tmp/ming-omni-bench"))
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    load = bench_loading(args.checkpoint_gb, args.checkpoint_dir)
    ratios = {name: (run["peak"] - run["before"]) / load["size"] for name, run in load["runs"].items()}
    generation = bench_generation(args.new_tokens, args.repeats)

    gb = 1e9
    columns = ["measurement", "value"]
    rows = [
        {"measurement": "checkpoint size (safetensors, fp32)", "value": f"{load['size'] / gb:.2f} GB"},
        {"measurement": f"LLM layers (width {_WIDTH}, {_EXPERTS} experts)", "value": str(load["layers"])},
    ]
    for name, run in load["runs"].items():
        rows += [
            {"measurement": f"{name}: load time", "value": f"{run['seconds']:.1f} s"},
            {
                "measurement": f"{name}: RSS before → peak",
                "value": f"{run['before'] / gb:.2f} → {run['peak'] / gb:.2f} GB",
            },
            {"measurement": f"{name}: (peak − before) / size", "value": f"{ratios[name]:.2f}× (goal ≤ 1.1×)"},
        ]
    for row in generation:
        rows.append({"measurement": f"tiny generate, {row['prompt']}, KV cache", "value": f"{row['cache']:.1f} tok/s"})
        rows.append(
            {"measurement": f"tiny generate, {row['prompt']}, recompute", "value": f"{row['no cache']:.1f} tok/s"}
        )
    verdicts = ", ".join(f"{name} {r:.2f}× ({'met' if r <= 1.1 else 'NOT met'})" for name, r in ratios.items())
    notes = (
        f"Loading goal, extra peak RSS ≤ 1.1× the checkpoint size: {verdicts}. Peak RSS is the loading process's "
        "VmHWM; 'before' is its RSS after imports and a meta build of the model. The checkpoint was "
        f"written in {load['write_s']:.0f} s to a temporary directory outside the repository and deleted after the "
        f"run. Generation: {args.new_tokens} new tokens, greedy, median of {args.repeats}, {args.threads} thread(s); "
        "the recompute rows run the whole sequence (encoders included) at every step."
    )
    write_results(
        RESULTS / "omni.json",
        title="ming-omni: checkpoint loading (peak RSS vs size) and tiny text generation",
        command="nox -s bench-ming-omni",
        machine=describe_machine(f"{args.threads} thread(s)", torch=torch.__version__),
        columns=columns,
        rows=rows,
        notes=notes,
    )


if __name__ == "__main__":
    main()
