"""Held-out quality of the tiny tokenizer trained on espeak-ng speech, against Griffin-Lim and the untrained model.

Run: python packages/ming-speech-tokenizer/benchmarks/bench_quality.py [--recipe v1|...|v9] [--checkpoint DIR]
Evaluates the checkpoint of ``train_tiny_espeak.py --recipe ...`` (trained first when ``DIR``, by default the
recipe's folder, does not exist), the same run's checkpoint at the end of its warm-up (no discriminators yet; the
newest one before it if the checkpoint interval skips it, as v8's and v9's 1010 does; for a recipe that continues
another, v5, that recipe's model instead), the
untrained initialisation and Griffin-Lim on the held-out clips (voices and sentences absent from training):
multi-scale mel distance (the training loss's distance, lower is better), STOI (pystoi) and wide-band PESQ (pesq),
means over the clips. Griffin-Lim, run in the same call, inverts a 50 Hz mel spectrogram of the clip with as many
numbers per frame as a latent (64 bands, n_fft 1280, hop 320) through torchaudio's ``InverseMelScale`` and
``GriffinLim``. Writes results/quality.json (``v1``; ``quality_<recipe>.json`` for the others), the spectrogram figure
docs/figures/speech_tokenizer_quality[_v2|…|_v9].png, the training-curve figure
docs/figures/speech_tokenizer_training[_v2|…|_v7].png, and the WAVs of every system next to the checkpoint
(``<DIR>-eval/``, outside git).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from pesq import pesq
from pystoi import stoi
from report import write_result
from scipy.io import wavfile
from torchaudio.transforms import GriffinLim, InverseMelScale, MelSpectrogram
from train_tiny_espeak import (
    DEFAULT_RECIPE,
    HELD_OUT_SPEECH,
    RECIPES,
    recipe_with_seed,
    run_dir_for,
    speech_clips,
    train_and_save,
)

from ming_speech_tokenizer import MultiScaleMelLoss, SpeechTokenizerModel

SAMPLE_RATE = 16_000
ROOT = Path(__file__).resolve().parents[3]
FIGURES = ROOT / "docs" / "figures"
GRIFFIN_LIM_MELS = 64  # one latent frame holds 64 numbers: the mel gets as many per 20 ms frame
GRIFFIN_LIM_ITERATIONS = (32, 100)  # torchaudio's default, and more: more iterations only raise the floor
GRIFFIN_LIM_N_FFT = 1280  # the flash preset's window, whatever window the evaluated recipe's head uses

Reconstruct = Callable[[torch.Tensor], torch.Tensor]


def tokenizer_reconstruction(model: SpeechTokenizerModel) -> Reconstruct:
    """Encode + decode with the decoder's latency (60 ms at n_fft 1280) of silence appended, so its last slots are
    finished (latent contract)."""
    tail = model.config.latency_frames * model.config.hop_length

    def reconstruct(clip: torch.Tensor) -> torch.Tensor:
        return model.decode(model.encode(F.pad(clip, (0, tail)), SAMPLE_RATE))[0, : clip.numel()]

    return reconstruct


def spectra_swap_reconstruction(model: SpeechTokenizerModel, keep: str) -> Reconstruct:
    """Diagnostic: the decoder's ISTFT spectra with their magnitudes (``keep="magnitude"``) or phases
    (``keep="phase"``) and the other half from the input's own frames (``ISTFTHead.analyze``, which alone would
    reconstruct the input exactly): says whether the model's magnitudes or its phases cost more quality."""
    head, tail = model.decoder.head, model.config.latency_frames * model.config.hop_length

    def reconstruct(clip: torch.Tensor) -> torch.Tensor:
        wave = F.pad(clip, (0, tail + -(clip.numel() + tail) % model.config.hop_length))[None]
        latents = model.encode(wave, SAMPLE_RATE) / model.config.latent_scaling_factor
        log_magnitude, phase = head.log_magnitude_and_phase(model.decoder(latents)[0], latents)
        target = head.analyze(wave)
        if keep == "magnitude":
            phase = target.angle()
        else:
            log_magnitude = target.abs().clamp(min=1e-7).log()
        return head.place(head.synthesize(head.polar(log_magnitude, phase)))[0, : clip.numel()]

    return reconstruct


