"""Trainer of the VAE-GAN speech tokenizer (paper §2.2: generator loss = multi-scale mel + adversarial + feature
matching + KL; the discriminator is trained with the adversarial loss).

Each step draws a batch of random segments, encodes, samples the posterior and decodes. Segments are cropped
``latency_frames`` (3) frames longer than ``segment_frames`` and the losses see only the first ``segment_frames``:
the decoder's last 3 slots are unfinished (no later frame overlaps them), so their targets are unreachable. During
the first ``warmup_steps`` only the reconstruction terms (mel and KL, plus the optional multi-resolution STFT and
phase terms) train the generator; afterwards, every ``adversarial_every``-th step, the discriminators take an LSGAN
step on real vs detached generated audio, and the generator adds the adversarial and feature-matching terms (with the
discriminators frozen). The generator's learning rate follows a cosine (optionally after a linear ramp of
``learning_rate_warmup_steps``) and its gradient may be clipped to ``max_gradient_norm``: both off by default, both
against the loss spikes of short high-rate CPU runs. A non-finite loss stops the run before it reaches an optimizer or
a checkpoint.

The issue's recipe is the default (mel 15, adversarial 1, feature matching 1, KL 1e-4; STFT and phase weights 0).
The extra terms exist for short CPU runs, where the discriminators (the only terms that constrain the phase in that
recipe) cannot train for long: ``stft_weight`` (:class:`MultiResolutionSTFTLoss` on the finished slots),
``complex_stft_weight`` (:class:`CompressedComplexSTFTLoss`, the same slots, phase included),
``consistency_weight`` (:func:`compressed_complex_distance` between the ISTFT head's spectra and those of the
waveform they overlap-add to), ``band_energy_weight`` (:class:`MelBandEnergyLoss` on the finished slots: compressed,
not log, magnitudes of 64 mel bands at 4 hops' window and the latent hop, so that loud frames weigh more) and
``phase_weight`` (:func:`phase_loss` between the ISTFT head's phases and those of the input's frames in the head's
layout, all ``(segment_frames + latency_frames) · head_subframes`` of them: the encoder saw each of them whole), and
for a model with a harmonic comb ``pitch_weight`` (:func:`pitch_loss` of the comb's fundamental against the teacher
:meth:`HarmonicComb.pitch_targets` of the same frames), and for a model with a mel anchor ``mel_anchor_weight``
(:func:`mel_anchor_loss` of the posterior mean's anchored channels against :meth:`MelAnchor.target` of the input's
frames in the head's layout, all of them).

Checkpoints (``checkpoint-<step>/``: the model's ``save_pretrained`` safetensors, the discriminator's safetensors and
``trainer_state.pt`` with optimizers, random-generator states and the log) are written every ``checkpoint_every``
steps (the newest ``keep_last`` are kept); calling the trainer again with the same recipe resumes from the latest
one and continues the identical run, on the same device type (the noise generator's state is device-specific).
Validation writes, for the first clips, the original and reconstructed audio (16-bit WAV) and a waveform +
log-mel spectrogram figure.
"""

from __future__ import annotations

import json
import math
import shutil
import wave as wave_io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from safetensors.torch import load_file, save_file
from torchaudio.transforms import MelSpectrogram
from tqdm.auto import tqdm
from transformers.utils import logging as transformers_logging

from ._inputs import as_float_tensor
from .configuration import SpeechTokenizerConfig
from .discriminators import SpeechDiscriminator
from .losses import (
    CompressedComplexSTFTLoss,
    MelBandEnergyLoss,
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    compressed_complex_distance,
    feature_matching_loss,
    log_magnitude_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    mel_anchor_loss,
    phase_loss,
    pitch_loss,
)
from .modeling import SpeechTokenizerModel

__all__ = ["TrainingLog", "TrainingRecipe", "train_speech_tokenizer"]

