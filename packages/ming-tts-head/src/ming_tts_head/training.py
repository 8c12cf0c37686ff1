"""Trainer of the TTS head (paper §2.2): teacher-forced loss = rectified-flow loss on every patch + stop loss, with
condition dropout for classifier-free guidance (see :meth:`ming_tts_head.TTSHeadModel.forward`).

Works on latents of any encoder that honours the speech tokenizer's contract (``(frames, 64)`` at 50 Hz per clip).
Checkpoints (``checkpoint-<step>/``: the model's ``save_pretrained`` safetensors, ``trainer_state.pt`` with the
optimizer, the random-generator states and the log, and ``recipe.json``) are written every ``checkpoint_every``
steps; calling the trainer again with the same recipe resumes from the latest one and continues the identical run.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import torch
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file
from tqdm.auto import tqdm

from ._inputs import check_clip_latents, check_token_ids
from .configuration import TTSHeadConfig
from .modeling import TTSHeadModel

__all__ = ["SpeechExample", "TrainingLog", "TrainingRecipe", "collate_examples", "train_tts_head"]

SpeechExample = tuple[Sequence[int] | torch.Tensor, torch.Tensor]
"""One training pair: the text's token ids and its speech latents ``(frames, latent_dim)``."""

_LOSS_NAMES = ("total", "flow", "stop")
# Fields that may change between an interrupted run and its resumption without changing the run itself (output_dir:
# the same folder may be spelt differently).
_RESUMABLE_CHANGES = {"output_dir", "steps", "progress", "keep_last"}
# config.json entries that describe the file or the attention backend, not the model being trained.
_CONFIG_METADATA = {"_name_or_path", "architectures", "transformers_version", "_attn_implementation"}
_Beta = Annotated[float, Field(gt=0, lt=1)]


