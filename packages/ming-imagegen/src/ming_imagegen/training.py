"""Flow-matching training of the generator with the LLM frozen (paper §2.4: "pre-train a diffusion-based image
generator using a flow matching objective, while keeping the perception MLLM frozen", then editing).

Samples are text-to-image pairs (:class:`GenerationSample`) and editing triples (:class:`EditingSample`), mixed freely
in one run. Each step: a batch of samples (a seeded permutation per epoch), flow times from a logit-normal (SD3) or
uniform law, ``x_t = (1 − σ)·x_0 + σ·ε``, target velocity ``ε − x_0`` (diffusers' flow-matching convention), the text
condition dropped with probability ``text_dropout`` and each reference with ``reference_dropout`` so that both guidance
rules have their unconditional branches. Trained: the DiT, the queries and connector, the glyph mapper and the identity
encoder; frozen: the LLM, the ByT5 encoder and the VAE (whose latents are computed once).

Checkpoints (``checkpoint-<step>/``: each trained module's ``save_pretrained`` safetensors, ``trainer_state.pt`` with
the optimizer, learning-rate schedule, random-generator state and losses, ``recipe.json``) are written every
``checkpoint_every`` steps; calling the trainer again with the same recipe resumes from the latest one and continues
the identical run. Sample grids go to ``samples/step-<step>.png``. With ``ema_decay`` the trainer also keeps the
moving average of the trained weights (in ``trainer_state.pt``); the grids and the finished pipeline use it.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers.training_utils import EMAModel
from diffusers.utils import make_image_grid
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from safetensors.torch import load_file
from tqdm.auto import tqdm

from .pipeline import Condition, MingImagePipeline

__all__ = [
    "EditingSample",
    "GenerationSample",
    "TrainingLog",
    "TrainingRecipe",
    "flow_matching_pair",
    "identity_loss",
    "predicted_clean",
    "pretrain_language_model",
    "train_image_generator",
]

_TRAINED = ("transformer", "conditioner", "glyph_mapper", "identity_encoder")
_FROZEN = ("language_model", "glyph_encoder", "vae")
# Recipe fields that may change between an interrupted run and its resumption without changing the run itself.
_RESUMABLE_CHANGES = {"output_dir", "steps", "progress", "keep_last", "sample_every", "sample_prompts", "sample_edits"}


class GenerationSample(BaseModel):
    """A text-to-image training pair.

    Attributes:
        prompt: the prompt.
        image: the target image (RGB; its size must be a multiple of the pipeline's ``size_multiple``).
        identity: optional subject crop whose identity tokens join the condition.
        identity_mask: optional region of the subject in ``image`` (a mask image of ``image``'s size, nonzero =
            subject; needs ``identity``): where the opt-in identity loss (:func:`identity_loss`) compares the
            prediction with the target.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    prompt: str = Field(min_length=1)
    image: PIL.Image.Image
    identity: PIL.Image.Image | None = None
    identity_mask: PIL.Image.Image | None = None

    @model_validator(mode="after")
    def _mask_fits(self) -> GenerationSample:
        if self.identity_mask is None:
            return self
        if self.identity is None:
            raise ValueError("identity_mask needs an identity crop")
        if self.identity_mask.size != self.image.size:
            raise ValueError(f"identity_mask size {self.identity_mask.size} differs from the image's {self.image.size}")
        if not np.asarray(self.identity_mask.convert("L")).any():
            raise ValueError("identity_mask is empty")
        return self


class EditingSample(BaseModel):
    """An editing triple: reference image(s), instruction, edited target.

    Attributes:
        references: the reference image(s) (one image or a list), same size as ``target``.
        instruction: the edit instruction, e.g. ``"make the circle green"``.
        target: the edited image.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    references: list[PIL.Image.Image] = Field(min_length=1)
    instruction: str = Field(min_length=1)
    target: PIL.Image.Image

    @field_validator("references", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, PIL.Image.Image) else value


class TrainingRecipe(BaseModel):
    """Everything :func:`train_image_generator` needs besides the pipeline and the samples."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    output_dir: Path = Field(description="Checkpoints and sample grids go here; an existing run is resumed.")
    steps: int = Field(gt=0, description="Total optimizer steps.")
    batch_size: int = Field(16, gt=0, description="Samples per step.")
    learning_rate: float = Field(3e-4, gt=0, description="AdamW learning rate (after warm-up).")
    conditioner_learning_rate: float | None = Field(
        None,
        ge=0,
        description="Learning rate of the queries and connector (None: learning_rate; 0: frozen). Lower than the "
        "DiT's, it keeps them from collapsing every prompt onto one condition before the DiT reads the condition.",
    )
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    warmup_steps: int = Field(0, ge=0, description="Linear learning-rate warm-up steps.")
    decay_steps: int | None = Field(
        None,
        gt=0,
        description="Cosine decay of the learning rate from the end of warm-up to 0 at this step (None: constant). "
        "Separate from steps, so that a run trained in chunks of steps follows one schedule.",
    )
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient-norm clipping.")
    ema_decay: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="Keep an exponential moving average of the trained weights with this decay (diffusers' "
        "EMAModel, decay warming up as (1 + step) / (10 + step)); sample grids and the finished pipeline use the "
        "averaged weights. None: the last weights.",
    )
    text_dropout: float = Field(0.1, ge=0, le=1, description="Probability of replacing a condition by the null token.")
    reference_dropout: float = Field(0.1, ge=0, le=1, description="Probability of dropping each reference image.")
    timestep_sampling: Literal["logit_normal", "uniform"] = Field("logit_normal", description="Law of the flow time σ.")
    logit_mean: float = Field(
        0.0,
        ge=-3,
        le=3,
        description="Mean of the logit-normal law of σ (> 0: more steps at high noise, where the "
        "layout and colours are decided).",
    )
    checkpoint_every: int = Field(500, gt=0, description="Steps between checkpoints (the last step always saves).")
    keep_last: int | None = Field(2, gt=0, description="Keep only this many latest checkpoints (None: all).")
    sample_every: int | None = Field(None, gt=0, description="Steps between sample grids (None: only at the end).")
    sample_prompts: list[str] = Field(default_factory=list, description="Prompts drawn in each sample grid.")
    sample_edits: list[EditingSample] = Field(
        default_factory=list, description="Edits drawn in each grid as rows reference | edit | target."
    )
    sample_steps: int = Field(20, gt=0, description="Sampling steps of the grids.")
    seed: int = Field(0, ge=0, description="Seed of the batch order, flow times, noise and dropout.")
    progress: bool = Field(True, description="Show a tqdm progress bar.")
    save_pipeline: bool = Field(True, description="Save the whole pipeline to output_dir/pipeline at the end.")
    identity_global_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of the identity loss's global term (samples with an identity_mask; 0: off): 1 − cosine "
        "of the pooled identity features of the subject region, predicted clean image vs target (identity_loss).",
    )
    identity_pixel_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of the identity loss's local term (0: off): mean absolute pixel error of the decoded "
        "predicted clean image inside the subject region.",
    )


