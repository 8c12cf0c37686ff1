"""Train the TTS head on latents of espeak-ng speech (issue 8's small real run); bench_espeak_tts.py evaluates it.

    python packages/ming-tts-head/benchmarks/train_espeak_tts.py [--steps 4000] [--sentences 2000] [--out DIR]
        [--keep-trailing-silence]

Makes ``--out`` (default ``~/.cache/ming/tts-head/tiny-espeak-v9/``): ``config.json`` + ``model.safetensors`` of the
trained head and ``training.json`` (corpus, text vocabulary, tokenizer, losses, time). Checkpoints go to
``--out/run/``; the same command after an interruption resumes from the latest one and finishes the identical run.
The corpus is espeak_corpus.py's: digit sequences in one voice, one text id per word, latents from the tiny speech
tokenizer at ``--tokenizer`` (default ``~/.cache/ming/speech-tokenizer/tiny-espeak-v9/``, its recipe v9), each clip's
trailing silence trimmed to ``TAIL_FRAMES`` after its last loud frame (``Clip.speech_latents``;
``--keep-trailing-silence``: the whole clip, as the previous recipe). About 11 minutes on one shared CPU core (578 s
of training at about 7 steps per second, after half a minute of synthesis and encoding; 850 s in all with the
other core busy).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from espeak_corpus import (
    CHECKPOINT_DIR,
    DIGITS,
    N_TRAIN,
    TAIL_FRAMES,
    TOKENIZER_DIR,
    VOICE,
    load_tokenizer,
    make_clips,
    sentences,
)

from ming_tts_head import TrainingRecipe, TTSHeadConfig, TTSHeadModel, train_tts_head


def espeak_config() -> TTSHeadConfig:
    """The tiny preset widened to 128 with a 4-layer backbone, a 3-layer DiT, a 4-frame (one patch) history and the
    auxiliary regression head (1.60 M parameters): the 2 × 64 preset is small for real speech latents. Without the
    regression loss the backbone's condition barely mattered (held-out flow loss after 1000 steps with the right
    text 0.228, random digits of the same count 0.232, the null condition 0.243); with it the text counts (0.186,
    0.254, 0.268). A short history leaves the flow head less to continue without the condition."""
    return TTSHeadConfig.tiny(
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=4,
        history_frames=4,
        flow_hidden_size=128,
        flow_num_layers=3,
        flow_intermediate_size=256,
        aggregator_hidden_size=128,
        aggregator_intermediate_size=256,
        regression_loss_weight=1.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--sentences", type=int, default=N_TRAIN, help="training sentences")
    parser.add_argument("--tokenizer", type=Path, default=TOKENIZER_DIR)
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR)
    parser.add_argument(
        "--keep-trailing-silence", action="store_true", help="train on whole clips (the previous recipe)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    tokenizer = load_tokenizer(args.tokenizer)
    train_texts, _ = sentences(args.sentences)
    clips = make_clips(train_texts, tokenizer)
    config = espeak_config()
    examples = [
        (clip.text_ids, clip.latents if args.keep_trailing_silence else clip.speech_latents(config.patch_size))
        for clip in clips
    ]
    frames = torch.cat([latents for _, latents in examples])
    print(
        f"{len(clips)} sentences, {sum(c.audio.numel() for c in clips) / 16_000 / 60:.1f} min of speech, "
        f"{frames.shape[0]} latent frames (std {frames.std():.3f}, tokenizer scaling factor "
        f"{tokenizer.config.latent_scaling_factor:.4g})"
    )

    torch.manual_seed(0)
    model = TTSHeadModel(config)
    print(f"TTS head: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters")
    recipe = TrainingRecipe(
        output_dir=args.out / "run",
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        checkpoint_every=250,
        keep_last=2,
    )
    start = time.perf_counter()
    log = train_tts_head(model, examples, recipe)
    seconds = time.perf_counter() - start
    model.save_pretrained(args.out)
    summary = {
        "tokenizer": str(args.tokenizer),
        "latent_scaling_factor": tokenizer.config.latent_scaling_factor,
        "voice": VOICE,
        "text_vocabulary": list(DIGITS),
        "train_sentences": len(clips),
        "trailing_silence_frames": None if args.keep_trailing_silence else TAIL_FRAMES,
        "recipe": json.loads(recipe.model_dump_json()),
        "seconds_this_call": seconds,
        "losses": log.losses,
    }
    (args.out / "training.json").write_text(json.dumps(summary) + "\n")
    window = min(100, args.steps)
    first, last = (sum(log.losses["flow"][s]) / window for s in (slice(window), slice(-window, None)))
    print(f"flow loss {first:.3f} → {last:.3f} (mean of the first / last {window} steps); saved to {args.out}")


if __name__ == "__main__":
    main()
