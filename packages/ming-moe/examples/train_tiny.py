"""Train the tiny BailingMoeV2 preset on text made offline, with hybrid balancing on, and plot the expert loads.

Run: python packages/ming-moe/examples/train_tiny.py [--steps 120] [--out DIR]
Text: byte-level tokens of sentences from ming-testdata (made-up names, places and products).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from ming_moe import BailingMoeV2Config, BailingMoeV2ForCausalLM, random_windows, train_causal_lm
from ming_testdata import make_sentences


def byte_batches(n_sentences: int, batch: int, length: int, seed: int):
    """Random windows of the byte-encoded sentences."""
    text = " ".join(s.text for s in make_sentences(n_sentences, language="en", seed=seed)).encode()
    return random_windows(torch.tensor(list(text)), batch, length, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--out", type=Path, default=None, help="folder for the plot (default: a temporary folder)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a model this small is faster on one thread, and two thrash on a busy machine
    torch.manual_seed(0)
    config = BailingMoeV2Config.tiny(router_aux_loss_coef=0.01, bias_update_rate=0.01)
    model = BailingMoeV2ForCausalLM(config)
    log = train_causal_lm(model, byte_batches(1000, 8, 64, seed=0), args.steps, balance=True)
    first, last = sum(log.lm_loss[:10]) / 10, sum(log.lm_loss[-10:]) / 10
    print(f"LM loss: {first:.3f} (first 10 steps) -> {last:.3f} (last 10 steps)")
    print(f"expert-load max/mean of the text router: {log.imbalance[0]:.2f} (step 1) -> {log.imbalance[-1]:.2f}")

    out = args.out or Path(tempfile.mkdtemp(prefix="ming-moe-"))
    out.mkdir(parents=True, exist_ok=True)
    fig, (ax_loss, ax_load) = plt.subplots(1, 2, figsize=(10, 3.5))
    ax_loss.plot(log.lm_loss, label="LM loss")
    ax_loss.plot(log.imbalance, label="load max/mean")
    ax_loss.set_xlabel("step")
    ax_loss.legend()
    for layer, load in enumerate(log.final_load):
        ax_load.plot(load.numpy() / load.mean().item(), "o-", label=f"MoE layer {layer + 1}")
    ax_load.axhline(1.0, color="0.5", lw=0.8)
    ax_load.set_xlabel("expert")
    ax_load.set_ylabel("load / mean (last 20 steps)")
    ax_load.legend()
    fig.tight_layout()
    fig.savefig(out / "moe_training.png", dpi=100)
    print(f"wrote {out / 'moe_training.png'}")


if __name__ == "__main__":
    main()