@dataclass
class TrainingLog:
    """Per-step training losses (a resumed run's log includes the steps before the interruption)."""

    losses: list[float] = field(default_factory=list)
    resumed_from: int | None = None


def flow_matching_pair(
    latents: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_σ, v)`` with ``x_σ = (1 − σ)·x_0 + σ·ε`` and ``v = ε − x_0``: what ``FlowMatchEulerDiscreteScheduler``
    integrates (``x ← x + (σ_next − σ)·v``). ``sigmas``: ``(B,)``."""
    s = sigmas.view(-1, *([1] * (latents.dim() - 1)))
    return (1 - s) * latents + s * noise, noise - latents


def predicted_clean(transformer: Any, x_t: torch.Tensor, sigmas: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
    """The clean latents ``x̂₀`` the DiT's velocity output implies at flow time ``σ``: ``x_σ − σ·v`` (with σ floored
    at ``min_sigma`` for ``prediction_type="sample"``, which is how that head turned ``x̂₀`` into ``v``)."""
    s = sigmas.view(-1, *([1] * (x_t.dim() - 1))).to(x_t.dtype)
    if transformer.config.prediction_type == "sample":
        s = s.clamp(min=transformer.config.min_sigma)
    return x_t - s * velocity


def identity_loss(
    pipeline: MingImagePipeline, predicted: torch.Tensor, target: torch.Tensor, masks: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The composite identity loss of paper §2.3 ("global semantic and local pixel"; no formula published), per sample.

    Global: the subject's bounding box (from ``masks``) is cut from the predicted and the target clean latents,
    resized to the identity encoder's crop size, encoded by the pipeline's :class:`~ming_imagegen.IdentityEncoder`
    and mean-pooled over its tokens; the term is ``1 − cos`` of the two pooled vectors. The encoder serves as a fixed
    yardstick here (its weights are detached, so this term cannot be lowered by collapsing the encoder); it still
    learns from the loss through the identity tokens that condition the prediction. Local: the mean absolute error
    of the decoded predicted image against the decoded target, over the subject's pixels.

    Args:
        pipeline: a pipeline with an ``identity_encoder``.
        predicted: ``(B, C, h, w)`` predicted clean latents (:func:`predicted_clean`).
        target: ``(B, C, h, w)`` the target latents.
        masks: ``(B, H, W)`` bool pixel masks of the subject in the target image (none empty).

    Returns:
        ``(global_term, local_term)``, each ``(B,)``; both 0 where the prediction equals the target.
    """
    encoder = pipeline.identity_encoder
    if encoder is None:
        raise ValueError("identity_loss needs a pipeline with an identity_encoder")
    factor = pipeline.vae_scale_factor
    if masks.shape[0] != predicted.shape[0] or masks.shape[-2:] != tuple(s * factor for s in predicted.shape[-2:]):
        raise ValueError(f"masks {tuple(masks.shape)} do not fit latents {tuple(predicted.shape)} at factor {factor}")
    side = max(encoder.config.grid, encoder.config.crop_size // factor)
    weights = {name: p.detach() for name, p in encoder.named_parameters()}
    pooled = []
    for pred, tgt, mask in zip(predicted, target, masks, strict=True):
        rows, cols = torch.nonzero(mask, as_tuple=True)
        if rows.numel() == 0:
            raise ValueError("a subject mask is empty")
        top, left = int(rows.min()) // factor, int(cols.min()) // factor
        bottom, right = int(rows.max()) // factor + 1, int(cols.max()) // factor + 1
        box = torch.stack([pred, tgt])[:, :, top:bottom, left:right]
        box = F.interpolate(box.to(encoder.dtype), size=(side, side), mode="bilinear", align_corners=False)
        pooled.append(torch.func.functional_call(encoder, weights, (box,)).mean(1))
    features = torch.stack(pooled)  # (B, 2, condition_dim)
    global_term = 1 - F.cosine_similarity(features[:, 0].float(), features[:, 1].float(), dim=-1)
    with torch.no_grad():
        target_pixels = pipeline.decode_latents(target)
    error = (pipeline.decode_latents(predicted) - target_pixels).abs().float().mean(1)  # (B, H, W)
    weight = masks.to(error.dtype)
    return global_term, (error * weight).sum((1, 2)) / weight.sum((1, 2))


@dataclass
class _Data:
    prompts: list[str]
    targets: torch.Tensor  # (N, C, h, w)
    references: torch.Tensor | None  # (N, R, C, h, w)
    reference_mask: torch.Tensor | None  # (N, R)
    identities: list[PIL.Image.Image | None]
    identity_masks: list[torch.Tensor | None]  # (H, W) bool subject masks


def _encode_samples(pipeline: MingImagePipeline, samples: Sequence[GenerationSample | EditingSample]) -> _Data:
    if len(samples) == 0:
        raise ValueError("samples is empty")
    targets, prompts, refs, identities, masks = [], [], [], [], []
    for i, s in enumerate(samples):
        if isinstance(s, GenerationSample):
            targets.append(s.image)
            prompts.append(s.prompt)
            refs.append([])
            identities.append(s.identity)
            mask = None if s.identity_mask is None else np.asarray(s.identity_mask.convert("L")) > 0
            masks.append(None if mask is None else torch.from_numpy(mask))
        elif isinstance(s, EditingSample):
            targets.append(s.target)
            prompts.append(s.instruction)
            refs.append(s.references)
            identities.append(None)
            masks.append(None)
            if any(r.size != s.target.size for r in s.references):
                raise ValueError(f"samples[{i}]: references must have the target's size {s.target.size}")
        else:
            raise TypeError(f"samples[{i}] is a {type(s).__name__}, not a GenerationSample or EditingSample")
    sizes = {im.size for im in targets}
    if len(sizes) != 1:
        raise ValueError(f"all training images must share one size, got {sorted(sizes)}")
    w, h = sizes.pop()
    pipeline._check_size(h, w, "training image")
    if any(x is not None for x in identities) and pipeline.identity_encoder is None:
        raise ValueError("samples have identity crops but the pipeline has no identity_encoder")
    max_refs = max(len(r) for r in refs)
    if max_refs > pipeline.transformer.config.max_references:
        raise ValueError(
            f"a sample has {max_refs} references; max_references is {pipeline.transformer.config.max_references}"
        )
    with torch.no_grad():
        latents = torch.cat([pipeline.encode_images(targets[i : i + 64]) for i in range(0, len(targets), 64)])
        references = mask = None
        if max_refs:
            flat = [im for r in refs for im in r]
            encoded = torch.cat([pipeline.encode_images(flat[i : i + 64]) for i in range(0, len(flat), 64)])
            references = latents.new_zeros(len(samples), max_refs, *latents.shape[1:])
            mask = torch.zeros(len(samples), max_refs, dtype=torch.bool, device=latents.device)
            k = 0
            for i, r in enumerate(refs):
                references[i, : len(r)] = encoded[k : k + len(r)]
                mask[i, : len(r)] = True
                k += len(r)
    return _Data(prompts, latents, references, mask, identities, masks)


def _batch_indices(step: int, batch_size: int, n: int, seed: int) -> list[int]:
    """Indices of batch ``step``: consecutive slices of a stream of per-epoch permutations (a function of the step,
    so a resumed run draws the same batches)."""
    out, perms = [], {}
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, offset = divmod(position, n)
        if epoch not in perms:
            perms[epoch] = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
        out.append(int(perms[epoch][offset]))
    return out


def _condition(pipeline: MingImagePipeline, data: _Data, idx: list[int]) -> Condition:
    condition = pipeline.encode_condition([data.prompts[i] for i in idx])
    crops = [data.identities[i] for i in idx]
    if any(c is not None for c in crops):
        blank = next(c for c in crops if c is not None)
        ident = pipeline.identity_condition([c if c is not None else blank for c in crops])
        ident.mask &= torch.tensor([c is not None for c in crops], device=ident.mask.device)[:, None]
        condition = condition.cat(ident)
    return condition


def _loss(
    pipeline: MingImagePipeline, data: _Data, idx: list[int], recipe: TrainingRecipe, generator: torch.Generator
) -> torch.Tensor:
    device = pipeline._execution_device
    x0 = data.targets[idx]
    batch = len(idx)
    noise = torch.randn(x0.shape, generator=generator).to(device, x0.dtype)
    if recipe.timestep_sampling == "logit_normal":
        sigmas = torch.sigmoid(torch.randn(batch, generator=generator) + recipe.logit_mean)
    else:
        sigmas = torch.rand(batch, generator=generator)
    drop_text = torch.rand(batch, generator=generator) < recipe.text_dropout
    references = reference_mask = None
    if data.references is not None:
        keep = torch.rand(batch, data.references.shape[1], generator=generator) >= recipe.reference_dropout
        references, reference_mask = data.references[idx], data.reference_mask[idx] & keep.to(device)
    x_t, velocity = flow_matching_pair(x0, noise, sigmas.to(device, x0.dtype))
    condition = _condition(pipeline, data, idx)
    prediction = pipeline.transformer(
        x_t,
        (sigmas * 1000).to(device, x0.dtype),
        *condition.astuple(),
        references=references,
        reference_mask=reference_mask,
        drop_condition=drop_text.to(device),
    ).sample
    loss = F.mse_loss(prediction.float(), velocity.float())
    rows = [k for k, i in enumerate(idx) if data.identity_masks[i] is not None]
    if rows and (recipe.identity_global_weight or recipe.identity_pixel_weight):
        clean = predicted_clean(pipeline.transformer, x_t[rows], sigmas[rows].to(device), prediction[rows])
        masks = torch.stack([data.identity_masks[idx[k]] for k in rows]).to(device)
        global_term, local_term = identity_loss(pipeline, clean, x0[rows], masks)
        # Averaged over the batch, as the flow term: samples without a subject mask add 0.
        loss = (
            loss
            + (recipe.identity_global_weight * global_term.sum() + recipe.identity_pixel_weight * local_term.sum())
            / batch
        )
    return loss


def _lr_factor(step: int, recipe: TrainingRecipe) -> float:
    """Learning-rate multiplier of optimizer step ``step``: linear warm-up, then constant or a cosine to 0."""
    warmup, decay = recipe.warmup_steps, recipe.decay_steps
    if step < warmup:
        return (step + 1) / warmup
    if decay is None:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, decay - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _trained_modules(pipeline: MingImagePipeline) -> dict[str, torch.nn.Module]:
    return {name: getattr(pipeline, name) for name in _TRAINED if getattr(pipeline, name, None) is not None}


def _checkpoints(output_dir: Path) -> list[Path]:
    return sorted(output_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))


