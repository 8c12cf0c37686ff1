"""Train the tiny context-aware recogniser on CPU and cache it (safetensors) for ``bench_recognizer.py``.

The package's tiny Whisper encoder + projector feeds a 4-layer LFM2 decoder (short convolutions alternating with
attention, ``small_recognizer(decoder="lfm2")``). Names are made up, so a test name can only come out right if the
decoder copies it from the prompt's hotword list (or spells it from the sound); the recipe is built to make that copy
learnable in a few CPU minutes:

- decoder: a convolution layer puts each token's predecessor into its state, so one attention layer can copy "what
  followed this piece in the hotword list"; a Qwen2 decoder of the same size, which must grow a previous-token and
  an induction head together, still copied only about half of a name's pieces after the same warm-up;
- tokenizer: a coarse byte-level BPE (1024 tokens) learned from the training rows, in which words carry their
  leading space and digits, punctuation, tabs and newlines are tokens of their own, so a name is the same pieces in
  the hotword list and in the answer (see :func:`build_tokenizer`); template words are single tokens;
- text-only warm-up (5 CPU minutes): the decoder alone on ``prompt + answer`` with every true name listed among as
  many distractors, half of the samples also giving the transcript itself as preceding text (a copy drill): a
  small transformer learns to copy when much of its target can be copied. Each epoch swaps every name (said,
  listed and distractor) for a stand-in of the same type from other lexicons (``recognizer_data.renaming``; never
  a training or test name), so a name in the answer can only come from the prompt, never from memory of the 40
  training lexicons;
- audio training (13 CPU minutes): samples from :func:`build_context_samples` over espeak-ng speech whose sentences
  name made-up people, places and products (:mod:`recognizer_data`): the true names mixed with as many distractors
  (each name kept with probability 0.9, 5 % negative samples listing only distractors) and, in 15 % of the
  samples, no context at all, so the model learns to use a hotword list, to ignore what is not said and to work
  without one (about 73 % of the names said are listed, so copying pays off). The loss is on the answer
  ``English\\t<transcript>`` only, plus an auxiliary CTC loss (:class:`AudioCTCHead`, weight ``--ctc-weight``)
  of the transcript's tokens on the audio embeddings, so the encoder learns token-aligned features.

Each phase has its own learning-rate warm-up and cosine decay over its CPU-time budget, so the step count depends
on the machine, and a text-only run (``--minutes 0``) resumed with the audio budget trains as one run does. Remake
the cached checkpoint (18 CPU minutes of training on one thread after making the data; a run stops after 30
wall-clock minutes, and an interrupted or stopped run continues where it left off when rerun without ``--fresh``):

    python packages/ming-contextasr/benchmarks/train_recognizer.py --fresh

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
from recognizer_data import rename, renaming, train_set, training_names
from safetensors.torch import load_file, save_file
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from tqdm import tqdm
from transformers import PreTrainedTokenizerFast

from ming_contextasr import (
    AudioCTCHead,
    ContextASRRecognizer,
    ContextASRRequest,
    ContextSample,
    ContextSampleOptions,
    build_context_samples,
    parse_transcription,
    render_prompt,
    small_recognizer,
)

DEFAULT_OUT = Path.home() / ".cache" / "ming" / "contextasr" / "recogniser-tiny"
WIDTH = 128  # LM width = projector output width
NO_CONTEXT_PROBABILITY = 0.15
SAMPLE_OPTIONS = {"distractor_ratio": 1.0, "entity_keep_probability": 0.9, "negative_probability": 0.05}
# The text-only warm-up lists every true name (with as many distractors): copying from the list always pays off.
TEXT_SAMPLE_OPTIONS = {"distractor_ratio": 1.0, "entity_keep_probability": 1.0, "negative_probability": 0.0}
# Copy drill: this share of the warm-up samples also gives the transcript itself as preceding text, so every answer
# token can be copied from the prompt: the dense signal under which a small transformer learns to copy quickly.
COPY_DRILL_PROBABILITY = 0.5
AUDIO_TOKEN = "<audio>"
VOCAB_SIZE = 1024
_OPTIMIZER_FILE, _PROGRESS_FILE, _CTC_FILE = "optimizer.safetensors", "progress.json", "ctc_head.safetensors"


def build_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A coarse byte-level BPE learned from ``texts``, in which a name is the same pieces in the hotword list and in
    running text.

    Text is first split into words with at most one leading space (" Sotriti"), digits and punctuation marks and
    other whitespace characters (tab, newline) each on their own, and BPE merges only within those pieces. A name
    after a space is then spelled the same in the hotword list (after ": " or "; ") and in the answer, so copying it
    is repeating those pieces; and since the space is part of a word's first piece, a copy never has to continue
    after an isolated space, whose successor is ambiguous. (After the answer's tab, at the start of a sentence, only
    the first piece lacks its space.) Frequent template and instruction words become single tokens while names
    (each rare) split into syllable-like pieces that also spell unseen names; any byte is still a token. Special
    tokens: ``<pad>``, ``</s>`` (EOS) and ``<audio>``.
    """
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r" ?[^\W\d_]+|\s|\d|[^\w\s]|_"), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "</s>", AUDIO_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, pad_token="<pad>", eos_token="</s>", additional_special_tokens=[AUDIO_TOKEN]
    )


