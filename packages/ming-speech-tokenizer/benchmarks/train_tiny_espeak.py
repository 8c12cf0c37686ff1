"""Train the tiny speech tokenizer on espeak-ng speech (10–25 CPU-minutes on one thread) and save it.

Run: ming-heavy python packages/ming-speech-tokenizer/benchmarks/train_tiny_espeak.py [--recipe v9] [--out D] [--run D]
``SpeechTokenizerModel.from_pretrained(DIR)`` then loads it (safetensors via ``save_pretrained``; its
``latent_scaling_factor`` gives the training clips' latents unit std); ``bench_quality.py --recipe v9`` evaluates it.
The trainer's own checkpoints go to ``--run`` (default ``<out>-run``): an interrupted run resumes from there when
called again.

Data (made offline by ming-testdata, cached): sentences full of names and numbers, for v1 and v2 160 spoken by 8
voices, for v3 2000 spoken by 180 (5 English accents × 36 espeak-ng variants, pitches 10–90, 120–240 words per
minute); the held-out set has other sentences (another seed) and 3 voices absent from training (accents and
variants that none of the training voices use).

Nine recipes, each with its own default folder under ``~/.cache/ming/speech-tokenizer/``:

- ``v1`` (``tiny-espeak``; the default until v9): the tiny preset, 2400
  reconstruction-only steps (mel + KL) then 60 with the discriminators, constant learning rate 1e-3.
- ``v2`` (``tiny-espeak-v2``): the tiny frame layout at width 256 (2.8 M parameters; the same latent contract,
  50 Hz × 64), 5400 reconstruction steps then 300 in which the discriminators step every second step (a step with
  them costs about 11 reconstruction-only steps on this CPU), the generator's learning rate on a cosine from 1e-3
  to 1e-4, and besides the issue's mel (15) and KL (1e-4) terms the ISTFT head's log-magnitude (5) and
  magnitude-weighted phase (1) losses: with the mel loss alone the head's magnitudes stay far from the input's own
  spectra and its phases get no direct target, and the discriminators, the recipe's only other
  source of that information, cannot train long enough on a CPU.
- ``v3`` (``tiny-espeak-v3``): v2 whose encoder also reads the log-magnitude spectrum of the samples each frame sees
  (``encoder_log_spectrum``; same latent contract), trained on the 2000 clips of 180 voices, 5400 reconstruction
  steps then 200 with the discriminators every second step: v2 overfitted its 8 voices (held-out mel distance flat
  from step 1800 while the training loss fell), and its waveform-only encoder did not find the harmonics of voices
  it had not heard.

- ``v4`` (``tiny-espeak-v4``): v3 with the ISTFT head's harmonic comb (``harmonic_candidates=256``) taught by the
  pitch loss (weight 1), a fifth mel scale (window 4096, 320 bands), 4500 + 100 adversarial steps (about 18 minutes
  on the shared machine): v3's magnitudes smeared the pitch harmonics of unseen voices.
- ``v5`` (``tiny-espeak-v5``): v4's trained model (trained first if ``tiny-espeak-v4`` has none) trained 1500 more
  steps with v4's losses, learning rate 2e-4 on a cosine to 1e-4 (the discriminators do not run).

- ``v6`` (``tiny-espeak-v6``): v4's model and losses with the mel-anchored latent (``mel_anchor_bands=64``, anchor
  loss weight 10), from scratch, 2600 reconstruction steps then 40 with the discriminators every second step (about
  20 minutes on the slower machine of session 8, 2026-12-02, where v4's 4600 steps would take 35): the first 64
  latent channels are the normalised 64-band log-mel of the samples their frame saw, and the ISTFT head's
  log-magnitudes are a residual on the envelope they imply.
- ``v7`` (``tiny-espeak-v7``): v6 with the learning rate's cosine ending at 0.6 of its start instead of 0.1 (the
  path of v6's pilot, which follows v3's 5600-step cosine and scored above v6).
- ``v8`` (``tiny-espeak-v8``): v7 with the generator's gradient clipped to global norm 1 and its learning rate
  ramped up linearly over the first 100 steps (against loss spikes like v6's and v7's), 4000 reconstruction steps
  then 40 with the discriminators every second step (about 20 minutes on the faster machine of session 9).
- ``v9`` (the default, ``tiny-espeak-v9``: the best, and the checkpoint whose latents ming-tts-head's benchmarks
  and ming-omni's tour use): v8 with the cosine ending at 0.2 of its start instead of 0.6.

The checkpoint at the end of the warm-up is kept for comparison.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field, replace
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

CACHE = Path.home() / ".cache" / "ming" / "speech-tokenizer"
TRAIN_SPEECH = SpeechOptions(
    n=160,
    seed=0,
    voices=("en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-us+f2", "en-029", "en-gb-x-rp+f4", "en-us-nyc+m5"),
)
HELD_OUT_SPEECH = SpeechOptions(n=8, seed=1, voices=("en-gb-scotland", "en-gb-x-gbcwmd+f1", "en-gb-x-gbclan+m7"))
# v3's training voices: 5 English accents × 36 espeak-ng variants, none of the held-out accents (scotland, gbcwmd,
# gbclan) or variants (f1, m7); robots and whisper left out (the held-out voices are plain voiced speech)
_V3_ACCENTS = ("en-us", "en-gb", "en-029", "en-gb-x-rp", "en-us-nyc")
_V3_VARIANTS = (
    "", "m1", "m2", "m3", "m4", "m5", "m6", "m8", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3", "croak",
    "Andy", "Annie", "aunty", "benjamin", "boris", "david", "ed", "edward", "grandma", "grandpa", "john", "linda",
    "max", "michel", "norbert", "paul", "quincy", "rob", "steph", "travis",
)  # fmt: skip
DIVERSE_TRAIN_SPEECH = SpeechOptions(
    n=2000,
    seed=0,
    voices=tuple(accent + (f"+{variant}" if variant else "") for accent in _V3_ACCENTS for variant in _V3_VARIANTS),
    speeds=(120, 150, 180, 210, 240),
    pitches=(10, 20, 30, 40, 50, 60, 70, 80, 90),
)
SCALE_CLIPS = 200  # training clips the latent scale is estimated from (all of v1's and v2's 160)
MODEL_SEED = 0  # the untrained baseline of bench_quality.py is this initialisation (with --seed N: seed N)


@dataclass(frozen=True)
class TinyRecipe:
    """One way to train the tiny espeak-ng tokenizer: model width, schedule and :class:`TrainingRecipe` options."""

    folder: str
    description: str
    warmup_steps: int
    adversarial_steps: int
    checkpoint_every: int
    config_overrides: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    train_speech: SpeechOptions = TRAIN_SPEECH
    start_from: str | None = None  # a recipe whose trained model this one continues (trained first if missing)
    seed: int = 0  # of the initialisation (MODEL_SEED + seed) and of TrainingRecipe.seed (batches, noise)

    @property
    def default_out(self) -> Path:
        return CACHE / self.folder

    def model_config(self) -> SpeechTokenizerConfig:
        return SpeechTokenizerConfig.tiny(**self.config_overrides)

    def untrained_model(self) -> SpeechTokenizerModel:
        """The model as initialised before training."""
        torch.manual_seed(MODEL_SEED + self.seed)
        return SpeechTokenizerModel(self.model_config())

    def initial_model(self) -> SpeechTokenizerModel:
        """The model this recipe's training starts from: :meth:`untrained_model`, or with ``start_from`` the weights
        of that recipe's saved model (trained and saved first if its folder has none)."""
        model = self.untrained_model()
        if self.start_from is not None:
            base = RECIPES[self.start_from]
            if not (base.default_out / "config.json").exists():
                print(f"no {self.start_from} model at {base.default_out}: training it first")
                train_and_save(base, base.default_out, run_dir_for(base.default_out))
            model.load_state_dict(SpeechTokenizerModel.from_pretrained(base.default_out).state_dict())
        return model

    def training_recipe(self, run_dir: Path) -> TrainingRecipe:
        options = {"batch_size": 8, "segment_frames": 50, "learning_rate": 1e-3, "plot_clips": 3, "seed": self.seed}
        options |= self.options
        return TrainingRecipe(
            output_dir=run_dir,
            steps=self.warmup_steps + self.adversarial_steps,
            warmup_steps=self.warmup_steps,
            checkpoint_every=self.checkpoint_every,
            validate_every=self.checkpoint_every,
            **options,
        )