def griffin_lim_reconstruction(n_fft: int, hop: int, iterations: int) -> Reconstruct:
    """Griffin-Lim from the clip's 50 Hz mel magnitudes (seeded random initial phase)."""
    mel = MelSpectrogram(SAMPLE_RATE, n_fft=n_fft, hop_length=hop, n_mels=GRIFFIN_LIM_MELS, power=1.0)
    inverse = InverseMelScale(n_fft // 2 + 1, GRIFFIN_LIM_MELS, SAMPLE_RATE)

    def reconstruct(clip: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(0)
        griffin_lim = GriffinLim(n_fft, iterations, hop_length=hop, power=1.0, length=clip.numel())
        return griffin_lim(inverse(mel(clip)))

    return reconstruct


def paired_difference(system: list[float], floor: list[float], name: str) -> str:
    """``system − floor`` over the same clips: mean, a 95% bootstrap interval of the mean (10 000 resamples of the
    clips, seed 0) and on how many clips the system scores higher."""
    difference = np.asarray(system) - np.asarray(floor)
    resampled = np.random.default_rng(0).choice(difference, (10_000, difference.size)).mean(axis=1)
    low, high = np.percentile(resampled, [2.5, 97.5])
    return (
        f"{name} {difference.mean():+.4f} (95% bootstrap interval {low:+.4f} to {high:+.4f}; higher on "
        f"{int((difference > 0).sum())} of {difference.size} clips)"
    )


def scores(reference: torch.Tensor, reconstruction: torch.Tensor, mel_distance: MultiScaleMelLoss) -> dict[str, float]:
    """Multi-scale mel distance, STOI, wide-band PESQ and RMS level (relative to the reference) of one
    reconstruction."""
    ref, deg = reference.double().numpy(), reconstruction.double().numpy()
    return {
        "mel": mel_distance(reconstruction[None], reference[None]).item(),
        "stoi": float(stoi(ref, deg, SAMPLE_RATE)),
        "pesq": float(pesq(SAMPLE_RATE, ref, deg, "wb")),
        "level": float(np.sqrt(np.mean(deg**2) / np.mean(ref**2))),
    }


def plot_spectrograms(path: Path, clip: torch.Tensor, outputs: dict[str, torch.Tensor], title: str) -> None:
    """Waveform and log-mel spectrogram of the original and of each system's reconstruction, one row each."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mel = MelSpectrogram(SAMPLE_RATE, n_fft=1024, hop_length=160, n_mels=80)
    rows = {"original": clip, **outputs}
    fig, axes = plt.subplots(len(rows), 2, figsize=(11, 1.7 * len(rows)), sharex="col", width_ratios=(1, 2))
    seconds = np.arange(clip.numel()) / SAMPLE_RATE
    for (name, audio), (left, right) in zip(rows.items(), axes, strict=True):
        left.plot(seconds, audio.numpy(), linewidth=0.3)
        left.set_ylim(-1, 1)
        left.set_ylabel(name, rotation=0, ha="right", va="center")
        right.imshow(
            mel(audio).clamp(min=1e-5).log10().numpy(),
            origin="lower",
            aspect="auto",
            extent=(0, seconds[-1], 0, 80),
            vmin=-5,
            vmax=1,
        )
        right.set_yticks([])
    axes[-1][0].set_xlabel("s")
    axes[-1][1].set_xlabel("s (log-mel, 80 bands)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_training(path: Path, run_dir: Path, warmup_steps: int) -> None:
    """Training mel loss per step (and its 50-step mean) with the held-out mel distance of each validation."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    last = sorted(run_dir.glob("checkpoint-*[0-9]"))[-1]
    state = torch.load(last / "trainer_state.pt", weights_only=True)
    mel = np.asarray(state["losses"]["mel"])
    smooth = np.convolve(mel, np.ones(50) / 50, mode="valid")
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(np.arange(1, mel.size + 1), mel, linewidth=0.3, alpha=0.4, label="training mel loss (per step)")
    ax.plot(np.arange(50, mel.size + 1), smooth, label="training mel loss (50-step mean)")
    steps, distances = zip(*state["validation"], strict=True)
    ax.plot(steps, distances, "o-", label="held-out mel distance")
    if warmup_steps < mel.size:
        ax.axvline(warmup_steps, color="gray", linestyle="--", linewidth=0.8, label="discriminators start")
    ax.set_xlabel("step")
    ax.set_ylabel("multi-scale mel distance")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=sorted(RECIPES), default=DEFAULT_RECIPE, help="train_tiny_espeak.py's")
    parser.add_argument("--checkpoint", type=Path, default=None, help="save_pretrained folder (default: the recipe's)")
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default: results/quality[_RECIPE].json)")
    parser.add_argument(
        "--held-out-seed",
        type=int,
        default=HELD_OUT_SPEECH.seed,
        help="sentence seed of the held-out clips (another than the default: a set no recipe was chosen on; the "
        "same unseen voices; files get a _seed<N> suffix)",
    )
    parser.add_argument("--held-out-clips", type=int, default=HELD_OUT_SPEECH.n, help="how many held-out clips")
    parser.add_argument("--seed", type=int, default=0, help="train_tiny_espeak.py's (a replicate)")
    args = parser.parse_args()
    tiny = recipe_with_seed(args.recipe, args.seed)
    checkpoint = args.checkpoint or tiny.default_out
    suffix = "" if args.recipe == "v1" else f"_{args.recipe}"  # v1 keeps the file names it has always written
    if args.seed:
        suffix += f"_train-seed{args.seed}"
    held_out = HELD_OUT_SPEECH.model_copy(update={"seed": args.held_out_seed, "n": args.held_out_clips})
    clips_suffix = "" if held_out == HELD_OUT_SPEECH else f"_seed{held_out.seed}_{held_out.n}"
    suffix += clips_suffix
    seed_option = f" --seed {args.seed}" if args.seed else ""
    out = args.out or Path(__file__).parent / "results" / f"quality{suffix}.json"
    torch.set_num_threads(1)  # small ops: a second thread costs more than it gains on a shared 2-core machine
    run_dir = run_dir_for(checkpoint)
    if not (checkpoint / "config.json").exists():
        print(f"no checkpoint at {checkpoint}: training it (train_tiny_espeak.py --recipe {args.recipe})")
        train_and_save(tiny, checkpoint, run_dir)
    trained = SpeechTokenizerModel.from_pretrained(checkpoint).eval()
    steps = tiny.training_recipe(run_dir).steps
    config = trained.config
    # short label (figure, file names) → (description in the table, reconstruction)
    systems: dict[str, tuple[str, Reconstruct]] = {}
    if tiny.start_from is None:
        # the newest checkpoint without the discriminators: the warm-up's end unless the checkpoint interval skips it
        warmup_step = max(
            int(path.name.removeprefix("checkpoint-"))
            for path in run_dir.glob("checkpoint-*")
            if int(path.name.removeprefix("checkpoint-")) <= tiny.warmup_steps
        )
        warmup = SpeechTokenizerModel.from_pretrained(run_dir / f"checkpoint-{warmup_step:07d}").eval()
        systems["trained"] = (f"tokenizer, trained ({steps} steps)", tokenizer_reconstruction(trained))
        label = "end of warm-up" if warmup_step == tiny.warmup_steps else f"warm-up step {warmup_step}"
        systems["warm-up end"] = (
            f"tokenizer, {label} ({warmup_step} steps, no discriminators)",
            tokenizer_reconstruction(warmup),
        )
    else:  # the model it started from instead of its warm-up end
        start = SpeechTokenizerModel.from_pretrained(RECIPES[tiny.start_from].default_out).eval()
        systems["trained"] = (
            f"tokenizer, trained ({tiny.start_from} + {steps} steps)",
            tokenizer_reconstruction(trained),
        )
        systems["start"] = (f"tokenizer, {tiny.start_from} (where it started)", tokenizer_reconstruction(start))
    systems |= {
        "untrained": ("tokenizer, untrained", tokenizer_reconstruction(tiny.untrained_model().eval())),
        "swap magnitude": (
            "diagnostic: trained model's magnitudes + the input's phases",
            spectra_swap_reconstruction(trained, "magnitude"),
        ),
        "swap phase": (
            "diagnostic: the input's magnitudes + trained model's phases",
            spectra_swap_reconstruction(trained, "phase"),
        ),
    }
    for iterations in GRIFFIN_LIM_ITERATIONS:
        systems[f"Griffin-Lim {iterations}"] = (
            f"Griffin-Lim ({GRIFFIN_LIM_MELS}-band 50 Hz mel, {iterations} iterations)",
            griffin_lim_reconstruction(GRIFFIN_LIM_N_FFT, config.hop_length, iterations),
        )

    clips = speech_clips(held_out)
    mel_distance = MultiScaleMelLoss(SAMPLE_RATE)
    wav_dir = checkpoint.with_name(checkpoint.name + "-eval" + clips_suffix)
    wav_dir.mkdir(parents=True, exist_ok=True)
    rows, first_outputs, clip_scores = [], {}, {}
    for label, (name, reconstruct) in systems.items():
        start = time.perf_counter()
        per_clip = []
        with torch.no_grad():
            for i, clip in enumerate(clips):
                output = reconstruct(clip)
                per_clip.append(scores(clip, output, mel_distance))
                wavfile.write(wav_dir / f"clip{i}-{label.replace(' ', '_')}.wav", SAMPLE_RATE, output.numpy())
                if i == 0 and not label.startswith("swap"):
                    first_outputs[label] = output
        clip_scores[label] = per_clip
        means = {key: float(np.mean([s[key] for s in per_clip])) for key in per_clip[0]}
        rows.append(
            {
                "system": name,
                "mel distance ↓": f"{means['mel']:.3f}",
                "STOI ↑": f"{means['stoi']:.3f}",
                "PESQ (wb) ↑": f"{means['pesq']:.2f}",
                "PESQ range": f"{min(s['pesq'] for s in per_clip):.2f}–{max(s['pesq'] for s in per_clip):.2f}",
                "RMS level": f"{means['level']:.2f}",
                "eval s": f"{time.perf_counter() - start:.1f}",
            }
        )
        print(" | ".join(rows[-1].values()))
    for i, clip in enumerate(clips):
        wavfile.write(wav_dir / f"clip{i}-original.wav", SAMPLE_RATE, clip.numpy())
    floor = f"Griffin-Lim {GRIFFIN_LIM_ITERATIONS[0]}"
    paired = "; ".join(
        paired_difference([c[key] for c in clip_scores["trained"]], [c[key] for c in clip_scores[floor]], name)
        for key, name in (("stoi", "STOI"), ("pesq", "PESQ"))
    )
    paired = f"Trained tokenizer − {systems[floor][0]}, per clip: {paired}."
    print(paired)

    FIGURES.mkdir(parents=True, exist_ok=True)
    voice = held_out.voice_list()
    plot_spectrograms(
        FIGURES / f"speech_tokenizer_quality{suffix}.png",
        clips[0],
        first_outputs,
        f"held-out clip 0 (voices {', '.join(voice)} unseen in training)",
    )
    if held_out == HELD_OUT_SPEECH:  # the same curves whatever clips are scored
        plot_training(FIGURES / f"speech_tokenizer_training{suffix}.png", run_dir, tiny.warmup_steps)
    seconds = sum(c.numel() for c in clips) / SAMPLE_RATE
    write_result(
        out,
        f"Tiny tokenizer trained on CPU on espeak-ng speech (recipe {args.recipe}, "
        f"{f'{tiny.start_from} + ' if tiny.start_from else ''}{steps} steps): held-out quality",
        f"bench_quality.py --recipe {args.recipe}{seed_option}"
        + (f" --held-out-seed {held_out.seed} --held-out-clips {held_out.n}" if held_out != HELD_OUT_SPEECH else ""),
        rows,
        f"{len(clips)} held-out clips ({seconds:.0f} s; sentences of seed {held_out.seed}, training's is 0; voices "
        f"{', '.join(voice)} not in training); means over clips. Mel distance: the training loss's "
        "multi-scale log-mel L1 "
        "(4 scales summed). The tokenizer encodes and decodes with "
        f"{1000 * config.latency_frames * config.hop_length // SAMPLE_RATE} ms of silence appended (its latency). "
        "Checkpoint: `python packages/ming-speech-tokenizer/benchmarks/train_tiny_espeak.py "
        f"--recipe {args.recipe}{seed_option}` "
        f"({tiny.description}; {tiny.train_speech.n} clips, {len(tiny.train_speech.voice_list())} voices). " + paired,
    )
    print(f"figures under {FIGURES}, audio under {wav_dir}")


if __name__ == "__main__":
    main()
