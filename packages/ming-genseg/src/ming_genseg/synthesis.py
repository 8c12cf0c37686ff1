"""Training pairs: segmentation data becomes editing data (paper §2.3 and §3: "the original image serves as the
reference, and binary masks highlight target regions with specified colors to create edited images").

From ``(image, mask, expression)``, :func:`synthesize_pair` makes the instruction (same wording and colour rule as
:func:`~ming_genseg.segment`) and the target image: the object recoloured, everything else untouched, the edge
anti-aliased.

**Edge.** Each pixel is blended ``α·c + (1 − α)·r`` with ``α = clip(½ + s / feather, 0, 1)``, where ``s`` is the
signed distance from the pixel centre to the mask boundary (scipy's exact Euclidean distance transform: positive
inside, ``distance to the nearest outside pixel − ½``; negative outside, likewise). So the colour ramps over about
``feather`` pixels across the boundary, every mask pixel has ``α > ½`` and every other pixel ``α < ½``. Pixels
whose centre is at least ``(feather + 1) / 2`` from every mask pixel centre keep their exact values. That is the
contract :func:`~ming_genseg.extract_mask` reads back exactly (its ``radius = ½`` rule), so pair → extraction is a
round trip. The pixel centres next to the boundary are half a pixel from it, so ``feather ≤ 1`` gives a hard edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
from PIL import Image
from pydantic import Field
from scipy import ndimage

from ._validation import BoolMask, Expression, RGBImage, checked, field_error
from .colors import RGB, ColorSpec, EditColorName
from .prompts import EditOptions, _instruction

__all__ = ["EditingPair", "PairOptions", "recolor", "synthesize_pair"]

# Up to 8: wider ramps leave too little margin at the ½ crossing for 8-bit rounding at low contrast.
_Feather = Annotated[float, Field(ge=0.0, le=8.0)]
"""Width of the anti-aliased edge ramp in pixels (0–8); up to 1 is a hard edge."""


class PairOptions(EditOptions):
    """Options of :func:`synthesize_pair`: the edit's wording and colour, and the edge width."""

    feather: _Feather = Field(2.0, description="Width of the anti-aliased edge ramp, pixels; up to 1: hard edge.")


@dataclass(frozen=True, eq=False)
class EditingPair:
    """One editing sample for an image-editing trainer.

    Attributes:
        reference: the input image.
        edited: the target image (object recoloured).
        prompt: the instruction, e.g. ``"color the banana purple"``.
        expression: the referring expression it came from.
        mask: ``(H, W)`` bool, the object (the segmentation label).
        color: the colour name painted.
        rgb: its sRGB value.
    """

    reference: Image.Image = field(repr=False)
    edited: Image.Image = field(repr=False)
    prompt: str
    expression: str
    mask: np.ndarray = field(repr=False)
    color: EditColorName
    rgb: RGB


def _check_mask_size(title: str, image: Image.Image, mask: np.ndarray) -> None:
    if mask.shape != (image.height, image.width):
        message = f"mask has shape {mask.shape} but the image is {image.height}x{image.width} (height x width)"
        raise field_error(title, "mask", message, mask)


def _edge_alpha(mask: np.ndarray, feather: float) -> np.ndarray:
    if feather == 0 or mask.all() or not mask.any():
        return mask.astype(np.float32)
    signed = np.where(
        mask, ndimage.distance_transform_edt(mask) - 0.5, 0.5 - ndimage.distance_transform_edt(~mask)
    ).astype(np.float32)
    return np.clip(0.5 + signed / feather, 0.0, 1.0)


def _paint(image: Image.Image, mask: np.ndarray, rgb: RGB, feather: float) -> Image.Image:
    alpha = _edge_alpha(mask, feather)[..., None]
    pixels = np.asarray(image, dtype=np.float32)
    blended = alpha * np.asarray(rgb, dtype=np.float32) + (1.0 - alpha) * pixels
    return Image.fromarray(np.rint(blended).astype(np.uint8), "RGB")


@checked
def recolor(image: RGBImage, mask: BoolMask, color: ColorSpec, feather: _Feather = 2.0) -> Image.Image:
    """``image`` with the pixels of ``mask`` painted ``color`` (a name of :data:`~ming_genseg.NAMED_COLORS` or an
    ``(r, g, b)`` triple), the edge anti-aliased over ``feather`` pixels (module docstring).

    Raises:
        pydantic.ValidationError: a bad argument, named in the error (e.g. ``mask`` not the image's size).
    """
    _check_mask_size("recolor", image, mask)
    return _paint(image, mask, color, feather)


@checked
def synthesize_pair(
    image: RGBImage, mask: BoolMask, expression: Expression, options: PairOptions | None = None
) -> EditingPair:
    """The editing sample for segmentation sample ``(image, mask, expression)``.

    The colour is ``options.color`` or the contrast rule of :mod:`ming_genseg.colors` (the same choice
    :func:`~ming_genseg.segment` makes for that image and expression), the prompt follows ``options.template``.

    Raises:
        pydantic.ValidationError: a bad argument, named in the error (non-RGB image, ``mask`` not boolean or not the
            image's size, blank ``expression``, no palette colour left at ``options`` once the colours the
            expression names are set aside).
    """
    options = options or PairOptions()
    _check_mask_size("synthesize_pair", image, mask)
    instruction = _instruction("synthesize_pair", image, expression, options)
    edited = _paint(image, mask, instruction.rgb, options.feather)
    return EditingPair(image, edited, instruction.prompt, expression, mask, instruction.color, instruction.rgb)