class TrainingRecipe(BaseModel):
    """Everything :func:`train_tts_head` needs besides the model and the examples."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    output_dir: Path = Field(description="Checkpoints go here; an existing run is resumed.")
    steps: int = Field(gt=0, description="Total optimizer steps of the run.")
    batch_size: int = Field(8, gt=0, description="Examples per batch (drawn at random with replacement).")
    learning_rate: float = Field(3e-4, gt=0, description="AdamW learning rate.")
    betas: tuple[_Beta, _Beta] = Field((0.9, 0.95), description="AdamW betas, each in (0, 1).")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient-norm clipping.")
    checkpoint_every: int = Field(200, gt=0, description="Steps between checkpoints (the last step always saves).")
    keep_last: int | None = Field(None, gt=0, description="Keep only this many latest checkpoints (None: all).")
    seed: int = Field(0, ge=0, description="Seed of the batches, flow times, noise and condition dropout.")
    progress: bool = Field(True, description="Show a tqdm progress bar.")


@dataclass
class TrainingLog:
    """Per-step losses under ``total``, ``flow`` and ``stop`` (and ``regression`` for a model with that head)."""

    losses: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in _LOSS_NAMES})


def _check_examples(examples: Sequence[SpeechExample], latent_dim: int, vocab_size: int) -> list[SpeechExample]:
    if len(examples) == 0:
        raise ValueError("examples is empty")
    checked = []
    for i, (text, latents) in enumerate(examples):
        ids = torch.as_tensor(text, dtype=torch.long).flatten()
        if ids.numel() == 0:
            raise ValueError(f"examples[{i}].text_ids is empty")
        check_token_ids(ids, vocab_size, f"examples[{i}].text_ids")
        latents = check_clip_latents(torch.as_tensor(latents), f"examples[{i}].latents", latent_dim)
        checked.append((ids, latents.float()))
    return checked


def collate_examples(examples: Sequence[SpeechExample]) -> dict[str, torch.Tensor]:
    """Right-pad examples into the keyword arguments of :meth:`ming_tts_head.TTSHeadModel.forward`
    (``text_ids``, ``text_lengths``, ``latents``, ``latent_lengths``)."""
    texts = [torch.as_tensor(t, dtype=torch.long).flatten() for t, _ in examples]
    latents = [torch.as_tensor(x).reshape(-1, x.shape[-1]).float() for _, x in examples]
    return {
        "text_ids": torch.nn.utils.rnn.pad_sequence(texts, batch_first=True),
        "text_lengths": torch.tensor([t.numel() for t in texts]),
        "latents": torch.nn.utils.rnn.pad_sequence(latents, batch_first=True),
        "latent_lengths": torch.tensor([x.shape[0] for x in latents]),
    }


def _checkpoints(output_dir: Path) -> list[Path]:
    return sorted(output_dir.glob("checkpoint-*[0-9]"))


def _resume(model: TTSHeadModel, checkpoint: Path, recipe: TrainingRecipe) -> dict:
    """Check that ``checkpoint`` belongs to this run, load its weights into ``model``; return the trainer state."""
    saved = json.loads((checkpoint / "recipe.json").read_text())
    current = json.loads(recipe.model_dump_json())
    changed = sorted(k for k in current if k not in _RESUMABLE_CHANGES and saved.get(k) != current[k])
    if changed:
        raise ValueError(f"recipe differs from the run in {recipe.output_dir} in {changed}; use a new output_dir")
    state = torch.load(checkpoint / "trainer_state.pt", weights_only=True)
    if state["step"] > recipe.steps:
        raise ValueError(f"recipe.steps={recipe.steps} but the run in {recipe.output_dir} is at step {state['step']}")
    saved_config = TTSHeadConfig.from_pretrained(checkpoint).to_dict()
    config = {**model.config.to_dict(), "dtype": str(model.dtype).removeprefix("torch.")}
    keys = (config.keys() | saved_config.keys()) - _CONFIG_METADATA
    changed = sorted(k for k in keys if config.get(k) != saved_config.get(k))
    if changed:
        raise ValueError(f"model.config differs from the checkpoint {checkpoint} in {changed}")
    weights = load_file(checkpoint / "model.safetensors", device=str(model.device))
    expected = model.state_dict().keys()
    missing, unexpected = sorted(expected - weights.keys()), sorted(weights.keys() - expected)
    if missing or unexpected:
        raise ValueError(f"checkpoint {checkpoint} weights: missing {missing}, unexpected {unexpected}")
    model.load_state_dict(weights)
    return state


def train_tts_head(
    model: TTSHeadModel,
    examples: Sequence[SpeechExample],
    recipe: TrainingRecipe,
    *,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainingLog:
    """Train ``model`` (in place) on ``examples`` following ``recipe``, resuming from ``recipe.output_dir`` if it
    holds a checkpoint of the same recipe (only ``output_dir``'s spelling, ``steps``, ``progress`` and ``keep_last``
    may differ) and the same model configuration.

    Args:
        model: the TTS head; its weights are replaced by the checkpoint's when resuming.
        examples: ``(text ids, latents (frames, latent_dim))`` pairs.
        recipe: the run's settings.
        callback: called with ``(step, losses)`` after every step (and its checkpoint), e.g. for logging.

    Returns:
        The log of the whole run (a resumed run's log includes the steps before the interruption).
    """
    data = _check_examples(examples, model.config.latent_dim, model.config.vocab_size)
    device = model.device
    optimizer = torch.optim.AdamW(
        model.parameters(), recipe.learning_rate, betas=recipe.betas, weight_decay=recipe.weight_decay
    )
    batches = torch.Generator().manual_seed(recipe.seed)
    noise = torch.Generator(device).manual_seed(recipe.seed + 1)
    log = TrainingLog()
    step = 0
    recipe.output_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = _checkpoints(recipe.output_dir)
    if checkpoints:
        state = _resume(model, checkpoints[-1], recipe)
        optimizer.load_state_dict(state["optimizer"])
        batches.set_state(state["batches"])
        noise.set_state(state["noise"])
        log = TrainingLog(state["losses"])
        step = state["step"]
    model.train()
    bar = tqdm(total=recipe.steps, initial=step, disable=not recipe.progress, desc="train tts head")
    while step < recipe.steps:
        picked = torch.randint(len(data), (recipe.batch_size,), generator=batches).tolist()
        batch = {k: v.to(device) for k, v in collate_examples([data[i] for i in picked]).items()}
        output = model(**batch, generator=noise)
        optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
        optimizer.step()
        step += 1
        losses = {"total": output.loss.item(), "flow": output.flow_loss.item(), "stop": output.stop_loss.item()}
        if output.regression_loss is not None:
            losses["regression"] = output.regression_loss.item()
        for name, value in losses.items():
            log.losses.setdefault(name, []).append(value)
        if step % recipe.checkpoint_every == 0 or step == recipe.steps:
            _save_checkpoint(recipe, step, model, optimizer, batches, noise, log)
        bar.update(1)
        bar.set_postfix(flow=f"{losses['flow']:.3f}", stop=f"{losses['stop']:.3f}")
        if callback is not None:
            callback(step, losses)
    bar.close()
    model.eval()
    return log


def _save_checkpoint(
    recipe: TrainingRecipe,
    step: int,
    model: TTSHeadModel,
    optimizer: torch.optim.Optimizer,
    batches: torch.Generator,
    noise: torch.Generator,
    log: TrainingLog,
) -> None:
    final = recipe.output_dir / f"checkpoint-{step:07d}"
    partial = recipe.output_dir / f".partial-checkpoint-{step:07d}"
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    torch.save(
        {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "batches": batches.get_state(),
            "noise": noise.get_state(),
            "losses": log.losses,
        },
        partial / "trainer_state.pt",
    )
    (partial / "recipe.json").write_text(recipe.model_dump_json(indent=2))
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)  # a run killed while saving leaves only a .partial folder, which resuming ignores
    if recipe.keep_last is not None:
        for old in _checkpoints(recipe.output_dir)[: -recipe.keep_last]:
            shutil.rmtree(old)