def build_recognizer(seed: int, tokenizer: PreTrainedTokenizerFast, decoder: str = "lfm2") -> ContextASRRecognizer:
    """A freshly initialised recogniser: tiny encoder preset (projecting to ``WIDTH``) + a 4-layer decoder over
    ``tokenizer`` (LFM2: conv, attention, conv, attention; or Qwen2 for comparison)."""
    return small_recognizer(
        tokenizer, AUDIO_TOKEN, width=WIDTH, num_layers=4, max_positions=1024, seed=seed, decoder=decoder
    )


def epoch_samples(
    utterances: list, pool: list[str], seed: int, epoch: int, text_only: bool = False, stand_ins: dict | None = None
) -> list[tuple[ContextASRRequest, str]]:
    """One ``(request, answer)`` per utterance for ``epoch``: context drawn afresh each epoch (``text_only``: the
    warm-up's, always with every true name listed); ``stand_ins`` renames every name (said and listed)."""
    if stand_ins is not None:
        utterances = [rename(u, stand_ins) for u in utterances]
        pool = [stand_ins[name] for name in pool]
    options = TEXT_SAMPLE_OPTIONS if text_only else SAMPLE_OPTIONS
    samples: list[ContextSample] = build_context_samples(
        utterances, pool, ContextSampleOptions(seed=seed * 1_000 + epoch + (500 if text_only else 0), **options)
    )
    pairs = []
    for i, sample in enumerate(samples):
        request = sample.request()
        draw = np.random.default_rng([seed, epoch, i]).random()
        if text_only and draw < COPY_DRILL_PROBABILITY:
            request = request.model_copy(update={"preceding_text": sample.transcript})
        elif not text_only and draw < NO_CONTEXT_PROBABILITY:
            request = ContextASRRequest(audio=request.audio, language=request.language)
        pairs.append((request, sample.target()))
    return pairs