# v4's model and losses, which v5 continues
_V4_MODEL = {"hidden_size": 256, "intermediate_size": 512, "encoder_log_spectrum": True, "harmonic_candidates": 256}
_V4_LOSSES = {
    "magnitude_weight": 5.0,
    "phase_weight": 1.0,
    "pitch_weight": 1.0,
    "mel_windows": (256, 512, 1024, 2048, 4096),
    "mel_bins": (20, 40, 80, 160, 320),
}

_V6 = TinyRecipe(
    folder="tiny-espeak-v6",
    description="v4's model and losses + the mel-anchored latent (64 bands, anchor loss 10), 2600 + 40 "
    "adversarial steps",
    warmup_steps=2600,
    adversarial_steps=40,
    checkpoint_every=650,
    # the probe of v4's settings (probe_phase_retrieval.py) found its band energies over time behind the 64-band
    # mel's; pilots at step 1200 of v3's schedule (mel / STOI / PESQ): the mel-anchored latent 1.062 / 0.863 /
    # 1.64 against v4's settings 1.285 / 0.813 / 1.26. Sized for ~20 minutes on this machine (one thread):
    # 0.39 s per reconstruction step, 5.4 s per discriminator step (measured on a 1-slot run of these settings)
    config_overrides={**_V4_MODEL, "mel_anchor_bands": 64},
    options={
        "final_learning_rate_fraction": 0.1,
        **_V4_LOSSES,
        "mel_anchor_weight": 10.0,
        "adversarial_every": 2,
    },
    train_speech=DIVERSE_TRAIN_SPEECH,
)

