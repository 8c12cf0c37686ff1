"""Short pilots of changes to recipe v3, scored on the held-out clips against v3's own run at the same step.

Run: ming-heavy python packages/ming-speech-tokenizer/benchmarks/pilot_recipes.py --stop 1200 VARIANT [VARIANT ...]
The ``ft-`` variants instead train on v4's trained model with recipe v5's schedule (:data:`FINETUNE`, v4's losses;
``ft-control`` changes nothing; ``ft-adversarial`` runs the discriminators from the first step), are scored
beside v4 itself (and also by the input's magnitudes with their phases) and write
results/pilots_finetune_<stop>.json.
Each variant is recipe v3 (same data, seed, batches and learning-rate schedule over v3's 5600 steps) with a few
config or :class:`TrainingRecipe` fields changed; it trains until ``--stop`` (a multiple of v3's checkpoint interval,
600) and is scored like ``bench_quality.py`` scores a checkpoint (multi-scale mel distance, STOI, wide-band PESQ,
RMS level, the trained magnitudes with the input's phases and the input's magnitudes with the trained phases),
beside v3's checkpoint of the same step (``v3``, from ``train_tiny_espeak.py --recipe v3``'s run folder). Runs go
to ``~/.cache/ming/speech-tokenizer/pilot-<name>-run`` (resumable: a later call with a larger ``--stop`` continues
the same run). Writes results/pilots_<stop>.json (rows of earlier calls with the same ``--stop`` are kept).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from bench_quality import scores, spectra_swap_reconstruction, tokenizer_reconstruction
from report import write_result
from train_tiny_espeak import CACHE, HELD_OUT_SPEECH, RECIPES, run_dir_for, speech_clips

from ming_speech_tokenizer import MultiScaleMelLoss, SpeechTokenizerModel, train_speech_tokenizer

# a fifth mel scale (window 4096, 320 bands); v4's losses on top of v3's: that and the comb's pitch loss
_MEL4096 = {"mel_windows": (256, 512, 1024, 2048, 4096), "mel_bins": (20, 40, 80, 160, 320)}
_V4_LOSSES = {"pitch_weight": 1.0, **_MEL4096}
# name → (config overrides, TrainingRecipe options), on top of v3's (``ft-``: on top of FINETUNE)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "decoder4": ({"decoder_layers": 4}, {}),
    "mel4096": ({}, _MEL4096),
    "mrstft": ({}, {"stft_weight": 5.0, "stft_resolutions": ((2048, 512), (1024, 256), (512, 128))}),
    "lr2e-3": ({}, {"learning_rate": 2e-3}),
    "harmonic": ({"harmonic_candidates": 256}, {}),
    "harmonic-pitch": ({"harmonic_candidates": 256}, {"pitch_weight": 1.0}),
    "harmonic-pitch-mel4096": ({"harmonic_candidates": 256}, _V4_LOSSES),
    # v4's model and losses (harmonic-pitch-mel4096) with the phase as atan2 of two outputs, or without the phase
    # loss's instantaneous-phase term
    "harmonic-pitch-mel4096-parallel-phase": ({"harmonic_candidates": 256, "parallel_phase": True}, _V4_LOSSES),
    "harmonic-pitch-mel4096-no-ip": ({"harmonic_candidates": 256}, {**_V4_LOSSES, "phase_instantaneous": False}),
    # both of the above; and v4's with a 960-sample ISTFT window and encoder span (3 hops: 60 ms windows that
    # overlap 3 times instead of 80 ms 4 times; latency 2 frames; the latent contract is unchanged)
    "harmonic-pitch-mel4096-parallel-phase-no-ip": (
        {"harmonic_candidates": 256, "parallel_phase": True},
        {**_V4_LOSSES, "phase_instantaneous": False},
    ),
    "harmonic-pitch-mel4096-nfft960": ({"harmonic_candidates": 256, "n_fft": 960}, _V4_LOSSES),
    "harmonic-pitch-mel4096-nfft960-no-ip": (
        {"harmonic_candidates": 256, "n_fft": 960},
        {**_V4_LOSSES, "phase_instantaneous": False},
    ),
    # v4's with the ISTFT head predicting 2 (or 4) spectra per decoder frame, of 640 samples 160 apart (320 / 80):
    # the same 4x overlap with shorter windows and a smaller phase advance between neighbouring spectra
    "harmonic-pitch-mel4096-subframes2": ({"harmonic_candidates": 256, "head_subframes": 2}, _V4_LOSSES),
    "harmonic-pitch-mel4096-subframes4": ({"harmonic_candidates": 256, "head_subframes": 4}, _V4_LOSSES),
    # subframes2 without the phase loss's instantaneous-phase term; and with 2560-sample frames, so that the two
    # subframes keep v4's 1280-sample windows at hop 160 (8x overlap; the encoder then sees 2560 samples, latency 4)
    "harmonic-pitch-mel4096-subframes2-no-ip": (
        {"harmonic_candidates": 256, "head_subframes": 2},
        {**_V4_LOSSES, "phase_instantaneous": False},
    ),
    "harmonic-pitch-mel4096-nfft2560-subframes2": (
        {"harmonic_candidates": 256, "n_fft": 2560, "head_subframes": 2},
        _V4_LOSSES,
    ),
    # v4's with an L1 loss on 0.3-compressed 64-band mel magnitudes at window 1280 / hop 320 (the Griffin-Lim
    # floor's mel), weight 15 or 45: band energies with the loud frames weighing more than in the log-mel loss
    "harmonic-pitch-mel4096-band15": ({"harmonic_candidates": 256}, {**_V4_LOSSES, "band_energy_weight": 15.0}),
    "harmonic-pitch-mel4096-band45": ({"harmonic_candidates": 256}, {**_V4_LOSSES, "band_energy_weight": 45.0}),
    # v4's with the mel-anchored latent: the first 64 latent channels tied (L1, weight 10) to the normalised
    # 64-band log-mel levels of the samples their frame saw, and the ISTFT head's log-magnitudes a residual on the
    # base those channels imply (MelAnchor)
    "harmonic-pitch-mel4096-anchor10": (
        {"harmonic_candidates": 256, "mel_anchor_bands": 64},
        {**_V4_LOSSES, "mel_anchor_weight": 10.0},
    ),
    # anchor10 with the generator's gradient clipped to norm 1 and its learning rate ramped up over the first 100
    # steps (v6 and v7 had loss spikes of 4x and 2.4x their running median, at steps 414 and 123; raw gradient
    # norms are 30-150 in the first 60 steps); and that at twice the learning rate
    "harmonic-pitch-mel4096-anchor10-clip1": (
        {"harmonic_candidates": 256, "mel_anchor_bands": 64},
        {**_V4_LOSSES, "mel_anchor_weight": 10.0, "max_gradient_norm": 1.0, "learning_rate_warmup_steps": 100},
    ),
    "harmonic-pitch-mel4096-anchor10-clip1-lr2e-3": (
        {"harmonic_candidates": 256, "mel_anchor_bands": 64},
        {
            **_V4_LOSSES,
            "mel_anchor_weight": 10.0,
            "max_gradient_norm": 1.0,
            "learning_rate_warmup_steps": 100,
            "learning_rate": 2e-3,
        },
    ),
    "harmonic-mel4096": (
        {"harmonic_candidates": 256},
        _MEL4096,
    ),
    "ft-control": ({}, {}),
    "ft-complex5": ({}, {"complex_stft_weight": 5.0}),
    "ft-consistency5": ({}, {"consistency_weight": 5.0}),
    "ft-consistency50": ({}, {"consistency_weight": 50.0}),
    "ft-phase10": ({}, {"phase_weight": 10.0}),
    # the discriminators from the first step, every second step (a discriminator step costs ~9 reconstruction steps)
    "ft-adversarial": ({}, {"warmup_steps": 0, "adversarial_every": 2}),
}
# recipe v5: v4's trained model trained on with v4's losses (ft-control is v5's own run up to the pilot's step)
FINETUNE = RECIPES["v5"]


class _StopError(Exception):
    """Raised by the trainer's callback once the pilot's last step (and its checkpoint) is done."""


def pilot_recipe(name: str):
    """Recipe v3 (``ft-`` variants: :data:`FINETUNE`) with variant ``name``'s changes, in its own folder."""
    base = FINETUNE if name.startswith("ft-") else RECIPES["v3"]
    config, options = VARIANTS[name]
    options = dict(options)
    warmup_steps = options.pop("warmup_steps", base.warmup_steps)
    return dataclasses.replace(
        base,
        warmup_steps=warmup_steps,
        adversarial_steps=base.warmup_steps + base.adversarial_steps - warmup_steps,
        folder=f"pilot-{name}",
        description=f"{'v4 fine-tuned' if base is FINETUNE else 'v3'} with {config | options}",
        config_overrides={**base.config_overrides, **config},
        options={**base.options, **options},
    )


