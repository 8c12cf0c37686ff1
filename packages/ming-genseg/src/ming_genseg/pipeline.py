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
    """An instruction-following image editor, as ming-imagegen's editing pipeline will provide it."""

    def edit(self, image: Image.Image, prompt: str) -> Image.Image:
        """Edit ``image`` as ``prompt`` says.

        Args:
            image: the reference image (PIL, mode RGB). The editor must not modify it in place.
            prompt: the instruction, e.g. ``"color the banana purple"``.

        Returns:
            The edited image, PIL mode RGB, the same size as ``image`` (an editor that works at bucketed sizes
            resizes its output back).
        """
        ...


@dataclass(frozen=True, eq=False)
class Segmentation:
    """The result of :func:`segment`.

    Attributes:
        mask: ``(H, W)`` bool mask of the referred object.
        edited: the editor's output the mask was read from.
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
    image: Image.Image, expression: str, pipeline: EditingPipeline, options: SegmentationOptions | None = None
) -> Segmentation:
    """Segment the object ``expression`` refers to by having ``pipeline`` paint it and extracting the paint.

    Steps: validate the request (:class:`~ming_genseg.SegmentationRequest`), pick the edit colour and prompt
    (:mod:`ming_genseg.prompts`), call ``pipeline.edit(image, prompt)``, then
    :func:`~ming_genseg.extract_mask` between the image and the edit.

    Raises:
        pydantic.ValidationError: bad ``image``, ``expression`` or ``options`` (named in the error).
        TypeError: ``pipeline`` has no ``edit`` method, or it returned something other than a PIL image.
        ValueError: the pipeline's output is not mode RGB or not the input's size.
    """
    request = SegmentationRequest(image=image, expression=expression, options=options or SegmentationOptions())
    if not isinstance(pipeline, EditingPipeline):
        raise TypeError(f"pipeline must have an edit(image, prompt) method (EditingPipeline), got {type(pipeline)}")
    instruction = request.edit()
    # A copy, so an editor that draws on its input cannot also change the reference the mask is measured against.
    edited = pipeline.edit(request.image.copy(), instruction.prompt)
    if not isinstance(edited, Image.Image):
        raise TypeError(f"pipeline.edit returned {type(edited).__name__}, not a PIL image")
    if edited.mode != "RGB" or edited.size != request.image.size:
        raise ValueError(
            f"pipeline.edit returned a {edited.mode} {edited.width}x{edited.height} image for an RGB "
            f"{request.image.width}x{request.image.height} input; it must return RGB at the input's size"
        )
    mask = extract_mask(request.image, edited, instruction.rgb, request.options.mask)
    return Segmentation(mask, edited, instruction.prompt, instruction.color, instruction.rgb)
