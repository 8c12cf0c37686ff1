"""Trainer of the VAE-GAN speech tokenizer (paper §2.2: generator loss = multi-scale mel + adversarial + feature
matching + KL; the discriminator is trained with the adversarial loss).

Each step draws a batch of random segments, encodes, samples the posterior and decodes. During the first
``warmup_steps`` only the reconstruction terms (mel and KL) train the generator; afterwards the discriminators take
an LSGAN step on real vs detached generated audio, and the generator adds the adversarial and feature-matching terms.

Checkpoints (``checkpoint-<step>/``: the model's ``save_pretrained`` safetensors, the discriminator's safetensors and
``trainer_state.pt`` with optimizers, random-generator states and the log) are written every ``checkpoint_every``
steps; calling the trainer again with the same recipe resumes from the latest one and continues the identical run.
Validation writes, for the first clips, the original and reconstructed audio (16-bit WAV) and a waveform +
log-mel spectrogram figure.
"""

from __future__ import annotations

import json
import math
import shutil
import wave as wave_io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ._inputs import as_float_tensor
from .discriminators import SpeechDiscriminator
from .losses import MultiScaleMelLoss, feature_matching_loss, lsgan_discriminator_loss, lsgan_generator_loss
from .modeling import SpeechTokenizerModel

__all__ = ["TrainingLog", "TrainingRecipe", "train_speech_tokenizer"]

LOSS_NAMES = ("total", "mel", "kl", "adversarial", "feature_matching", "discriminator")
# Fields that may change between an interrupted run and its resumption without changing the run itself.
_RESUMABLE_CHANGES = {"steps", "progress"}
_Positive = Annotated[int, Field(gt=0)]