def score(model: SpeechTokenizerModel, clips: list[torch.Tensor], phases: bool = False) -> dict[str, str]:
    """Held-out means of the tokenizer and of its magnitudes with the input's phases (and with ``phases``, of the
    input's magnitudes with its phases)."""
    mel_distance = MultiScaleMelLoss(16_000)
    row = {}
    systems = [
        ("", tokenizer_reconstruction(model)),
        ("mags+input phases ", spectra_swap_reconstruction(model, "magnitude")),
    ]
    if phases:
        systems.append(("input mags+phases ", spectra_swap_reconstruction(model, "phase")))
    for label, reconstruct in systems:
        with torch.no_grad():
            per_clip = [scores(clip, reconstruct(clip), mel_distance) for clip in clips]
        means = {key: float(np.mean([s[key] for s in per_clip])) for key in per_clip[0]}
        row |= {
            f"{label}mel ↓": f"{means['mel']:.3f}",
            f"{label}STOI ↑": f"{means['stoi']:.3f}",
            f"{label}PESQ ↑": f"{means['pesq']:.2f}",
        }
        if not label:
            row["RMS level"] = f"{means['level']:.2f}"
    return row


def save(out: Path, rows: dict[str, dict[str, str]], stop: int, finetune: bool) -> None:
    """Write the pilots' table."""
    if finetune:
        title = f"Pilots of fine-tuning v4's model at step {stop} (of v5's 1500-step schedule): held-out quality"
        reference = "v4 = the model they start from"
    else:
        title = f"Pilots of recipe v3's variants at step {stop} (of v3's 5600-step schedule): held-out quality"
        reference = f"v3 = its own run's checkpoint at step {stop}"
    columns = list(dict.fromkeys(key for row in rows.values() for key in row))
    write_result(
        out,
        title,
        f"pilot_recipes.py --stop {stop} VARIANT ...",
        [{key: row.get(key, "—") for key in columns} for row in rows.values()],
        f"8 held-out clips, means; {reference}. CPU s / step: the pilot's training process time over its steps on "
        "the shared machine (one thread). A row with — in some columns was measured by an earlier call, before "
        "those columns existed (and on whichever machine its CPU s / step belongs to).",
    )


