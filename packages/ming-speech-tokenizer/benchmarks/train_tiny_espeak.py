"""Train the tiny speech tokenizer on espeak-ng speech (about 20 minutes on one CPU thread) and save it.

Run: ming-heavy python packages/ming-speech-tokenizer/benchmarks/train_tiny_espeak.py [--out DIR] [--run DIR]
Remakes the checkpoint that ``bench_quality.py`` evaluates and that ming-tts-head's examples decode with:
``SpeechTokenizerModel.from_pretrained(DIR)`` (default ``~/.cache/ming/speech-tokenizer/tiny-espeak``, safetensors via
``save_pretrained``; its ``latent_scaling_factor`` gives the training clips' latents unit std). The trainer's own
checkpoints go to ``--run`` (default ``<out>-run``): an interrupted run resumes from there when called again.

Data (made offline by ming-testdata, cached): 160 sentences full of names and numbers spoken by 8 voices for
training; the held-out set has other sentences (another seed) and 3 voices absent from training. The recipe is
mostly reconstruction (multi-scale mel + KL) with a short adversarial phase at the end: a step with the discriminators
costs about 17 reconstruction-only steps on this CPU, so ~20 minutes on a shared two-core machine buy 2400
reconstruction steps and 60 adversarial ones (the checkpoint at the end of the warm-up is kept for comparison).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ming_speech_tokenizer import (
    SpeechTokenizerConfig,
    SpeechTokenizerModel,
    TrainingRecipe,
    estimate_latent_scaling_factor,
    train_speech_tokenizer,
)
from ming_testdata import SpeechOptions, make_speech

DEFAULT_OUT = Path.home() / ".cache" / "ming" / "speech-tokenizer" / "tiny-espeak"
TRAIN_SPEECH = SpeechOptions(
    n=160,
    seed=0,
    voices=("en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-us+f2", "en-029", "en-gb-x-rp+f4", "en-us-nyc+m5"),
)
HELD_OUT_SPEECH = SpeechOptions(n=8, seed=1, voices=("en-gb-scotland", "en-gb-x-gbcwmd+f1", "en-gb-x-gbclan+m7"))
MODEL_SEED = 0  # the untrained baseline of bench_quality.py is this initialisation
WARMUP_STEPS = 2400
ADVERSARIAL_STEPS = 60
CHECKPOINT_EVERY = 300


def speech_clips(options: SpeechOptions) -> list[torch.Tensor]:
    """The utterances of ``options`` as float32 tensors at 16 kHz."""
    return [torch.from_numpy(u.audio) for u in make_speech(options)]


def untrained_model() -> SpeechTokenizerModel:
    """The tiny model as initialised before training."""
    torch.manual_seed(MODEL_SEED)
    return SpeechTokenizerModel(SpeechTokenizerConfig.tiny())


def recipe(run_dir: Path) -> TrainingRecipe:
    """The training recipe of the tiny espeak-ng checkpoint."""
    return TrainingRecipe(
        output_dir=run_dir,
        steps=WARMUP_STEPS + ADVERSARIAL_STEPS,
        batch_size=8,
        segment_frames=50,
        learning_rate=1e-3,
        warmup_steps=WARMUP_STEPS,
        checkpoint_every=CHECKPOINT_EVERY,
        validate_every=CHECKPOINT_EVERY,
        plot_clips=3,
    )


def run_dir_for(out: Path) -> Path:
    """Where the trainer's checkpoints of the model saved at ``out`` go."""
    return out.with_name(out.name + "-run")


def train_and_save(out: Path, run_dir: Path) -> SpeechTokenizerModel:
    """Train (or resume) the tiny tokenizer, set its latent scale from the training clips and save it to ``out``."""
    train, held_out = speech_clips(TRAIN_SPEECH), speech_clips(HELD_OUT_SPEECH)
    minutes = sum(c.numel() for c in train) / 16_000 / 60
    print(f"{len(train)} training clips ({minutes:.1f} min), {len(held_out)} held out")
    model = untrained_model()
    start = time.perf_counter()
    log = train_speech_tokenizer(model, train, recipe(run_dir), held_out)
    print(f"trained in {time.perf_counter() - start:.0f} s; held-out mel distance per validation: {log.validation}")
    model.eval()
    factor = estimate_latent_scaling_factor(model, train, 16_000)
    model.save_pretrained(out)
    print(f"latent_scaling_factor {factor:.4f}; model saved to {out}")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where save_pretrained writes the model")
    parser.add_argument("--run", type=Path, default=None, help="trainer checkpoints and plots (default: <out>-run)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # thousands of small ops: a second thread costs more than it gains on a shared 2-core box
    train_and_save(args.out, args.run or run_dir_for(args.out))


if __name__ == "__main__":
    main()