class TrainingRecipe(BaseModel):
    """Everything :func:`train_speech_tokenizer` needs besides the model and the audio."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    output_dir: Path = Field(description="Checkpoints and validation clips go here; an existing run is resumed.")
    steps: int = Field(gt=0, description="Total optimizer steps of the run.")
    batch_size: int = Field(8, gt=0, description="Segments per batch.")
    segment_frames: int = Field(50, gt=0, description="Segment length in latent frames (50 = 1 s at 16 kHz).")
    learning_rate: float = Field(2e-4, gt=0, description="AdamW learning rate of the generator.")
    discriminator_learning_rate: float = Field(2e-4, gt=0, description="AdamW learning rate of the discriminators.")
    betas: tuple[float, float] = Field((0.8, 0.99), description="AdamW betas of both optimizers.")
    warmup_steps: int = Field(1000, ge=0, description="Reconstruction-only steps before the discriminators start.")
    mel_weight: float = Field(15.0, ge=0, description="Weight of the multi-scale mel L1 loss.")
    adversarial_weight: float = Field(1.0, ge=0, description="Weight of the generator's LSGAN loss.")
    feature_matching_weight: float = Field(1.0, ge=0, description="Weight of the L1 feature-matching loss.")
    kl_weight: float = Field(1e-4, ge=0, description="Weight of the KL divergence to a standard normal.")
    mel_windows: tuple[_Positive, ...] = Field((256, 512, 1024, 2048), min_length=1, description="Mel loss windows.")
    mel_bins: tuple[_Positive, ...] = Field((20, 40, 80, 160), min_length=1, description="Mel bands per window.")
    checkpoint_every: int = Field(500, gt=0, description="Steps between checkpoints (the last step always saves).")
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
        return self


@dataclass
class TrainingLog:
    """Per-step losses (keys ``total``, ``mel``, ``kl``, ``adversarial``, ``feature_matching``, ``discriminator``;
    the last three are 0 during warm-up) and ``(step, multi-scale mel distance)`` of each validation."""

    losses: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in LOSS_NAMES})
    validation: list[tuple[int, float]] = field(default_factory=list)


def _clip_tensors(clips: Sequence[torch.Tensor | np.ndarray], name: str, minimum: int) -> list[torch.Tensor]:
    tensors = []
    for i, clip in enumerate(clips):
        clip = as_float_tensor(clip, f"{name}[{i}]").float()
        if clip.dim() != 1:
            raise ValueError(f"{name}[{i}] must be 1D mono audio, got shape {tuple(clip.shape)}")
        tensors.append(F.pad(clip, (0, max(0, minimum - clip.numel()))))
    if not tensors:
        raise ValueError(f"{name} is empty")
    return tensors


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


def _plot(path: Path, original: torch.Tensor, reconstruction: torch.Tensor, sample_rate: int, title: str) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mel = MultiScaleMelLoss(sample_rate, (1024,), (80,)).transforms[0]
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
    distances = []
    for i, clip in enumerate(clips):
        reconstruction = model.decode(model.encode(clip, rate))[0, : clip.numel()].cpu()
        distances.append(distance(reconstruction[None], clip[None]).item())
        if i < recipe.plot_clips:
            _write_wav(folder / f"clip-{i}-original.wav", clip, rate)
            _write_wav(folder / f"clip-{i}-reconstruction.wav", reconstruction, rate)
            _plot(
                folder / f"clip-{i}.png", clip, reconstruction, rate, f"clip {i}, step {step}: mel {distances[-1]:.3f}"
            )
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
    a checkpoint of the same recipe (only ``steps`` and ``progress`` may differ).

    Args:
        model: the tokenizer; its weights are replaced by the checkpoint's when resuming.
        clips: 1D float audio at ``model.config.sampling_rate``; each batch row is a random segment of a random
            clip, and clips shorter than a segment are completed with zeros.
        recipe: the run's settings.
        validation_clips: 1D float audio encoded and decoded at each validation (posterior mean).
        callback: called with ``(step, losses)`` after every step (and its checkpoint), e.g. for logging.

    Returns:
        The log of the whole run (a resumed run's log includes the steps before the interruption).
    """
    config = model.config
    length = recipe.segment_frames * config.hop_length
    train_clips = _clip_tensors(clips, "clips", length)
    val_clips = _clip_tensors(validation_clips, "validation_clips", config.hop_length) if validation_clips else []
    device = model.device
    torch.manual_seed(recipe.seed)
    discriminator = SpeechDiscriminator(config).to(device)
    mel_loss = MultiScaleMelLoss(config.sampling_rate, recipe.mel_windows, recipe.mel_bins).to(device)
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
        changed = sorted(k for k in current if k not in _RESUMABLE_CHANGES and saved.get(k) != current[k])
        if changed:
            raise ValueError(f"recipe differs from the run in {recipe.output_dir} in {changed}; use a new output_dir")
        model.load_state_dict(load_file(checkpoint / "model.safetensors", device=str(device)))
        discriminator.load_state_dict(load_file(checkpoint / "discriminator.safetensors", device=str(device)))
        state = torch.load(checkpoint / "trainer_state.pt", weights_only=True)
        generator_optimizer.load_state_dict(state["generator_optimizer"])
        discriminator_optimizer.load_state_dict(state["discriminator_optimizer"])
        batches.set_state(state["batches"])
        noise.set_state(state["noise"])
        log = TrainingLog(state["losses"], [tuple(v) for v in state["validation"]])
        step = state["step"]
    model.train()
    discriminator.train()
    bar = tqdm(total=recipe.steps, initial=step, disable=not recipe.progress, desc="train speech tokenizer")
    while step < recipe.steps:
        real = _batch(train_clips, recipe.batch_size, length, batches).to(device)
        output = model(real, sample=True, generator=noise)
        fake = output.reconstruction
        losses = {"mel": mel_loss(fake, real), "kl": output.posterior.kl()}
        total = recipe.mel_weight * losses["mel"] + recipe.kl_weight * losses["kl"]
        if step >= recipe.warmup_steps:
            losses["discriminator"] = lsgan_discriminator_loss(discriminator(real), discriminator(fake.detach()))
            discriminator_optimizer.zero_grad(set_to_none=True)
            losses["discriminator"].backward()
            discriminator_optimizer.step()
            real_outputs, fake_outputs = discriminator(real), discriminator(fake)
            losses["adversarial"] = lsgan_generator_loss(fake_outputs)
            losses["feature_matching"] = feature_matching_loss(real_outputs, fake_outputs)
            total = (
                total
                + recipe.adversarial_weight * losses["adversarial"]
                + recipe.feature_matching_weight * losses["feature_matching"]
            )
        losses["total"] = total
        generator_optimizer.zero_grad(set_to_none=True)
        total.backward()
        generator_optimizer.step()
        step += 1
        values = {name: losses[name].item() if name in losses else 0.0 for name in LOSS_NAMES}
        for name in LOSS_NAMES:
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
    if not math.isfinite(log.losses["total"][-1]):
        raise FloatingPointError(f"training diverged: total loss {log.losses['total'][-1]} at step {step}")
    return log


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
    model.save_pretrained(partial)
    save_file({k: v.contiguous() for k, v in discriminator.state_dict().items()}, partial / "discriminator.safetensors")
    torch.save(
        {
            "step": step,
            "generator_optimizer": generator_optimizer.state_dict(),
            "discriminator_optimizer": discriminator_optimizer.state_dict(),
            "batches": batches.get_state(),
            "noise": noise.get_state(),
            "losses": log.losses,
            "validation": [list(v) for v in log.validation],
        },
        partial / "trainer_state.pt",
    )
    (partial / "recipe.json").write_text(recipe.model_dump_json(indent=2))
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)  # a run killed while saving leaves only a .partial folder, which resuming ignores