def _saved_rows(out: Path) -> dict[str, dict[str, str]]:
    """The rows of the pilots' table at ``out`` by variant (none if it does not exist yet)."""
    return {r["variant"]: r for r in json.loads(out.read_text())["rows"]} if out.exists() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", choices=sorted(VARIANTS))
    parser.add_argument(
        "--stop", type=int, default=1200, help="last step (a multiple of 600; of 300 for the ft- variants)"
    )
    args = parser.parse_args()
    finetune = {name.startswith("ft-") for name in args.variants}
    if len(finetune) > 1:
        parser.error("ft- variants (fine-tuning v4) and v3 variants go in separate calls")
    finetune = finetune.pop()
    torch.set_num_threads(1)
    clips = speech_clips(HELD_OUT_SPEECH)
    out = Path(__file__).parent / "results" / f"pilots{'_finetune' if finetune else ''}_{args.stop}.json"
    rows = {}  # the rows this call measures; saving merges them into the file's (pilots may run side by side)
    if finetune:
        name, reference = "v4", RECIPES["v4"].default_out
    else:
        name, reference = "v3", run_dir_for(RECIPES["v3"].default_out) / f"checkpoint-{args.stop:07d}"
    if reference.exists():
        rows[name] = {"variant": name, "changes": "—", "CPU s / step": "—"}
        rows[name] |= score(SpeechTokenizerModel.from_pretrained(reference).eval(), clips, finetune)
        print(rows[name])
        save(out, _saved_rows(out) | rows, args.stop, finetune)
    train = speech_clips(RECIPES["v3"].train_speech)  # v3's, v4's and v5's
    for name in args.variants:
        tiny = pilot_recipe(name)
        run_dir = run_dir_for(CACHE / tiny.folder)
        # steps trained and their CPU time, kept for later calls: a later --stop resumes the run where it stopped
        timing = run_dir / "pilot.json"
        spent = json.loads(timing.read_text()) if timing.exists() else {"steps": 0, "cpu_s": 0.0}
        if spent["steps"] < args.stop:

            def stop(step: int, _losses: dict[str, float]) -> None:
                if step >= args.stop:
                    raise _StopError

            cpu = time.process_time()
            with contextlib.suppress(_StopError):
                train_speech_tokenizer(
                    tiny.initial_model(),
                    train,
                    tiny.training_recipe(run_dir).model_copy(update={"progress": False}),
                    callback=stop,
                )
            spent = {"steps": args.stop, "cpu_s": spent["cpu_s"] + time.process_time() - cpu}
            timing.write_text(json.dumps(spent))
        model = SpeechTokenizerModel.from_pretrained(run_dir / f"checkpoint-{args.stop:07d}").eval()
        changes = VARIANTS[name][0] | VARIANTS[name][1]
        rows[name] = {
            "variant": name,
            "changes": str(changes),
            "CPU s / step": f"{spent['cpu_s'] / spent['steps']:.3f}",
        }
        rows[name] |= score(model, clips, phases=True)
        print(rows[name])
        # after each variant, so that an interrupted call keeps what it measured
        save(out, _saved_rows(out) | rows, args.stop, finetune)


if __name__ == "__main__":
    main()