RECIPES = {
    "v1": TinyRecipe(
        folder="tiny-espeak",
        description="tiny preset, mel + KL, 2400 + 60 adversarial steps",
        warmup_steps=2400,
        adversarial_steps=60,
        checkpoint_every=300,
    ),
    "v2": TinyRecipe(
        folder="tiny-espeak-v2",
        description="width 256, mel + KL + head log-magnitude + phase, cosine lr, 5400 + 300 adversarial steps",
        warmup_steps=5400,
        adversarial_steps=300,
        checkpoint_every=600,
        # the first recipe's width-128 model reconstructed its training clips' spectra no better than held-out ones
        # (it underfits); width 256 costs 1.5× the step time
        config_overrides={"hidden_size": 256, "intermediate_size": 512},
        options={
            "final_learning_rate_fraction": 0.1,
            "magnitude_weight": 5.0,
            "phase_weight": 1.0,
            "adversarial_every": 2,
        },
    ),
    "v3": TinyRecipe(
        folder="tiny-espeak-v3",
        description="v2 + the encoder's log-spectrum input, 2000 clips in 180 voices, 5400 + 200 adversarial steps",
        warmup_steps=5400,
        adversarial_steps=200,
        checkpoint_every=600,
        # v2's held-out mel distance stopped improving at step 1800 while its training loss kept falling: it learnt
        # its 8 voices, not speech. Pilots (1500 steps, held-out mel / STOI / PESQ): the log-spectrum input with
        # the diverse data 1.24 / 0.83 / 1.23 (v2 at 1800 steps: 2.03 held-out mel)
        config_overrides={"hidden_size": 256, "intermediate_size": 512, "encoder_log_spectrum": True},
        options={
            "final_learning_rate_fraction": 0.1,
            "magnitude_weight": 5.0,
            "phase_weight": 1.0,
            "adversarial_every": 2,
        },
        train_speech=DIVERSE_TRAIN_SPEECH,
    ),
    "v4": TinyRecipe(
        folder="tiny-espeak-v4",
        description="v3 + the head's harmonic comb taught by a pitch teacher + a 4096-sample mel scale, 4500 + 100 "
        "adversarial steps",
        warmup_steps=4500,
        adversarial_steps=100,
        checkpoint_every=500,
        # v3's magnitudes smeared the pitch harmonics of unseen voices below 1 kHz. Pilots at step 1200 of v3's
        # schedule (pilot_recipes.py): a comb learnt through the magnitudes alone picked fundamentals that were
        # not the voice's; the pitch teacher names them
        config_overrides=_V4_MODEL,
        options={"final_learning_rate_fraction": 0.1, **_V4_LOSSES, "adversarial_every": 2},
        train_speech=DIVERSE_TRAIN_SPEECH,
    ),
    "v5": TinyRecipe(
        folder="tiny-espeak-v5",
        description="v4's model trained 1500 more steps with v4's losses (learning rate 2e-4 on a cosine to 1e-4)",
        warmup_steps=1500,
        adversarial_steps=0,
        checkpoint_every=300,
        # v4's magnitudes with the input's phases beat Griffin-Lim, its phases did not. Pilots of 600 steps from v4
        # (pilot_recipes.py --stop 600 ft-...): a compressed complex STFT loss, the head's consistency loss or a
        # 10× phase loss did no better than these steps with v4's own losses (ft-control)
        config_overrides=_V4_MODEL,
        options={"learning_rate": 2e-4, "final_learning_rate_fraction": 0.5, **_V4_LOSSES},
        train_speech=DIVERSE_TRAIN_SPEECH,
        start_from="v4",
    ),
    "v6": _V6,
    # v6 ended below its own pilot (STOI 0.875 vs 0.898 at step 2400; a training loss spike at step 414, the comb's
    # pitch loss off its plateau 400 steps later); the pilot follows v3's 5600-step cosine, whose learning rate is
    # still 0.59 of its start at step 2640
    "v7": replace(
        _V6,
        folder="tiny-espeak-v7",
        description="v6 with the learning rate's cosine ending at 0.6 of its start instead of 0.1, 2600 + 40 "
        "adversarial steps",
        options={**_V6.options, "final_learning_rate_fraction": 0.6},
    ),
    # pilots at step 1200 of v3's schedule (pilot_recipes.py), mel / STOI / PESQ: clip1 0.984 / 0.880 / 1.74 against
    # anchor10 1.062 / 0.863 / 1.64 (clip1 at twice the rate: 0.995 / 0.869 / 1.61). Sized for ~20 minutes on the
    # machine of session 9 (2026-12-02), where a pilot step took 0.25 CPU-s (0.42-0.44 in sessions 6-8)
    "v8": replace(
        _V6,
        folder="tiny-espeak-v8",
        description="v7 with the generator's gradient clipped to norm 1 and its learning rate ramped up over 100 "
        "steps, 4000 + 40 adversarial steps",
        warmup_steps=4000,
        checkpoint_every=1010,
        options={
            **_V6.options,
            "final_learning_rate_fraction": 0.6,
            "max_gradient_norm": 1.0,
            "learning_rate_warmup_steps": 100,
        },
    ),
}
RECIPES["v9"] = replace(
    RECIPES["v8"],
    folder="tiny-espeak-v9",
    description="v8 with the learning rate's cosine ending at 0.2 of its start instead of 0.6, 4000 + 40 "
    "adversarial steps",
    options={**RECIPES["v8"].options, "final_learning_rate_fraction": 0.2},
)
DEFAULT_RECIPE = "v9"


