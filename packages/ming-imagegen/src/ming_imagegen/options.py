"""Call-time options of the pipeline (DESIGN conventions: pydantic at the API edge; paper §2.3 editing guidance)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["ImageGenerationOptions"]


class ImageGenerationOptions(BaseModel):
    """How :class:`~ming_imagegen.MingImagePipeline` samples.

    Attributes:
        height: output height in pixels, a multiple of the pipeline's ``size_multiple``; None: the reference image's
            height when editing, else the pipeline's default size. Give both ``height`` and ``width`` or neither.
        width: output width, likewise.
        aspect_ratio: instead of ``height``/``width``: the wanted ``width / height``, as a number or ``"W:H"``
            (``"16:9"``); the output takes the aspect-ratio bucket nearest to it at the pipeline's default resolution.
        num_inference_steps: Euler steps of ``FlowMatchEulerDiscreteScheduler`` (30). 0 is allowed for editing only
            (the output is then the reference's reconstruction).
        guidance_scale: text guidance: classifier-free scale in generation, and ``s_txt`` in editing unless
            ``edit_guidance_scale`` is given (5).
        edit_guidance_scale: ``s_txt`` of the editing guidance when it should differ from ``guidance_scale`` (None:
            the same; a trained checkpoint may keep its own, see ``MingImagePipeline.default_options``).
        image_guidance_scale: ``s_img`` of the editing guidance ``u + s_img·(c_img − u) + s_txt·(c_full − c_img)`` (2).
        strength: editing only: how much noise the reference latents start from (1 = pure noise).
        seed: sampling seed; image ``i`` of a call draws its noise from ``seed + i``. None: drawn from torch's RNG.
        num_images_per_prompt: images per prompt.
        batched_guidance: run all guidance branches in one forward (True) or one forward per branch.
        output_type: ``"pil"``, ``"np"`` (``(B, H, W, 3)`` in [0, 1]), ``"pt"`` (``(B, 3, H, W)`` in [0, 1]) or
            ``"latent"``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    height: int | None = Field(None, gt=0)
    width: int | None = Field(None, gt=0)
    aspect_ratio: float | None = Field(None, gt=0.1, lt=10)
    num_inference_steps: int = Field(30, ge=0, le=1000)
    guidance_scale: float = Field(5.0, ge=0, le=100)
    edit_guidance_scale: float | None = Field(None, ge=0, le=100)
    image_guidance_scale: float = Field(2.0, ge=0, le=100)
    strength: float = Field(1.0, gt=0, le=1)
    seed: int | None = Field(None, ge=0)
    num_images_per_prompt: int = Field(1, ge=1, le=64)
    batched_guidance: bool = True
    output_type: Literal["pil", "np", "pt", "latent"] = "pil"

    @property
    def edit_text_scale(self) -> float:
        """``s_txt`` of the editing guidance: ``edit_guidance_scale``, else ``guidance_scale``."""
        return self.guidance_scale if self.edit_guidance_scale is None else self.edit_guidance_scale

    @field_validator("aspect_ratio", mode="before")
    @classmethod
    def _ratio(cls, value: object) -> object:
        if isinstance(value, str):
            parts = value.split(":")
            try:
                width, height = (float(p) for p in parts)
            except ValueError:
                raise ValueError(f"aspect_ratio must be a number or 'W:H' like '16:9', got {value!r}") from None
            if width <= 0 or height <= 0:
                raise ValueError(f"aspect_ratio sides must be positive, got {value!r}")
            return width / height
        return value

    @model_validator(mode="after")
    def _both_sides(self) -> ImageGenerationOptions:
        if (self.height is None) != (self.width is None):
            raise ValueError("give both height and width, or neither")
        if self.aspect_ratio is not None and self.height is not None:
            raise ValueError("give height/width or aspect_ratio, not both")
        return self
