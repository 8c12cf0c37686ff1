"""Hybrid balancing on vs off: the tiny preset trained for 300 steps on byte-level text made offline.

Reports the expert-load imbalance (max / mean load of the text router, averaged over MoE layers) and the LM loss,
with balancing on (aux loss 0.01 + bias updates at rate 0.01, per router) and off. Writes results/balancing.json.

    python packages/ming-moe/benchmarks/bench_balancing.py [--steps 300]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ming_moe import BailingMoeV2Config, BailingMoeV2ForCausalLM, load_imbalance, random_windows, train_causal_lm
from ming_testdata import make_sentences
from ming_testdata.results import describe_machine, write_results


def byte_batches(seed: int):
    text = " ".join(s.text for s in make_sentences(2000, language="en", seed=0)).encode()
    return random_windows(torch.tensor(list(text)), 16, 64, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "balancing.json")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the tiny model is faster on one thread, and two thrash on a busy machine
    rows = []
    for balance in (False, True):
        torch.manual_seed(0)
        config = BailingMoeV2Config.tiny(router_aux_loss_coef=0.01, bias_update_rate=0.01)
        start = time.perf_counter()
        log = train_causal_lm(BailingMoeV2ForCausalLM(config), byte_batches(1), args.steps, balance=balance)
        seconds = time.perf_counter() - start
        window_imbalance = sum(load_imbalance(load) for load in log.final_load) / len(log.final_load)
        rows.append(
            {
                "balancing": "on" if balance else "off",
                "LM loss (first 20 → last 20 steps)": f"{sum(log.lm_loss[:20]) / 20:.3f} → "
                f"{sum(log.lm_loss[-20:]) / 20:.3f}",
                "max/mean load, per step (first 20 → last 20)": f"{sum(log.imbalance[:20]) / 20:.2f} → "
                f"{sum(log.imbalance[-20:]) / 20:.2f}",
                "max/mean load over the last 20 steps": f"{window_imbalance:.2f}",
                "train s": f"{seconds:.0f}",
            }
        )
    columns = list(rows[0])
    write_results(
        args.out,
        title=f"Hybrid balancing on vs off (tiny preset, {args.steps} steps)",
        command="nox -s bench-ming-moe",
        machine=describe_machine(f"{torch.get_num_threads()} thread(s)", torch=torch.__version__),
        columns=columns,
        rows=rows,
        notes=(
            "Tiny preset (4 layers, 16 experts in 4 groups, top-4), 16 × 64 byte tokens per step, AdamW 3e-3. "
            "Loads are the text router's, averaged over the 3 MoE layers; 1.00 is perfectly balanced."
        ),
    )


if __name__ == "__main__":
    main()
