"""Named colours, the edit palette and the rule that picks an edit colour which contrasts with the image (§2.3).

Segmentation as editing (paper §2.3) asks the editor to paint the referred object in a named colour ("color the
banana purple") and reads the mask back from where that colour appeared. That only works if the colour is not
already in the picture, so the colour is chosen per image:

**Rule** (:func:`choose_edit_color`). Every pixel of the image (box-downsampled to at most 128 px a side) is
compared in CIELAB with each candidate palette colour. A pixel *conflicts* with a candidate when their ΔE (CIE76,
Euclidean distance in L*a*b*) is at most :data:`CONFLICT_DISTANCE` (25: clearly distinguishable colours are further
apart). The candidate with the smallest fraction of conflicting pixels wins; among equals (typically several with no
conflict at all) the one with the largest mean ΔE to the image, i.e. the most contrast with what dominates it; then
palette order. Palette colours the referring expression names are not candidates ("color the red circle red" would
be no edit at all).

Colour values are the most common RGB answer for each name in the xkcd colour survey (R. Munroe, 2010), so a
"purple" here is what most people call purple; CIELAB comes from PIL's ImageCms (littleCMS, sRGB → D50 Lab).
"""

from __future__ import annotations

import functools
import re
from types import MappingProxyType
from typing import Annotated, Any, Literal, get_args

import numpy as np
from PIL import Image, ImageCms
from pydantic import Field, PlainValidator

from ._validation import RGBImage, checked

__all__ = [
    "CONFLICT_DISTANCE",
    "EDIT_COLORS",
    "NAMED_COLORS",
    "RGB",
    "ColorName",
    "ColorSpec",
    "EditColorName",
    "choose_edit_color",
    "color_words",
]

_Channel = Annotated[int, Field(ge=0, le=255)]
RGB = tuple[_Channel, _Channel, _Channel]
"""An sRGB colour ``(r, g, b)``, each channel 0–255 (checked where a request or function takes one)."""

ColorName = Literal[
    "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "cyan", "magenta", "black", "white", "gray"
]
"""A colour of :data:`NAMED_COLORS` (the basic colour terms plus cyan and magenta)."""

EditColorName = Literal["purple", "green", "blue", "red", "yellow", "orange", "cyan", "magenta", "pink"]
"""A colour an edit may paint with (see :data:`EDIT_COLORS`)."""

NAMED_COLORS: MappingProxyType[str, tuple[int, int, int]] = MappingProxyType(
    {
        "red": (229, 0, 0),
        "orange": (249, 115, 6),
        "yellow": (255, 255, 20),
        "green": (21, 176, 26),
        "blue": (3, 67, 223),
        "purple": (126, 30, 156),
        "pink": (255, 129, 192),
        "brown": (101, 55, 0),
        "cyan": (0, 255, 255),
        "magenta": (194, 0, 120),
        "black": (0, 0, 0),
        "white": (255, 255, 255),
        "gray": (146, 149, 145),
    }
)
"""sRGB value of each colour name (xkcd colour survey)."""

EDIT_COLORS: tuple[EditColorName, ...] = get_args(EditColorName)
"""The default edit palette, in order of preference: the saturated colours. Black, white, gray and brown are left
out because an editor's shadows, highlights and backgrounds look like them."""

CONFLICT_DISTANCE = 25.0
"""ΔE (CIE76) at or below which an image pixel counts as having the candidate edit colour already."""

_SYNONYMS = {"grey": "gray", "violet": "purple"}
_WORD = re.compile(r"[a-z]+")
_MAX_SIDE = 128  # colour statistics on a thumbnail: same answer at any size, bounded time


@functools.cache
def _srgb_to_lab() -> ImageCms.ImageCmsTransform:
    return ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")