def _recipe_json(recipe: TrainingRecipe) -> dict:
    return recipe.model_dump(mode="json", exclude=_RESUMABLE_CHANGES)


def _save_checkpoint(path: Path, pipeline: MingImagePipeline, state: dict, recipe: TrainingRecipe) -> None:
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for name, module in _trained_modules(pipeline).items():
        module.save_pretrained(tmp / name)
    torch.save(state, tmp / "trainer_state.pt")
    (tmp / "recipe.json").write_text(json.dumps(_recipe_json(recipe), indent=2))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def _sample_grid(pipeline: MingImagePipeline, recipe: TrainingRecipe, step: int) -> None:
    rows = []
    if recipe.sample_prompts:
        rows.append(pipeline(recipe.sample_prompts, num_inference_steps=recipe.sample_steps, seed=recipe.seed).images)
    for edit in recipe.sample_edits:
        out = pipeline(
            edit.instruction,
            reference_images=edit.references,
            num_inference_steps=recipe.sample_steps,
            seed=recipe.seed,
        ).images[0]
        rows.append([edit.references[0], out, edit.target])
    if not rows:
        return
    cols = max(len(r) for r in rows)
    blank = PIL.Image.new("RGB", rows[0][0].size, "white")
    cells = [im.convert("RGB").resize(blank.size) for r in rows for im in [*r, *[blank] * (cols - len(r))]]
    (recipe.output_dir / "samples").mkdir(parents=True, exist_ok=True)
    make_image_grid(cells, rows=len(rows), cols=cols).save(recipe.output_dir / "samples" / f"step-{step:06d}.png")


