"""Read the segmentation mask back from a colouring edit (paper §2.3: the edit *is* the segmentation).

Given the reference image ``r``, the edited image ``e`` and the target colour ``c`` the edit was asked to paint,
all as sRGB vectors in 0–255:

**Per-pixel rule.** A pixel is recoloured when its edited colour lies within ``radius · ‖c − r‖`` of the target::

    ‖e − c‖ < radius · ‖c − r‖        and        ‖c − r‖ ≥ min_contrast

It combines both signals: distance to the target colour, measured against how far the pixel had to travel from its
reference colour. With the default ``radius = 0.5`` the ball lies entirely on the target's side of the half-way plane
between ``r`` and ``c``, so a counted pixel is closer to the target than to its original colour (it changed), and is
near the target rather than pushed towards some other colour. Why 0.5: an edge pixel blended as
``α·c + (1 − α)·r`` sits at ``(1 − α)·‖c − r‖`` from the target, so it counts exactly when ``α > ½`` — the same
half-coverage rule that rasterises a mask. A perfect recolouring with anti-aliased edges whose blend weight is above
½ inside the object and below ½ outside (what :func:`~ming_genseg.synthesize_pair` makes) therefore gives back the
exact mask, whatever the colours and image size. Pixels whose reference colour is within ``min_contrast`` (32) of the
target cannot show the edit (and a few levels of noise would flip them), so they count as not recoloured; small
patches of them inside an object come back with the hole filling below. An unchanged image gives an empty mask:
``e = r`` is never strictly inside the ball.

**Cleanup** (:func:`clean_mask`, scipy.ndimage), in this order:

1. *Components*, 8-connected, each kept or dropped whole (so corners and thin tips of real objects survive):

   - the largest one is always kept: it is the painted object however small (a 15 × 15 object is 0.09 % of a
     512² image) or thin, and an edit that painted nothing has no component at all;
   - any other at least ``large_component_factor`` × ``min_component_fraction`` of the image (default 4 × 0.1 %)
     is kept: that is too big for speckle, even when it is a 1-pixel-wide pole the median below would erase;
   - any other at least ``min_component_fraction`` of the image is kept when the *median seed* marks it:
     ``median_filter`` (``median_size`` × ``median_size``, default 3) keeps pixels whose neighbourhood is mostly
     recoloured, which scattered speckle and short streaks never have;
   - smaller ones are dropped.

2. *Holes filled*: enclosed background regions (4-connected, not touching the border) of at most
   ``max_hole_fraction`` of the image area (default 0.1 %). Larger holes are kept: they are usually real, e.g. an
   object partly covered by another.

Area thresholds are fractions of the image, so one setting works at any size.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy import ndimage

from ._validation import BoolMask, RGBImage, checked, field_error
from .colors import RGB, ColorSpec

__all__ = ["MaskOptions", "clean_mask", "extract_mask"]

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


class MaskOptions(BaseModel):
    """Thresholds of mask extraction and cleanup (see :mod:`ming_genseg.extraction` for why these defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    radius: float = Field(
        0.5, gt=0.0, lt=1.0, description="A pixel is recoloured when ‖e − c‖ < radius · ‖c − r‖ (0.5: half way)."
    )
    min_contrast: float = Field(
        32.0,
        ge=0.0,
        le=441.0,
        description="Pixels whose reference colour is closer than this to the target (RGB units) cannot show the edit.",
    )
    median_size: int = Field(
        3, ge=1, le=15, description="Median window (odd) that must mark a small component for it to be kept; 1: off."
    )
    min_component_fraction: float = Field(
        0.001, ge=0.0, lt=1.0, description="Drop components (but the largest) smaller than this fraction of the image."
    )
    large_component_factor: float = Field(
        4.0, ge=1.0, description="Components of at least this × min_component_fraction are kept without a median seed."
    )
    max_hole_fraction: float = Field(
        0.001, ge=0.0, le=1.0, description="Fill enclosed holes up to this fraction of the image."
    )

    @field_validator("median_size")
    @classmethod
    def _odd(cls, size: int) -> int:
        if size % 2 == 0:
            raise ValueError(f"median_size must be odd (a window centred on the pixel), got {size}")
        return size


@checked
def clean_mask(mask: BoolMask, options: MaskOptions | None = None) -> np.ndarray:
    """Component selection and hole filling (module docstring, steps 1–2).

    Args:
        mask: ``(H, W)`` boolean mask (0/1 arrays accepted).
        options: thresholds; defaults if omitted.

    Returns:
        A new ``(H, W)`` bool mask.

    Raises:
        pydantic.ValidationError: a bad argument, named in the error (``mask`` not 2-D or not boolean).
    """
    options = options or MaskOptions()
    area = mask.size
    labels, count = ndimage.label(mask, structure=_EIGHT_CONNECTED)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0  # the background
    kept_small = sizes >= options.min_component_fraction * area
    if options.median_size > 1:
        seeds = ndimage.median_filter(mask.view(np.uint8), size=options.median_size).view(bool)
        seeded = np.zeros(count + 1, dtype=bool)
        seeded[labels[seeds]] = True
        kept_small &= seeded
    keep = kept_small | (sizes >= options.large_component_factor * options.min_component_fraction * area)
    keep[sizes.argmax()] = True
    keep[0] = False
    mask = keep[labels]  # a new array: the caller's mask is not filled in place below
    # Holes = 4-connected background components that do not touch the border, as binary_fill_holes finds them;
    # labelling them gives each one's size, which max_hole_fraction needs and binary_fill_holes does not report.
    holes, count = ndimage.label(~mask)
    if count:
        fill = np.bincount(holes.ravel(), minlength=count + 1) <= options.max_hole_fraction * area
        fill[np.unique(np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]]))] = False
        fill[0] = False
        mask |= fill[holes]
    return mask


def _recolored(reference: np.ndarray, edited: np.ndarray, rgb: RGB, options: MaskOptions) -> np.ndarray:
    target = np.asarray(rgb, dtype=np.float32)
    to_target = target - reference.astype(np.float32)
    from_target = edited.astype(np.float32) - target
    # Squared norms over the colour axis; einsum avoids numpy's slow reduction over a length-3 axis.
    contrast = np.einsum("...c,...c->...", to_target, to_target)
    distance = np.einsum("...c,...c->...", from_target, from_target)
    return (distance < options.radius**2 * contrast) & (contrast >= options.min_contrast**2)


@checked
def extract_mask(
    reference: RGBImage,
    edited: RGBImage,
    color: ColorSpec,
    options: MaskOptions | None = None,
) -> np.ndarray:
    """The mask of the pixels an edit painted in ``color`` (rule and cleanup in the module docstring).

    Args:
        reference: the image before the edit (RGB).
        edited: the image after the edit (RGB, same size).
        color: the colour the edit was asked to paint: a name of :data:`~ming_genseg.NAMED_COLORS` or an
            ``(r, g, b)`` triple in 0–255.
        options: thresholds; defaults if omitted.

    Returns:
        ``(H, W)`` bool mask.

    Raises:
        pydantic.ValidationError: a bad argument, named in the error (non-RGB image, sizes differ, unknown colour).
    """
    if edited.size != reference.size:
        message = f"is {edited.width}x{edited.height} but reference is {reference.width}x{reference.height}"
        raise field_error("extract_mask", "edited", message, edited)
    options = options or MaskOptions()
    return clean_mask(_recolored(np.asarray(reference), np.asarray(edited), color, options), options)