def _to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (L* in 0–100, a* and b* in about −128–127) of ``(..., 3)`` uint8 sRGB values, as float32.

    Uses PIL's ImageCms (8-bit Lab: steps of 0.4 in L* and 1 in a*, b* — fine for telling colours apart).
    """
    pixels = np.ascontiguousarray(rgb, dtype=np.uint8)
    flat = pixels.reshape(1, -1, 3)
    lab = np.asarray(ImageCms.applyTransform(Image.fromarray(flat, "RGB"), _srgb_to_lab())).reshape(pixels.shape)
    # PIL's LAB mode stores L* scaled to 0–255 and a*, b* as signed bytes.
    out = np.empty(pixels.shape, dtype=np.float32)
    out[..., 0] = lab[..., 0].astype(np.float32) * (100.0 / 255.0)
    out[..., 1:] = lab[..., 1:].view(np.int8)
    return out


def _color_rgb(value: Any) -> RGB:
    if isinstance(value, str):
        name = _SYNONYMS.get(value.lower(), value.lower())  # the same names color_words reads in an expression
        if name not in NAMED_COLORS:
            raise ValueError(
                f"unknown colour name {value!r}; use one of {', '.join(NAMED_COLORS)} or an (r, g, b) triple"
            )
        return NAMED_COLORS[name]
    # Bytes iterate as integers (b"abc" would read as (97, 98, 99)): never a colour.
    if isinstance(value, bytes | bytearray):
        raise ValueError(f"must be a colour name or an (r, g, b) triple of integers in 0-255, got {value!r}")
    try:
        rgb = tuple(int(channel) for channel in value)
        exact = all(a == b for a, b in zip(rgb, value, strict=True))
    except (TypeError, ValueError):
        rgb, exact = (), False
    if len(rgb) != 3 or not exact or not all(0 <= channel <= 255 for channel in rgb):
        raise ValueError(f"must be a colour name or an (r, g, b) triple of integers in 0-255, got {value!r}")
    return rgb  # type: ignore[return-value]


ColorSpec = Annotated[ColorName | RGB, PlainValidator(_color_rgb)]
"""A colour given by name (:data:`NAMED_COLORS`, any case; ``"grey"`` and ``"violet"`` read as gray and purple, as in
:func:`color_words`) or as an ``(r, g, b)`` triple; validated to its RGB value."""


def color_words(text: str) -> tuple[ColorName, ...]:
    """The colour names of :data:`NAMED_COLORS` in ``text``, in order of appearance (``"grey"`` reads as gray and
    ``"violet"`` as purple; case is ignored; whole words only, so "redder" names nothing)."""
    found = (_SYNONYMS.get(word, word) for word in _WORD.findall(text.lower()))
    return tuple(word for word in found if word in NAMED_COLORS)  # type: ignore[misc]


@checked
def choose_edit_color(
    image: RGBImage,
    palette: Annotated[tuple[EditColorName, ...], Field(min_length=1)] = EDIT_COLORS,
    exclude: tuple[ColorName, ...] = (),
) -> EditColorName:
    """The palette colour that contrasts most with ``image``, by the rule in this module's docstring.

    Args:
        image: the RGB image to be edited.
        palette: candidate colours, in order of preference for ties.
        exclude: colours never to choose (e.g. those the referring expression names).

    Raises:
        ValueError: a bad argument (a ``pydantic.ValidationError`` naming it), or ``exclude`` leaves no candidate.
    """
    candidates = [color for color in dict.fromkeys(palette) if color not in exclude]
    if not candidates:
        raise ValueError(f"palette {palette} has no colour left after excluding {exclude}")
    factor = max(1, -(-max(image.size) // _MAX_SIDE))
    pixels = _to_lab(np.asarray(image.reduce(factor)).reshape(-1, 3))
    targets = _to_lab(np.array([NAMED_COLORS[color] for color in candidates], dtype=np.uint8))
    distance = np.linalg.norm(pixels[:, None, :] - targets[None, :, :], axis=-1)
    conflict = (distance <= CONFLICT_DISTANCE).mean(axis=0)
    contrast = distance.mean(axis=0)
    best = min(range(len(candidates)), key=lambda i: (conflict[i], -contrast[i], i))
    return candidates[best]