def recipe_with_seed(name: str, seed: int) -> TinyRecipe:
    """Recipe ``name``, or with a seed other than 0 the same recipe from another initialisation and batch order,
    in the folder ``<folder>-seed<seed>`` (a replicate)."""
    tiny = RECIPES[name]
    return tiny if seed == 0 else replace(tiny, seed=seed, folder=f"{tiny.folder}-seed{seed}")


def speech_clips(options: SpeechOptions) -> list[torch.Tensor]:
    """The utterances of ``options`` as float32 tensors at 16 kHz."""
    return [torch.from_numpy(u.audio) for u in make_speech(options)]


def run_dir_for(out: Path) -> Path:
    """Where the trainer's checkpoints of the model saved at ``out`` go."""
    return out.with_name(out.name + "-run")


def train_and_save(tiny: TinyRecipe, out: Path, run_dir: Path) -> SpeechTokenizerModel:
    """Train (or resume) the tiny tokenizer, set its latent scale from the training clips and save it to ``out``."""
    train, held_out = speech_clips(tiny.train_speech), speech_clips(HELD_OUT_SPEECH)
    minutes = sum(c.numel() for c in train) / 16_000 / 60
    print(f"{len(train)} training clips ({minutes:.1f} min), {len(held_out)} held out")
    model = tiny.initial_model()
    start, cpu_start = time.perf_counter(), time.process_time()
    log = train_speech_tokenizer(model, train, tiny.training_recipe(run_dir), held_out)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(f"trained in {wall:.0f} s ({cpu:.0f} CPU-s); held-out mel distance per validation: {log.validation}")
    model.eval()
    factor = estimate_latent_scaling_factor(model, train[:SCALE_CLIPS], 16_000)
    model.save_pretrained(out)
    print(f"latent_scaling_factor {factor:.4f}; model saved to {out}")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=sorted(RECIPES), default=DEFAULT_RECIPE, help="see the module docstring")
    parser.add_argument("--out", type=Path, default=None, help="where save_pretrained writes the model")
    parser.add_argument("--run", type=Path, default=None, help="trainer checkpoints and plots (default: <out>-run)")
    parser.add_argument("--seed", type=int, default=0, help="another initialisation and batch order (a replicate)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # thousands of small ops: a second thread costs more than it gains on a shared 2-core box
    tiny = recipe_with_seed(args.recipe, args.seed)
    out = args.out or tiny.default_out
    train_and_save(tiny, out, args.run or run_dir_for(out))


if __name__ == "__main__":
    main()