def pretrain_language_model(
    language_model: torch.nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    steps: int = 600,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> list[float]:
    """Train a causal LM in place by next-token prediction on ``texts`` (e.g. the training prompts), then leave it in
    eval mode: the stand-in for the paper's *pretrained* MLLM, which the image training then keeps frozen. A random LM
    mixes the prompt's tokens into the query states almost uniformly, so the queries barely see which words came where.

    Args:
        language_model: a transformers causal LM (``labels=`` gives the loss).
        tokenizer: its tokenizer.
        texts: the corpus; batches of ``batch_size`` texts are drawn with replacement.
        steps: optimizer steps (AdamW, constant ``learning_rate``).
        seed: seed of the batch draws.

    Returns:
        The per-step losses.
    """
    if not texts:
        raise ValueError("texts is empty")
    device = next(language_model.parameters()).device
    language_model.requires_grad_(True).train()
    optimizer = torch.optim.AdamW(language_model.parameters(), lr=learning_rate, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        idx = torch.randint(len(texts), (batch_size,), generator=generator).tolist()
        batch = tokenizer([texts[i] for i in idx], padding=True, padding_side="right", return_tensors="pt")
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        loss = language_model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    language_model.requires_grad_(False).eval()
    return losses


def train_image_generator(
    pipeline: MingImagePipeline, samples: Sequence[GenerationSample | EditingSample], recipe: TrainingRecipe
) -> TrainingLog:
    """Train ``pipeline``'s generator in place on ``samples`` by flow matching, with the LLM frozen.

    Args:
        pipeline: the pipeline to train (e.g. :func:`~ming_imagegen.tiny_pipeline`); its trained modules are updated.
        samples: generation pairs and/or editing triples, all images of one size.
        recipe: optimisation, dropout, checkpoint and sampling settings.

    Returns:
        The per-step losses of the whole run.

    Raises:
        ValueError: empty or inconsistent samples, or a checkpoint in ``output_dir`` written by a different recipe.
    """
    recipe.output_dir.mkdir(parents=True, exist_ok=True)
    for name in _FROZEN:
        module = getattr(pipeline, name, None)
        if module is not None:
            module.requires_grad_(False).eval()
    trained = _trained_modules(pipeline)
    for m in trained.values():
        m.requires_grad_(True).train()
    if pipeline.glyph_encoder is None and pipeline.glyph_mapper is not None:
        pipeline.glyph_mapper.requires_grad_(False)
    conditioner_lr = recipe.conditioner_learning_rate
    conditioner_lr = recipe.learning_rate if conditioner_lr is None else conditioner_lr
    if conditioner_lr == 0:
        pipeline.conditioner.requires_grad_(False)
    groups = [
        {"params": [p for name, m in trained.items() if name != "conditioner" for p in m.parameters()]},
        {"params": list(pipeline.conditioner.parameters()), "lr": conditioner_lr},
    ]
    params = [p for g in groups for p in g["params"]]
    optimizer = torch.optim.AdamW(groups, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, recipe))
    # Parameters that do not train (a frozen conditioner) are copied as they are.
    ema = None if recipe.ema_decay is None else EMAModel(params, decay=recipe.ema_decay)
    generator = torch.Generator().manual_seed(recipe.seed)
    log = TrainingLog()
    start = 0
    checkpoints = _checkpoints(recipe.output_dir)
    if checkpoints:
        latest = checkpoints[-1]
        saved = json.loads((latest / "recipe.json").read_text())
        if saved != _recipe_json(recipe):
            changed = sorted(
                k for k in saved.keys() | _recipe_json(recipe).keys() if saved.get(k) != _recipe_json(recipe).get(k)
            )
            raise ValueError(f"{latest} was written by a different recipe (fields {changed}); use a new output_dir")
        for name, module in trained.items():
            module.load_state_dict(load_file(latest / name / "diffusion_pytorch_model.safetensors"), strict=True)
        state = torch.load(latest / "trainer_state.pt", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        start, log = state["step"], TrainingLog(list(state["losses"]), resumed_from=state["step"])

    data = _encode_samples(pipeline, samples)
    bar = tqdm(total=recipe.steps, initial=start, disable=not recipe.progress, desc="training")
    for step in range(start, recipe.steps):
        idx = _batch_indices(step, recipe.batch_size, len(samples), recipe.seed)
        loss = _loss(pipeline, data, idx, recipe, generator)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, recipe.max_grad_norm)
        optimizer.step()
        schedule.step()
        if ema is not None:
            ema.step(params)
        log.losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        done = step + 1
        if done % recipe.checkpoint_every == 0 or done == recipe.steps:
            state = {
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "generator": generator.get_state(),
                "step": done,
                "losses": log.losses,
            }
            if ema is not None:
                state["ema"] = ema.state_dict()
            _save_checkpoint(recipe.output_dir / f"checkpoint-{done:06d}", pipeline, state, recipe)
            if recipe.keep_last is not None:
                for old in _checkpoints(recipe.output_dir)[: -recipe.keep_last]:
                    shutil.rmtree(old)
        if recipe.sample_every and done % recipe.sample_every == 0 and done < recipe.steps:
            if ema is not None:
                ema.store(params)
                ema.copy_to(params)
            _sample_grid(pipeline, recipe, done)
            if ema is not None:
                ema.restore(params)
            for m in trained.values():
                m.train()
    bar.close()
    if ema is not None:  # the pipeline leaves with the averaged weights; a resumed call reloads the raw ones first
        ema.copy_to(params)
    if start < recipe.steps:
        _sample_grid(pipeline, recipe, recipe.steps)
    for m in trained.values():
        m.eval()
    if recipe.save_pipeline and start < recipe.steps:
        pipeline.save_pretrained(recipe.output_dir / "pipeline", safe_serialization=True)
    return log