def text_only_loss(model: ContextASRRecognizer, pairs: list[tuple[ContextASRRequest, str]]) -> torch.Tensor:
    """The decoder alone on ``prompt + "\n" + answer + EOS`` (no audio placeholders), loss on answer and EOS.

    Without the audio the decoder cannot tell which sentence is said, but it can learn the sentence templates and
    that a name in the answer is spelled as in the hotword list: an induction-style copy it then keeps once the audio
    says which listed name comes next.
    """
    tokenizer = model.tokenizer
    rows, labels = [], []
    for request, answer in pairs:
        text = render_prompt(request, model.prompt_options).text + "\n"
        prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
        target = [*tokenizer(answer, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
        rows.append(prompt + target)
        labels.append([-100] * len(prompt) + target)
    longest = max(len(row) for row in rows)
    ids = torch.tensor([row + [tokenizer.pad_token_id] * (longest - len(row)) for row in rows])
    mask = torch.tensor([[1] * len(row) + [0] * (longest - len(row)) for row in rows])
    targets = torch.tensor([row + [-100] * (longest - len(row)) for row in labels])
    return model.language_model(input_ids=ids, attention_mask=mask, labels=targets).loss


def learning_rate(step: int, progress: float, peak: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to a tenth of the peak as ``progress`` (the share of
    the time budget used) goes from 0 to 1."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def ctc_targets(model: ContextASRRecognizer, answers: list[str]) -> list[list[int]]:
    """The CTC aid's targets: each answer's transcript (without the language) in the recogniser's tokens."""
    return [
        model.tokenizer(parse_transcription(a).text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        for a in answers
    ]


def save_progress(
    out: Path,
    model: ContextASRRecognizer,
    ctc_head: AudioCTCHead,
    optimizer: torch.optim.Optimizer,
    step: int,
    seconds: float,
    text_steps: int,
) -> None:
    """Checkpoint the recogniser, the CTC head and the optimizer moments (safetensors), the steps and the training
    time used."""
    model.save_pretrained(out)
    save_file(ctc_head.state_dict(), out / _CTC_FILE)
    state = optimizer.state_dict()["state"]
    tensors = {f"{i}.{key}": value for i, moments in state.items() for key, value in moments.items()}
    save_file({name: t.contiguous() for name, t in tensors.items()}, out / _OPTIMIZER_FILE)
    progress = {"step": step, "seconds": seconds, "text_steps": text_steps}
    (out / _PROGRESS_FILE).write_text(json.dumps(progress) + "\n")


def load_optimizer(out: Path, optimizer: torch.optim.Optimizer) -> tuple[int, float, int]:
    """Restore the optimizer moments written by :func:`save_progress`; the steps (all, text-only) and the training
    time so far."""
    state = optimizer.state_dict()
    for name, value in load_file(out / _OPTIMIZER_FILE).items():
        index, key = name.split(".", 1)
        state["state"].setdefault(int(index), {})[key] = value
    optimizer.load_state_dict(state)
    progress = json.loads((out / _PROGRESS_FILE).read_text())
    return progress["step"], progress["seconds"], progress["text_steps"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seeds", type=int, default=40, help="training lexicons (ming-testdata seeds 1…N)")
    parser.add_argument("--per-seed", type=int, default=100, help="utterances per training seed")
    parser.add_argument("--text-minutes", type=float, default=5.0, help="text-only warm-up, CPU minutes")
    parser.add_argument("--minutes", type=float, default=13.0, help="audio training, CPU minutes (data excluded)")
    parser.add_argument(
        "--wall-minutes", type=float, default=30.0, help="stop (resumably) after this long, data making included"
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--ctc-weight", type=float, default=1.0, help="auxiliary CTC loss on the audio embeddings")
    parser.add_argument("--save-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--stand-in-names",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="text-only warm-up on names swapped, each epoch, for names of other lexicons",
    )
    parser.add_argument(
        "--decoder", choices=["lfm2", "qwen2"], default="lfm2", help="decoder of a fresh run (qwen2: for comparison)"
    )
    parser.add_argument("--fresh", action="store_true", help="ignore a checkpoint in --out and start over")
    args = parser.parse_args()
    torch.set_num_threads(1)

    started = time.perf_counter()
    utterances = train_set(args.seeds, args.per_seed)
    pool = training_names(args.seeds)
    print(f"{len(utterances)} training utterances, {len(pool)} names, made in {time.perf_counter() - started:.0f} s")

    resume = not args.fresh and (args.out / _PROGRESS_FILE).is_file()
    if resume:
        model = ContextASRRecognizer.from_pretrained(args.out)
    else:  # the tokenizer learns from the training rows as the model will see them (first epoch's context)
        texts = [render_prompt(r).text + "\n" + a for r, a in epoch_samples(utterances, pool, args.seed, 0)]
        model = build_recognizer(args.seed, build_tokenizer(texts, VOCAB_SIZE), args.decoder)
    model.train()
    # Joint CTC-attention training in the audio phase: a CTC head over the audio embeddings (blank = the padding
    # token, labels = the transcript's tokens; a training aid, not part of the recogniser) gives every audio frame a
    # gradient towards the tokens said there, so the decoder gets token-aligned audio features to read.
    ctc_head = AudioCTCHead(WIDTH, len(model.tokenizer), blank=model.tokenizer.pad_token_id)
    if resume and (args.out / _CTC_FILE).is_file():
        ctc_head.load_state_dict(load_file(args.out / _CTC_FILE))
    parameters = [*model.parameters(), *ctc_head.parameters()]  # the model's first, as optimizer files index them
    optimizer = torch.optim.AdamW(parameters, lr=args.lr, weight_decay=0.01)
    step, used, text_steps = load_optimizer(args.out, optimizer) if resume else (0, 0.0, 0)
    if resume:
        print(f"resuming from step {step} ({used:.0f} s used)")
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters")

    text_budget = 60 * args.text_minutes
    budget = text_budget + 60 * args.minutes
    epochs: dict[tuple[bool, int], tuple[list[tuple[ContextASRRequest, str]], np.ndarray]] = {}
    losses: list[float] = []
    ctc_losses: list[float] = []
    bar = tqdm(total=round(budget), initial=round(used), desc="train (CPU s)")
    while used < budget:
        tick = time.process_time()
        text_only = used < text_budget
        phase_step = step if text_only else step - text_steps
        batch = []
        for position in range(phase_step * args.batch, (phase_step + 1) * args.batch):
            epoch, index = divmod(position, len(utterances))
            if (text_only, epoch) not in epochs:  # keep only the current epoch
                order = np.random.default_rng([args.seed, epoch, int(text_only)]).permutation(len(utterances))
                stand_ins = renaming(args.seeds, [args.seed, epoch]) if text_only and args.stand_in_names else None
                pairs = epoch_samples(utterances, pool, args.seed, epoch, text_only, stand_ins)
                epochs = {(text_only, epoch): (pairs, order)}
            pairs, order = epochs[text_only, epoch]
            batch.append(pairs[order[index]])
        # Each phase has its own warm-up and decay (the audio phase starts with an untrained encoder and projector),
        # so a text-only run (--minutes 0) resumed with an audio budget trains exactly as one run would.
        if text_only:
            rate = learning_rate(step, used / text_budget, args.lr, args.warmup)
        else:
            rate = learning_rate(phase_step, (used - text_budget) / (budget - text_budget), args.lr, args.warmup)
        for group in optimizer.param_groups:
            group["lr"] = rate
        requests, answers = [r for r, _ in batch], [a for _, a in batch]
        if text_only:
            loss = answer_loss = text_only_loss(model, batch)
        else:
            output = model(requests, answers)
            loss = answer_loss = output.loss
            if args.ctc_weight > 0:
                ctc = ctc_head.loss(output.audio, ctc_targets(model, answers))
                ctc_losses.append(ctc.item())
                loss = loss + args.ctc_weight * ctc
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        losses.append(answer_loss.item())
        step += 1
        text_steps += text_only
        used += time.process_time() - tick
        bar.update(round(used) - bar.n)
        bar.set_postfix(
            step=step,
            text=text_only,
            loss=f"{np.mean(losses[-20:]):.3f}",
            ctc=f"{np.mean(ctc_losses[-20:] or [0]):.3f}",
        )
        out_of_time = time.perf_counter() - started >= 60 * args.wall_minutes
        if step % args.save_every == 0 or used >= budget or out_of_time:
            save_progress(args.out, model, ctc_head, optimizer, step, used, text_steps)
        if out_of_time:
            break
    bar.close()
    loss = np.mean(losses[-20:] or [float("nan")])
    print(
        f"saved to {args.out}: {step} steps ({text_steps} text-only), {used / 60:.1f} CPU min, "
        f"last-20-step loss {loss:.3f} (CTC aid {np.mean(ctc_losses[-20:] or [float('nan')]):.3f})"
    )
    if used < budget:
        print(f"wall-clock limit reached with {(budget - used) / 60:.1f} CPU min to go: rerun to continue")


if __name__ == "__main__":
    main()
