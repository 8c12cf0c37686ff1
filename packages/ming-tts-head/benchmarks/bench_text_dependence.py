"""Does the trained head's speech depend on the text? Its teacher-forced held-out flow-matching loss with the right
text, with random digits of the same word count, with another held-out sentence's text, and with the null condition
(classifier-free guidance's unconditional branch, which ignores the text).

A head that learned only durations and speech-like frames scores about the same with any text; one whose backbone
tells the flow head what to say scores far better with the right text. Flow times and noise are the same for every
row (4 fixed seeds), so the rows differ only in the condition. The latents are the ones the head was trained on:
trailing silence trimmed (``Clip.speech_latents``) unless its ``training.json`` says it was trained on whole clips.
Writes ``results/text_dependence.json``.

    python packages/ming-tts-head/benchmarks/bench_text_dependence.py [--checkpoint DIR] [--tokenizer DIR]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch
from espeak_corpus import CHECKPOINT_DIR, DIGITS, TOKENIZER_DIR, load_tokenizer, make_clips, sentences, text_ids
from report import machine, write_result

from ming_tts_head import TTSHeadModel, collate_examples

SEEDS = 4


def flow_loss(model: TTSHeadModel, texts: list[str], latents: list[torch.Tensor], null: bool = False) -> float:
    """Mean teacher-forced flow loss over ``SEEDS`` fixed draws of flow times and noise."""
    batch = collate_examples([(text_ids(text), x) for text, x in zip(texts, latents, strict=True)])
    flow_head = model.flow_head
    forward = flow_head.forward
    if null:  # every patch conditioned on the learned null condition instead of the backbone state
        flow_head.forward = lambda noisy, t, condition, *rest: forward(
            noisy, t, flow_head.null_condition.expand_as(condition), *rest
        )
    try:
        with torch.no_grad():
            losses = [model(**batch, generator=torch.Generator().manual_seed(s)).flow_loss.item() for s in range(SEEDS)]
    finally:
        flow_head.forward = forward
    return sum(losses) / SEEDS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT_DIR)
    parser.add_argument("--tokenizer", type=Path, default=TOKENIZER_DIR)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "text_dependence.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not (args.checkpoint / "config.json").is_file():
        raise SystemExit(f"no trained head at {args.checkpoint}: run train_espeak_tts.py first")
    model = TTSHeadModel.from_pretrained(args.checkpoint).eval()
    _, held_out = sentences()
    training = args.checkpoint / "training.json"
    trimmed = training.is_file() and json.loads(training.read_text()).get("trailing_silence_frames") is not None
    clips = make_clips(held_out, load_tokenizer(args.tokenizer))
    latents = [clip.speech_latents(model.config.patch_size) if trimmed else clip.latents for clip in clips]
    rng = random.Random(0)
    texts = {
        "right text": held_out,
        "random digits, same word count": [" ".join(rng.choices(DIGITS, k=len(t.split()))) for t in held_out],
        "another held-out sentence's text": held_out[1:] + held_out[:1],
    }
    rows = [{"condition": name, "flow loss": f"{flow_loss(model, t, latents):.4f}"} for name, t in texts.items()]
    rows.append(
        {"condition": "null condition (text ignored)", "flow loss": f"{flow_loss(model, held_out, latents, True):.4f}"}
    )
    notes = [
        f"Teacher-forced flow-matching loss of the head at {args.checkpoint} on the {len(held_out)} held-out "
        f"sentences' latents (espeak_corpus.py; {'trailing silence trimmed' if trimmed else 'whole clips'}), "
        f"mean of {SEEDS} fixed draws of flow times and noise shared by all "
        "rows; no condition dropout (evaluation mode). Lower is better; the gap to the right text is what the text "
        "tells the head."
    ]
    write_result(
        args.out, "TTS head trained on espeak-ng speech: does its loss depend on the text?", machine(1), rows, notes
    )


if __name__ == "__main__":
    main()
