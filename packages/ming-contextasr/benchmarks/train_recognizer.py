"""Train the tiny context-aware recogniser on CPU and cache it (safetensors) for ``bench_recognizer.py``.

The package's tiny Whisper encoder + projector feeds a 4-layer Qwen2 decoder over ByT5's byte vocabulary (built
offline, no download). Samples come from :func:`build_context_samples` over espeak-ng speech whose sentences name
made-up people, places and products (:mod:`recognizer_data`): the true names mixed with as many distractors (each
name kept with probability 0.8, 10 % negative samples listing only distractors) and, in 30 % of the samples, no
context at all, so the model learns to use a hotword list, to ignore what is not said and to work without one. The
loss is on the answer ``English\\t<transcript>`` only.

Remake the cached checkpoint (17 CPU minutes of training on one thread after making the data; the learning-rate
schedule follows the CPU-time budget, so the step count depends on the machine; a run stops after 19 wall-clock
minutes, and an interrupted or stopped run continues where it left off when rerun):

    python packages/ming-contextasr/benchmarks/train_recognizer.py

It is written to ``~/.cache/ming/contextasr/recogniser-tiny/`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from recognizer_data import train_set, training_names
from safetensors.torch import load_file, save_file
from tqdm import tqdm
from transformers import ByT5Tokenizer, Qwen2Config, Qwen2ForCausalLM

from ming_contextasr import (
    ContextASRAudioConfig,
    ContextASRAudioModel,
    ContextASRRecognizer,
    ContextASRRequest,
    ContextSample,
    ContextSampleOptions,
    build_context_samples,
)

DEFAULT_OUT = Path.home() / ".cache" / "ming" / "contextasr" / "recogniser-tiny"
WIDTH = 128  # LM width = projector output width
NO_CONTEXT_PROBABILITY = 0.3
SAMPLE_OPTIONS = {"distractor_ratio": 1.0, "entity_keep_probability": 0.8, "negative_probability": 0.1}
_OPTIMIZER_FILE, _PROGRESS_FILE = "optimizer.safetensors", "progress.json"


def build_recognizer(seed: int) -> ContextASRRecognizer:
    """A freshly initialised recogniser: tiny encoder preset (projecting to ``WIDTH``) + a small Qwen2."""
    torch.manual_seed(seed)
    tokenizer = ByT5Tokenizer()
    audio_config = ContextASRAudioConfig.tiny()
    audio_config.llm_hidden_size = WIDTH
    language_model = Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=len(tokenizer),
            hidden_size=WIDTH,
            intermediate_size=2 * WIDTH,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            tie_word_embeddings=True,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=None,
        )
    )
    # ByT5's first sentinel token never comes out of tokenising text: it marks the audio positions.
    audio_token_id = tokenizer.convert_tokens_to_ids("<extra_id_0>")
    return ContextASRRecognizer(ContextASRAudioModel(audio_config), language_model, tokenizer, audio_token_id)


def epoch_samples(utterances: list, pool: list[str], seed: int, epoch: int) -> list[tuple[ContextASRRequest, str]]:
    """One ``(request, answer)`` per utterance for ``epoch``: context drawn afresh each epoch."""
    samples: list[ContextSample] = build_context_samples(
        utterances, pool, ContextSampleOptions(seed=seed * 1_000 + epoch, **SAMPLE_OPTIONS)
    )
    pairs = []
    for i, sample in enumerate(samples):
        request = sample.request()
        if np.random.default_rng([seed, epoch, i]).random() < NO_CONTEXT_PROBABILITY:
            request = ContextASRRequest(audio=request.audio, language=request.language)
        pairs.append((request, sample.target()))
    return pairs


def learning_rate(step: int, progress: float, peak: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to a tenth of the peak as ``progress`` (the share of
    the time budget used) goes from 0 to 1."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def save_progress(
    out: Path, model: ContextASRRecognizer, optimizer: torch.optim.Optimizer, step: int, seconds: float
) -> None:
    """Checkpoint the recogniser, the optimizer moments (safetensors), the step and the training time used."""
    model.save_pretrained(out)
    state = optimizer.state_dict()["state"]
    tensors = {f"{i}.{key}": value for i, moments in state.items() for key, value in moments.items()}
    save_file({name: t.contiguous() for name, t in tensors.items()}, out / _OPTIMIZER_FILE)
    (out / _PROGRESS_FILE).write_text(json.dumps({"step": step, "seconds": seconds}) + "\n")


def load_optimizer(out: Path, optimizer: torch.optim.Optimizer) -> tuple[int, float]:
    """Restore the optimizer moments written by :func:`save_progress`; the step and training time so far."""
    state = optimizer.state_dict()
    for name, value in load_file(out / _OPTIMIZER_FILE).items():
        index, key = name.split(".", 1)
        state["state"].setdefault(int(index), {})[key] = value
    optimizer.load_state_dict(state)
    progress = json.loads((out / _PROGRESS_FILE).read_text())
    return progress["step"], progress["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seeds", type=int, default=40, help="training lexicons (ming-testdata seeds 1…N)")
    parser.add_argument("--per-seed", type=int, default=100, help="utterances per training seed")
    parser.add_argument("--minutes", type=float, default=17.0, help="training budget, CPU minutes (data excluded)")
    parser.add_argument(
        "--wall-minutes", type=float, default=19.0, help="stop (resumably) after this long, data making included"
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--save-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="ignore a checkpoint in --out and start over")
    args = parser.parse_args()
    torch.set_num_threads(1)

    started = time.perf_counter()
    utterances = train_set(args.seeds, args.per_seed)
    pool = training_names(args.seeds)
    print(f"{len(utterances)} training utterances, {len(pool)} names, made in {time.perf_counter() - started:.0f} s")

    resume = not args.fresh and (args.out / _PROGRESS_FILE).is_file()
    model = ContextASRRecognizer.from_pretrained(args.out) if resume else build_recognizer(args.seed)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    step, used = load_optimizer(args.out, optimizer) if resume else (0, 0.0)
    if resume:
        print(f"resuming from step {step} ({used:.0f} s used)")
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters")

    budget = 60 * args.minutes
    epochs: dict[int, tuple[list[tuple[ContextASRRequest, str]], np.ndarray]] = {}
    losses: list[float] = []
    bar = tqdm(total=round(budget), initial=round(used), desc="train (CPU s)")
    while used < budget:
        tick = time.process_time()
        batch = []
        for position in range(step * args.batch, (step + 1) * args.batch):
            epoch, index = divmod(position, len(utterances))
            if epoch not in epochs:  # keep only the current epoch
                order = np.random.default_rng([args.seed, epoch]).permutation(len(utterances))
                epochs = {epoch: (epoch_samples(utterances, pool, args.seed, epoch), order)}
            pairs, order = epochs[epoch]
            batch.append(pairs[order[index]])
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, used / budget, args.lr, args.warmup)
        loss = model([r for r, _ in batch], [a for _, a in batch]).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        step += 1
        used += time.process_time() - tick
        bar.update(round(used) - bar.n)
        bar.set_postfix(step=step, loss=f"{np.mean(losses[-20:]):.3f}")
        out_of_time = time.perf_counter() - started >= 60 * args.wall_minutes
        if step % args.save_every == 0 or used >= budget or out_of_time:
            save_progress(args.out, model, optimizer, step, used)
        if out_of_time:
            break
    bar.close()
    loss = np.mean(losses[-20:] or [float("nan")])
    print(f"saved to {args.out}: {step} steps, {used / 60:.1f} CPU min, last-20-step loss {loss:.3f}")
    if used < budget:
        print(f"wall-clock limit reached with {(budget - used) / 60:.1f} CPU min to go: rerun to continue")


if __name__ == "__main__":
    main()
