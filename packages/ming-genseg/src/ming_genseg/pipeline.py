"""Referring segmentation through an image editor (paper §2.3): ask for a colouring edit, read the mask back.

:class:`EditingPipeline` is the interface ming-genseg needs from an editor. ming-imagegen's editing pipeline will
provide it (one reference image + an instruction → the edited image); until then any object with an ``edit``
method of this shape works, e.g. a wrapper around another editing model, or a fake one in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from .colors import RGB, EditColorName
from .extraction import extract_mask
from .prompts import SegmentationOptions, SegmentationRequest

__all__ = ["EditingPipeline", "Segmentation", "segment"]


@runtime_checkable
class EditingPipeline(Protocol):
    """An instruction-following image editor, as `ming_imagegen.MingImagePipeline.edit` and `MingOmni.edit` provide."""

    def edit(self, image: Image.Image, prompt: str, *, seed: int | None = None) -> Image.Image:
        """Edit ``image`` as ``prompt`` says.

        Args:
            image: the reference image (PIL, mode RGB). The editor must not modify it in place.
            prompt: the instruction, e.g. ``"color the banana purple"``.
            seed: seed of the editor's sampling, for a reproducible edit; None: the editor's own choice.

        Returns:
            The edited image, PIL mode RGB. It may come back at another size (an editor working at bucketed sizes):
            :func:`~ming_genseg.segment` resizes it to the input's size.
        """
        ...


@dataclass(frozen=True, eq=False)
class Segmentation:
    """The result of :func:`segment`.

    Attributes:
        mask: ``(H, W)`` bool mask of the referred object.
        edited: the editor's output the mask was read from (at the input's size).
        prompt: the instruction the editor got.
        color: the colour it was asked to paint.
        rgb: that colour's sRGB value.
    """

    mask: np.ndarray = field(repr=False)
    edited: Image.Image = field(repr=False)
    prompt: str
    color: EditColorName
    rgb: RGB


def segment(
    image: Image.Image,
    expression: str,
    pipeline: EditingPipeline,
    options: SegmentationOptions | None = None,
    *,
    seed: int | None = None,
) -> Segmentation:
    """Segment the object ``expression`` refers to by having ``pipeline`` paint it and extracting the paint.

    Steps: validate the request (:class:`~ming_genseg.SegmentationRequest`), pick the edit colour and prompt
    (:mod:`ming_genseg.prompts`), call ``pipeline.edit(image, prompt, seed=seed)``, resize an edit of another size
    back to the input's size (bilinear: a perfect 300×200 edit returned at 64×64 still gives IoU ≥ 0.99 for an
    ellipse or rectangle, 0.98 for a sharp star), then :func:`~ming_genseg.extract_mask` between the image and the edit.

    Raises:
        pydantic.ValidationError: bad ``image``, ``expression`` or ``options`` (named in the error), including no
            palette colour left once the colours the expression names are set aside.
        TypeError: ``pipeline`` has no callable ``edit``, or it returned something other than a PIL image.
        ValueError: the pipeline's output is not mode RGB.
    """
    request = SegmentationRequest(image=image, expression=expression, options=options or SegmentationOptions())
    # isinstance with a runtime Protocol only checks that the attribute exists.
    if not isinstance(pipeline, EditingPipeline) or not callable(pipeline.edit):
        raise TypeError(
            f"pipeline must have an edit(image, prompt, *, seed) method (EditingPipeline), got {type(pipeline)}"
        )
    instruction = request.edit()
    # A copy, so an editor that draws on its input cannot also change the reference the mask is measured against.
    edited = pipeline.edit(request.image.copy(), instruction.prompt, seed=seed)
    if not isinstance(edited, Image.Image):
        raise TypeError(f"pipeline.edit returned {type(edited).__name__}, not a PIL image")
    if edited.mode != "RGB":
        raise ValueError(f"pipeline.edit returned a {edited.mode} image; it must return RGB")
    if edited.size != request.image.size:
        edited = edited.resize(request.image.size, Image.Resampling.BILINEAR)
    mask = extract_mask(request.image, edited, instruction.rgb, request.options.mask)
    return Segmentation(mask, edited, instruction.prompt, instruction.color, instruction.rgb)
