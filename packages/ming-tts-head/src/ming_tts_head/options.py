"""What a user passes at generation time (paper §2.2's sampler settings as defaults): :class:`GenerationOptions` and
:class:`SpeechRequest`. Bad values raise a pydantic ``ValidationError`` naming the field."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ._inputs import check_clip_latents
from .schedule import EPSS_TIMESTEPS

__all__ = ["GenerationOptions", "SpeechRequest"]


class GenerationOptions(BaseModel):
    """Sampler settings; the defaults are the paper's (10 EPSS Euler steps, CFG 2, stop at p > 0.5 after 10 patches)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: Literal["epss", "uniform"] = Field("epss", description="Flow-time schedule of the Euler sampler.")
    steps: int = Field(10, ge=1, description="Euler steps per patch (EPSS: 5, 6, 7, 10, 12 or 16).")
    cfg_scale: float = Field(2.0, ge=0, description="Classifier-free guidance scale (1: conditional only).")
    sway_coefficient: float | None = Field(
        None, ge=-1, le=1, description="Sway-sampling coefficient (F5-TTS uses -1); None: no sway."
    )
    min_patches: int = Field(10, ge=0, description="Patches generated before the stop head may end generation.")
    max_patches: int = Field(500, ge=1, description="Hard limit on generated patches (guards against never stopping).")
    stop_threshold: float = Field(0.5, gt=0, lt=1, description="Stop when the stop head's probability exceeds this.")
    seed: int = Field(
        0,
        ge=0,
        description="Seed of the noise: every text of a batch gets its own generator seeded with it (so its noise "
        "does not depend on the batch) unless its SpeechRequest.seed overrides it.",
    )
    use_cache: bool = Field(True, description="Keep the backbone's KV cache across steps (False: recompute).")

    @field_validator("steps")
    @classmethod
    def _steps_fit_schedule(cls, steps: int, info: ValidationInfo) -> int:
        if info.data.get("schedule") == "epss" and steps not in EPSS_TIMESTEPS:
            raise ValueError(f"EPSS is defined for {sorted(EPSS_TIMESTEPS)} steps; use schedule='uniform' otherwise")
        return steps

    @model_validator(mode="after")
    def _limits(self) -> GenerationOptions:
        if self.max_patches < self.min_patches:
            raise ValueError(f"max_patches ({self.max_patches}) must be at least min_patches ({self.min_patches})")
        return self


class SpeechRequest(BaseModel):
    """One text to speak, optionally continuing a voice prompt (voice cloning).

    ``text_ids`` holds the backbone's token ids of the whole text (with a prompt: the prompt's transcript followed
    by the new text). ``prompt_latents`` are latents of the prompt speech, ``(frames, latent_dim)`` or
    ``(1, frames, latent_dim)``; only whole patches are used, the leading ``frames % patch_size`` frames are dropped.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    text_ids: list[Annotated[int, Field(ge=0)]] = Field(min_length=1, description="Token ids of the text.")
    prompt_latents: torch.Tensor | None = Field(None, description="Latents of the voice prompt, or None.")
    seed: int | None = Field(None, ge=0, description="Seed of this text's noise (None: GenerationOptions.seed).")

    @field_validator("text_ids", mode="before")
    @classmethod
    def _from_tensor(cls, value):
        return value.tolist() if isinstance(value, torch.Tensor) else value

    @field_validator("prompt_latents")
    @classmethod
    def _check_prompt(cls, value: torch.Tensor | None) -> torch.Tensor | None:
        return None if value is None else check_clip_latents(value, "prompt_latents")