_LOSS_NAMES = (
    "total",
    "mel",
    "kl",
    "stft",
    "complex_stft",
    "consistency",
    "band_energy",
    "magnitude",
    "phase",
    "pitch",
    "mel_anchor",
    "adversarial",
    "feature_matching",
    "discriminator",
)
# Fields that may change between an interrupted run and its resumption without changing the run itself.
_RESUMABLE_CHANGES = {"steps", "progress", "keep_last"}
_Positive = Annotated[int, Field(gt=0)]
_Beta = Annotated[float, Field(gt=0, lt=1)]


class TrainingRecipe(BaseModel):
    """Everything :func:`train_speech_tokenizer` needs besides the model and the audio."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    output_dir: Path = Field(description="Checkpoints and validation clips go here; an existing run is resumed.")
    steps: int = Field(gt=0, description="Total optimizer steps of the run.")
    batch_size: int = Field(8, gt=0, description="Segments per batch.")
    segment_frames: int = Field(50, gt=0, description="Segment length in latent frames (50 = 1 s at 16 kHz).")
    learning_rate: float = Field(2e-4, gt=0, description="AdamW learning rate of the generator.")
    discriminator_learning_rate: float = Field(2e-4, gt=0, description="AdamW learning rate of the discriminators.")
    betas: tuple[_Beta, _Beta] = Field((0.8, 0.99), description="AdamW betas of both optimizers, each in (0, 1).")
    final_learning_rate_fraction: float = Field(
        1.0,
        gt=0,
        le=1,
        description="The generator's learning rate follows a cosine from learning_rate to this fraction of it at "
        "`steps` (1.0: constant); the discriminators', which start late, stays constant.",
    )
    learning_rate_warmup_steps: int = Field(
        0,
        ge=0,
        description="Steps over which the generator's learning rate ramps linearly from 0 to its cosine's value "
        "(0: no ramp).",
    )
    max_gradient_norm: float | None = Field(
        None,
        gt=0,
        description="Clip the generator's gradient to this global L2 norm before each step (None: no clipping).",
    )
    warmup_steps: int = Field(1000, ge=0, description="Reconstruction-only steps before the discriminators start.")
    mel_weight: float = Field(15.0, ge=0, description="Weight of the multi-scale mel L1 loss.")
    adversarial_weight: float = Field(1.0, ge=0, description="Weight of the generator's LSGAN loss.")
    feature_matching_weight: float = Field(1.0, ge=0, description="Weight of the L1 feature-matching loss.")
    kl_weight: float = Field(1e-4, ge=0, description="Weight of the KL divergence to a standard normal.")
    stft_weight: float = Field(0.0, ge=0, description="Weight of the multi-resolution STFT loss (0: not computed).")
    stft_resolutions: tuple[tuple[_Positive, _Positive], ...] = Field(
        ((2048, 512), (1024, 256), (512, 128), (256, 64)), min_length=1, description="[n_fft, hop] of the STFT loss."
    )
    complex_stft_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of the multi-resolution compressed complex STFT loss on the waveform (0: not computed).",
    )
    complex_stft_resolutions: tuple[tuple[_Positive, _Positive], ...] = Field(
        ((2048, 512), (1024, 256), (512, 128)), min_length=1, description="[n_fft, hop] of the complex STFT loss."
    )
    complex_stft_compression: float = Field(
        0.3, gt=0, le=1, description="Power-law compression of the complex STFT loss's magnitudes."
    )
    consistency_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of the ISTFT head's consistency loss: its compressed complex spectra against those of "
        "the waveform they overlap-add to, on the frames inside the finished slots (0: not computed).",
    )
    band_energy_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of the L1 loss on compressed 64-band mel magnitudes (window 4 hops, the latent hop) "
        "on the finished slots (0: not computed).",
    )
    band_energy_compression: float = Field(
        0.3, gt=0, le=1, description="Power-law compression of the band energy loss's mel magnitudes."
    )
    magnitude_weight: float = Field(
        0.0, ge=0, description="Weight of the ISTFT head's log-magnitude loss (0: not computed)."
    )
    phase_weight: float = Field(0.0, ge=0, description="Weight of the ISTFT head's phase loss (0: not computed).")
    pitch_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of the harmonic comb's pitch loss against the input's own harmonics (0: not computed; "
        "needs a model with harmonic_candidates > 0).",
    )
    mel_anchor_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of the L1 loss tying the posterior mean's mel-anchored channels to the input's normalised "
        "log-mel levels (0: not computed; needs a model with mel_anchor_bands > 0).",
    )
    phase_magnitude_weighted: bool = Field(
        True, description="Weight the phase loss's bins by the target's magnitudes (False: APNet's plain means)."
    )
    phase_instantaneous: bool = Field(
        True,
        description="Include the phase loss's instantaneous-phase term (False: group delay and instantaneous "
        "frequency only).",
    )
    adversarial_every: int = Field(
        1, gt=0, description="After warm-up, the discriminator step and adversarial terms run every this many steps."
    )
    mel_windows: tuple[_Positive, ...] = Field((256, 512, 1024, 2048), min_length=1, description="Mel loss windows.")
    mel_bins: tuple[_Positive, ...] = Field((20, 40, 80, 160), min_length=1, description="Mel bands per window.")
    checkpoint_every: int = Field(500, gt=0, description="Steps between checkpoints (the last step always saves).")
    keep_last: int | None = Field(None, gt=0, description="Newest checkpoints kept (older ones deleted); None: all.")
    validate_every: int = Field(500, gt=0, description="Steps between validations (the last step always runs one).")
    plot_clips: int = Field(3, ge=0, description="Validation clips written as audio and figures.")
    seed: int = Field(0, ge=0, description="Seed of the discriminators' initialisation, the batches and the noise.")
    progress: bool = Field(True, description="Show a tqdm progress bar.")

    @model_validator(mode="after")
    def _check(self) -> TrainingRecipe:
        if len(self.mel_bins) != len(self.mel_windows):
            raise ValueError(f"mel_bins needs one entry per mel window ({len(self.mel_windows)})")
        if any(b > w // 2 + 1 for b, w in zip(self.mel_bins, self.mel_windows, strict=True)):
            raise ValueError("mel_bins: more mel bands than frequency bins of their window")
        for name in ("stft_resolutions", "complex_stft_resolutions"):
            if any(hop > n_fft for n_fft, hop in getattr(self, name)):
                raise ValueError(f"{name}: a hop longer than its n_fft")
        return self


@dataclass
class TrainingLog:
    """Per-step losses (keys ``total``, ``mel``, ``kl``, ``stft``, ``complex_stft``, ``consistency``,
    ``band_energy``, ``magnitude``, ``phase``, ``pitch``, ``mel_anchor``, ``adversarial``, ``feature_matching``,
    ``discriminator``; a term that is off, and the last three
    during warm-up and on steps without the discriminators, are 0) and ``(step, multi-scale mel distance)`` of
    each validation."""

    losses: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in _LOSS_NAMES})
    validation: list[tuple[int, float]] = field(default_factory=list)


def _clip_tensors(clips: Sequence[torch.Tensor | np.ndarray], name: str) -> list[torch.Tensor]:
    tensors = []
    for i, clip in enumerate(clips):
        clip = as_float_tensor(clip, f"{name}[{i}]").float()
        if clip.dim() != 1:
            raise ValueError(f"{name}[{i}] must be 1D mono audio, got shape {tuple(clip.shape)}")
        tensors.append(clip)
    if not tensors:
        raise ValueError(f"{name} is empty")
    return tensors


def _check_lengths(
    recipe: TrainingRecipe, config: SpeechTokenizerConfig, length: int, validation: list[torch.Tensor]
) -> None:
    # torch.stft (center=True, reflect padding) needs more than n_fft // 2 samples; better said now than at the first
    # step after warm-up or the first validation
    mel_minimum = max(recipe.mel_windows) // 2 + 1
    stft = (*(recipe.stft_resolutions if recipe.stft_weight > 0 else ()),)
    stft += recipe.complex_stft_resolutions if recipe.complex_stft_weight > 0 else ()
    stft += ((4 * config.hop_length, config.hop_length),) if recipe.band_energy_weight > 0 else ()
    minimum = max(mel_minimum, *(n_fft // 2 + 1 for n_fft, _ in (*config.discriminator_stft_resolutions, *stft)))
    if length < minimum:
        raise ValueError(
            f"segment_frames ({recipe.segment_frames} = {length} samples) is too short for the mel and STFT "
            f"windows: a segment needs at least {minimum} samples ({math.ceil(minimum / config.hop_length)} frames)"
        )
    for i, clip in enumerate(validation):
        if clip.numel() < mel_minimum:
            raise ValueError(
                f"validation_clips[{i}] has {clip.numel()} samples; the mel distance needs at least {mel_minimum}"
            )


def _batch(clips: list[torch.Tensor], size: int, length: int, generator: torch.Generator) -> torch.Tensor:
    rows = []
    for _ in range(size):
        clip = clips[int(torch.randint(len(clips), (1,), generator=generator))]
        start = int(torch.randint(clip.numel() - length + 1, (1,), generator=generator))
        rows.append(clip[start : start + length])
    return torch.stack(rows)


def _write_wav(path: Path, audio: torch.Tensor, sample_rate: int) -> None:
    pcm = (audio.clamp(-1, 1) * 32767).round().to(torch.int16).numpy()
    with wave_io.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())


def _plot(
    path: Path, original: torch.Tensor, reconstruction: torch.Tensor, mel: MelSpectrogram, sample_rate: int, title: str
) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 5), sharex="col")
    seconds = np.arange(original.numel()) / sample_rate
    for column, (label, audio) in enumerate((("original", original), ("reconstruction", reconstruction))):
        axes[0, column].plot(seconds, audio.numpy(), lw=0.4)
        axes[0, column].set_title(label)
        axes[0, column].set_ylim(-1, 1)
        log_mel = mel(audio).clamp(min=1e-5).log10().numpy()
        axes[1, column].imshow(
            log_mel, origin="lower", aspect="auto", extent=(0, seconds[-1], 0, log_mel.shape[0]), vmin=-5, vmax=1
        )
        axes[1, column].set_xlabel("s")
        axes[1, column].set_ylabel("mel band")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


@torch.no_grad()
def _validate(
    model: SpeechTokenizerModel,
    clips: list[torch.Tensor],
    distance: MultiScaleMelLoss,
    step: int,
    recipe: TrainingRecipe,
) -> float:
    model.eval()
    rate = model.config.sampling_rate
    folder = recipe.output_dir / "validation" / f"step-{step:07d}"
    folder.mkdir(parents=True, exist_ok=True)
    plot_mel = MelSpectrogram(rate, n_fft=1024, hop_length=256, n_mels=80, power=1.0)
    distances = []
    for i, clip in enumerate(clips):
        reconstruction = model.decode(model.encode(clip, rate))[0, : clip.numel()]
        distances.append(distance(reconstruction[None], clip[None].to(reconstruction.device)).item())
        if i < recipe.plot_clips:
            reconstruction = reconstruction.cpu()
            _write_wav(folder / f"clip-{i}-original.wav", clip, rate)
            _write_wav(folder / f"clip-{i}-reconstruction.wav", reconstruction, rate)
            title = f"clip {i}, step {step}: mel {distances[-1]:.3f}"
            _plot(folder / f"clip-{i}.png", clip, reconstruction, plot_mel, rate, title)
    model.train()
    return sum(distances) / len(distances)


def _latest_checkpoint(output_dir: Path) -> Path | None:
    found = sorted(output_dir.glob("checkpoint-*[0-9]"))
    return found[-1] if found else None


def train_speech_tokenizer(
    model: SpeechTokenizerModel,
    clips: Sequence[torch.Tensor | np.ndarray],
    recipe: TrainingRecipe,
    validation_clips: Sequence[torch.Tensor | np.ndarray] = (),
    *,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainingLog:
    """Train ``model`` (in place) on ``clips`` following ``recipe``, resuming from ``recipe.output_dir`` if it holds
    a checkpoint of the same recipe (only ``steps``, ``progress`` and ``keep_last`` may differ) written on the same
    device type. The global random state is left alone: the run draws from its own seeded generators.

    Args:
        model: the tokenizer; its weights are replaced by the checkpoint's when resuming.
        clips: 1D float audio at ``model.config.sampling_rate``; each batch row is a random crop of a random
            clip (``segment_frames + latency_frames`` frames), and shorter clips are completed with zeros.
        recipe: the run's settings.
        validation_clips: 1D float audio encoded and decoded at each validation (posterior mean), each long
            enough for the mel distance (``max(mel_windows) // 2 + 1`` samples).
        callback: called with ``(step, losses)`` after every step (and its checkpoint), e.g. for logging.

    Returns:
        The log of the whole run (a resumed run's log includes the steps before the interruption).

    Raises:
        FloatingPointError: a loss is NaN or infinite (before the step that would use it and any checkpoint).
    """
    config = model.config
    length = recipe.segment_frames * config.hop_length
    crop = length + config.latency_frames * config.hop_length
    train_clips = [F.pad(c, (0, max(0, crop - c.numel()))) for c in _clip_tensors(clips, "clips")]
    val_clips = _clip_tensors(validation_clips, "validation_clips") if validation_clips else []
    _check_lengths(recipe, config, length, val_clips)
    if recipe.pitch_weight > 0 and model.decoder.head.harmonic is None:
        raise ValueError("recipe.pitch_weight > 0 needs a model with a harmonic comb (config.harmonic_candidates > 0)")
    if recipe.mel_anchor_weight > 0 and model.decoder.head.anchor is None:
        raise ValueError("recipe.mel_anchor_weight > 0 needs a model with a mel anchor (config.mel_anchor_bands > 0)")
    device = model.device
    with torch.random.fork_rng(devices=[]):  # the discriminator is built on the CPU: seed only its generator
        torch.random.default_generator.manual_seed(recipe.seed)
        discriminator = SpeechDiscriminator(config).to(device)
    mel_loss = MultiScaleMelLoss(config.sampling_rate, recipe.mel_windows, recipe.mel_bins).to(device)
    stft_loss = MultiResolutionSTFTLoss(recipe.stft_resolutions).to(device)
    complex_stft_loss = CompressedComplexSTFTLoss(recipe.complex_stft_resolutions, recipe.complex_stft_compression)
    complex_stft_loss = complex_stft_loss.to(device)
    band_energy_loss = MelBandEnergyLoss(
        config.sampling_rate, 4 * config.hop_length, config.hop_length, compression=recipe.band_energy_compression
    ).to(device)
    generator_optimizer = torch.optim.AdamW(model.parameters(), recipe.learning_rate, betas=recipe.betas)
    discriminator_optimizer = torch.optim.AdamW(
        discriminator.parameters(), recipe.discriminator_learning_rate, betas=recipe.betas
    )
    batches = torch.Generator().manual_seed(recipe.seed)
    noise = torch.Generator(device).manual_seed(recipe.seed + 1)
    log = TrainingLog()
    step = 0
    recipe.output_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = _latest_checkpoint(recipe.output_dir)
    if checkpoint is not None:
        saved = json.loads((checkpoint / "recipe.json").read_text())
        current = json.loads(recipe.model_dump_json())
        # a run saved before a field existed ran with its default
        defaults = json.loads(TrainingRecipe.model_construct().model_dump_json(exclude={"output_dir", "steps"}))
        changed = sorted(
            k for k in current if k not in _RESUMABLE_CHANGES and saved.get(k, defaults.get(k)) != current[k]
        )
        if changed:
            raise ValueError(f"recipe differs from the run in {recipe.output_dir} in {changed}; use a new output_dir")
        state = torch.load(checkpoint / "trainer_state.pt", weights_only=True, map_location="cpu")
        if state["noise_device"] != device.type:
            # CPU and CUDA generators draw different numbers from the same state: the run could not be identical
            raise ValueError(
                f"{checkpoint} was written on {state['noise_device']} and model is on {device.type}; resume on "
                f"{state['noise_device']} (the posterior noise generator is device-specific) or use a new output_dir"
            )
        model.load_state_dict(load_file(checkpoint / "model.safetensors", device=str(device)))
        discriminator.load_state_dict(load_file(checkpoint / "discriminator.safetensors", device=str(device)))
        generator_optimizer.load_state_dict(state["generator_optimizer"])
        discriminator_optimizer.load_state_dict(state["discriminator_optimizer"])
        batches.set_state(state["batches"])
        noise.set_state(state["noise"])
        losses = {name: state["losses"].get(name, [0.0] * state["step"]) for name in _LOSS_NAMES}
        log = TrainingLog(losses, [tuple(v) for v in state["validation"]])
        step = state["step"]
    model.train()
    discriminator.train()
    bar = tqdm(total=recipe.steps, initial=step, disable=not recipe.progress, desc="train speech tokenizer")
    while step < recipe.steps:
        # a function of the step alone, so a resumed run continues on the same schedule
        factor = recipe.final_learning_rate_fraction + (1 - recipe.final_learning_rate_fraction) * 0.5 * (
            1 + math.cos(math.pi * step / recipe.steps)
        )
        if step < recipe.learning_rate_warmup_steps:
            factor *= (step + 1) / (recipe.learning_rate_warmup_steps + 1)
        for group in generator_optimizer.param_groups:
            group["lr"] = recipe.learning_rate * factor
        batch = _batch(train_clips, recipe.batch_size, crop, batches).to(device)
        output = model(batch, sample=True, generator=noise)
        real, fake = batch[:, :length], output.reconstruction[:, :length]  # finished slots only
        losses = {"mel": mel_loss(fake, real), "kl": output.posterior.kl()}
        total = recipe.mel_weight * losses["mel"] + recipe.kl_weight * losses["kl"]
        if recipe.stft_weight > 0:
            losses["stft"] = stft_loss(fake, real)
            total = total + recipe.stft_weight * losses["stft"]
        if recipe.complex_stft_weight > 0:
            losses["complex_stft"] = complex_stft_loss(fake, real)
            total = total + recipe.complex_stft_weight * losses["complex_stft"]
        if recipe.band_energy_weight > 0:
            losses["band_energy"] = band_energy_loss(fake, real)
            total = total + recipe.band_energy_weight * losses["band_energy"]
        if recipe.consistency_weight > 0:
            # the head's frames n_fft / hop − 1 … segment_frames · K − 1 lie wholly inside the finished slots
            # [0, length) (K = head_subframes; the head's n_fft and hop are its subframes')
            head = model.decoder.head
            first, last = head.n_fft // head.hop - 1, recipe.segment_frames * head.subframes
            predicted = head.polar(output.log_magnitude, output.phase)[:, first:last]
            resynthesised = head.analyze(fake)[:, first:]
            losses["consistency"] = compressed_complex_distance(
                predicted, resynthesised, recipe.complex_stft_compression
            )
            total = total + recipe.consistency_weight * losses["consistency"]
        if any(
            w > 0 for w in (recipe.magnitude_weight, recipe.phase_weight, recipe.pitch_weight, recipe.mel_anchor_weight)
        ):
            with torch.no_grad():
                target = model.decoder.head.analyze(batch)
        if recipe.magnitude_weight > 0:
            losses["magnitude"] = log_magnitude_loss(output.log_magnitude, target)
            total = total + recipe.magnitude_weight * losses["magnitude"]
        if recipe.phase_weight > 0:
            magnitude = target.abs() if recipe.phase_magnitude_weighted else None
            losses["phase"] = phase_loss(output.phase, target.angle(), magnitude, recipe.phase_instantaneous)
            total = total + recipe.phase_weight * losses["phase"]
        if recipe.pitch_weight > 0:
            losses["pitch"] = pitch_loss(output.harmonic_logits, *model.decoder.head.harmonic.pitch_targets(target))
            total = total + recipe.pitch_weight * losses["pitch"]
        if recipe.mel_anchor_weight > 0:
            anchor_target = model.decoder.head.anchor.target(target)
            losses["mel_anchor"] = mel_anchor_loss(output.posterior.mean, anchor_target)
            total = total + recipe.mel_anchor_weight * losses["mel_anchor"]
        if step >= recipe.warmup_steps and (step - recipe.warmup_steps) % recipe.adversarial_every == 0:
            losses["discriminator"] = lsgan_discriminator_loss(discriminator(real), discriminator(fake.detach()))
            _check_finite(losses, step + 1)
            discriminator_optimizer.zero_grad(set_to_none=True)
            losses["discriminator"].backward()
            discriminator_optimizer.step()
            with torch.no_grad():
                real_outputs = discriminator(real)
            discriminator.requires_grad_(False)  # the generator's losses must not reach the discriminators
            fake_outputs = discriminator(fake)
            losses["adversarial"] = lsgan_generator_loss(fake_outputs)
            losses["feature_matching"] = feature_matching_loss(real_outputs, fake_outputs)
            total = (
                total
                + recipe.adversarial_weight * losses["adversarial"]
                + recipe.feature_matching_weight * losses["feature_matching"]
            )
        losses["total"] = total
        _check_finite(losses, step + 1)
        generator_optimizer.zero_grad(set_to_none=True)
        total.backward()
        discriminator.requires_grad_(True)
        if recipe.max_gradient_norm is not None:
            # a rare batch's outsized gradient otherwise throws AdamW's moments (and the run) off its path
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_gradient_norm)
        generator_optimizer.step()
        step += 1
        values = {name: losses[name].item() if name in losses else 0.0 for name in _LOSS_NAMES}
        for name in _LOSS_NAMES:
            log.losses[name].append(values[name])
        if val_clips and (step % recipe.validate_every == 0 or step == recipe.steps):
            log.validation.append((step, _validate(model, val_clips, mel_loss, step, recipe)))
        if step % recipe.checkpoint_every == 0 or step == recipe.steps:
            _save_checkpoint(
                recipe, step, model, discriminator, generator_optimizer, discriminator_optimizer, batches, noise, log
            )
        bar.update(1)
        bar.set_postfix(mel=f"{values['mel']:.3f}", adv=f"{values['adversarial']:.3f}")
        if callback is not None:
            callback(step, values)
    bar.close()
    return log


def _check_finite(losses: dict[str, torch.Tensor], step: int) -> None:
    bad = {name: value.item() for name, value in losses.items() if not math.isfinite(value.item())}
    if bad:
        raise FloatingPointError(
            f"training diverged at step {step}: non-finite {bad}; nothing of this step was applied or saved "
            "(lower the learning rates or resume from the last checkpoint)"
        )


def _save_checkpoint(
    recipe: TrainingRecipe,
    step: int,
    model: SpeechTokenizerModel,
    discriminator: SpeechDiscriminator,
    generator_optimizer: torch.optim.Optimizer,
    discriminator_optimizer: torch.optim.Optimizer,
    batches: torch.Generator,
    noise: torch.Generator,
    log: TrainingLog,
) -> None:
    final = recipe.output_dir / f"checkpoint-{step:07d}"
    partial = recipe.output_dir / f".partial-checkpoint-{step:07d}"
    shutil.rmtree(partial, ignore_errors=True)
    with _transformers_progress_bars(recipe.progress):
        model.save_pretrained(partial)
    save_file({k: v.contiguous() for k, v in discriminator.state_dict().items()}, partial / "discriminator.safetensors")
    torch.save(
        {
            "step": step,
            "generator_optimizer": generator_optimizer.state_dict(),
            "discriminator_optimizer": discriminator_optimizer.state_dict(),
            "batches": batches.get_state(),
            "noise": noise.get_state(),
            "noise_device": noise.device.type,
            "losses": log.losses,
            "validation": [list(v) for v in log.validation],
        },
        partial / "trainer_state.pt",
    )
    (partial / "recipe.json").write_text(recipe.model_dump_json(indent=2))
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)  # a run killed while saving leaves only a .partial folder, which resuming ignores
    if recipe.keep_last is not None:
        for old in sorted(recipe.output_dir.glob("checkpoint-*[0-9]"))[: -recipe.keep_last]:
            shutil.rmtree(old)


@contextmanager
def _transformers_progress_bars(enabled: bool) -> Iterator[None]:
    """transformers' own bars (``save_pretrained``'s "Writing model shards") off while ``enabled`` is false."""
    was_enabled = transformers_logging.is_progress_bar_enabled()
    if was_enabled and not enabled:
        transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled and not enabled:
            transformers_logging.enable_progress_bar()
