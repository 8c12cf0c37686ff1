"""Train the tiny speech tokenizer briefly on espeak-ng speech, then encode a held-out clip and decode it in a stream.

Run: python packages/ming-speech-tokenizer/examples/tokenize_and_stream.py [--steps 100] [--out DIR]
Shows: the latent contract (50 frames/s × 64), the multi-scale mel distance of a held-out voice and sentence before
and after the short run, streaming decoding (20 ms per frame, 60 ms behind) equal to full decoding, and where the
validation audio and spectrogram figures went. Under a minute on two CPU cores; a real run needs far more steps.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from ming_speech_tokenizer import (
    MultiScaleMelLoss,
    SpeechTokenizerConfig,
    SpeechTokenizerModel,
    StreamingDecoder,
    TrainingRecipe,
    train_speech_tokenizer,
)
from ming_testdata import SpeechOptions, make_speech


def mel_distance(model: SpeechTokenizerModel, clip: torch.Tensor) -> float:
    reconstruction = model.decode(model.encode(clip, 16_000))[:, : clip.numel()]
    return MultiScaleMelLoss(16_000)(reconstruction, clip[None]).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: a temporary folder)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (small ops: 1 is fastest on 2 cores)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    train = make_speech(SpeechOptions(n=12, seed=0, voices=("en-us", "en-gb", "en-us+f3")))
    held_out = make_speech(SpeechOptions(n=2, seed=1, voices=("en-gb-scotland",)))
    clips = [torch.from_numpy(u.audio) for u in train]
    validation = [torch.from_numpy(u.audio) for u in held_out]
    print(
        f"{len(clips)} training clips ({sum(c.numel() for c in clips) / 16_000:.1f} s), held-out voice en-gb-scotland"
    )

    torch.manual_seed(0)
    model = SpeechTokenizerModel(SpeechTokenizerConfig.tiny())
    print(f"tiny tokenizer: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters")
    before = mel_distance(model.eval(), validation[0])
    out = args.out or Path(tempfile.mkdtemp(prefix="ming-speech-tokenizer-"))
    recipe = TrainingRecipe(
        output_dir=out,
        steps=args.steps,
        batch_size=4,
        segment_frames=25,
        learning_rate=1e-3,
        warmup_steps=args.steps * 4 // 5,
        checkpoint_every=args.steps,
        validate_every=args.steps,
        plot_clips=2,
    )
    log = train_speech_tokenizer(model, clips, recipe, validation)
    model.eval()
    print(f"held-out multi-scale mel distance: {before:.3f} (untrained) -> {mel_distance(model, validation[0]):.3f}")

    clip = validation[0]
    latents = model.encode(clip, 16_000)
    print(
        f"{clip.numel()} samples ({clip.numel() / 16_000:.2f} s) -> latents {tuple(latents.shape)} at "
        f"{model.config.frame_rate:g} frames/s"
    )
    full = model.decode(latents)
    streamer = StreamingDecoder(model)
    pieces = [streamer.step(latents[:, t : t + 1]) for t in range(latents.shape[1])]
    streamed = torch.cat([*pieces, streamer.flush()], dim=-1)
    print(
        f"streaming decode, {pieces[-1].shape[-1]} samples per frame after {model.config.latency_frames} frames "
        f"({1000 * model.config.latency_frames / model.config.frame_rate:g} ms) of latency: "
        f"max |stream - full| = {(streamed - full).abs().max().item():.2e}"
    )
    print(f"final losses: mel {log.losses['mel'][-1]:.3f}, adversarial {log.losses['adversarial'][-1]:.3f}")
    print(f"checkpoint and validation audio + spectrograms under {out}")


if __name__ == "__main__":
    main()
