"""A colour-word heuristic to compare generative segmentation against (issue 10's evaluation): it reads the first
colour word of the expression and keeps the pixels of that colour — no understanding of shape, position or
relations.

**Rule.** Every pixel is compared in CIELAB (ΔE, CIE76) with the colour names of :data:`~ming_genseg.NAMED_COLORS`.
It is selected when the expression's colour is its nearest name *and* within ``max_distance`` (default 40) of it:
each name owns its region of colour space, cut off where a colour is far from every name (40: about the spacing of
neighbouring names, e.g. red–orange 31 and blue–purple 41). The selection is then
cleaned like an extracted mask (:func:`~ming_genseg.clean_mask`). An expression without a colour word gives an empty
mask (the heuristic has nothing to go on); with several, the first one counts ("the red circle left of the blue
square" → red).
"""

from __future__ import annotations

import functools

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ._validation import Expression, RGBImage, checked
from .colors import NAMED_COLORS, _to_lab, color_words
from .extraction import MaskOptions, clean_mask

__all__ = ["ColorThresholdOptions", "color_threshold_segment"]

_NAMES = tuple(NAMED_COLORS)


@functools.cache
def _prototypes() -> np.ndarray:
    """CIELAB of each named colour, built on first use (the colour transform is not worth building at import)."""
    return _to_lab(np.array(list(NAMED_COLORS.values()), dtype=np.uint8))


class ColorThresholdOptions(BaseModel):
    """Options of :func:`color_threshold_segment`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # 40 is about the spacing of neighbouring names (red–orange 31, white–gray 39, blue–purple 41 ΔE): a pixel further
    # than that from its nearest name is no clearer an instance of it than the next name is.
    max_distance: float = Field(40.0, gt=0.0, description="Largest ΔE (CIE76) from the named colour that is kept.")
    mask: MaskOptions = Field(default_factory=MaskOptions, description="Cleanup of the selection.")


@checked
def color_threshold_segment(
    image: RGBImage, expression: Expression, options: ColorThresholdOptions | None = None
) -> np.ndarray:
    """The pixels of ``image`` in the colour the expression names (rule in the module docstring).

    Returns:
        ``(H, W)`` bool mask; empty when the expression names no colour.

    Raises:
        pydantic.ValidationError: a bad argument, named in the error (non-RGB image, blank expression).
    """
    options = options or ColorThresholdOptions()
    words = color_words(expression)
    if not words:
        return np.zeros((image.height, image.width), dtype=bool)
    lab = _to_lab(np.asarray(image))
    index = _NAMES.index(words[0])
    prototypes = _prototypes()
    named = prototypes[index]
    offset = lab - named
    selected = np.einsum("...c,...c->...", offset, offset) <= options.max_distance**2
    # Nearer to the named colour than to another prototype q is the half-space x·(q − p) ≤ (p + q)/2·(q − p):
    # one dot product per prototype, so no (H, W, names) array and memory stays O(H·W) at any size.
    for other, prototype in enumerate(prototypes):
        if other != index:
            normal = prototype - named
            selected &= lab @ normal <= (named + prototype) @ normal / 2
    return clean_mask(selected, options.mask)
