"""Images of rendered text strings, labelled with the string, its colour and its exact pixels."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydantic import Field, field_validator, model_validator

from ._draw import mask_bbox
from ._options import CanvasOptions, field_error, option_field
from ._rng import Stream, generator, pick, pick_colors
from .lexicon import make_lexicon
from .palette import COLORS, ColorName

_PADDING = 2  # pixels kept free around the text
_NOT_A_CHARACTER = "\uffff"  # in no font, so it draws the font's missing-glyph box
_GLYPH_CHECK_SIZE = 24  # any size tells which glyphs the font has


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _glyph(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, character: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(character, mode="1")
    return mask.size, bytes(mask)


def _missing_glyphs(text: str) -> list[str]:
    """The characters of ``text`` that PIL's default font draws as its missing-glyph box."""
    font = _font(_GLYPH_CHECK_SIZE)
    box = _glyph(font, _NOT_A_CHARACTER)
    return sorted({character for character in text if _glyph(font, character) == box})


class TextImageOptions(CanvasOptions):
    """Options of :func:`make_text_images`.

    The font is PIL's default (``ImageFont.load_default(size=...)``), which has printable ASCII glyphs only; texts
    with other characters are rejected, since they would be drawn as boxes.
    """

    width: int = option_field("width", 192)
    height: int = option_field("height", 40)
    texts: tuple[str, ...] | None = Field(
        None, min_length=1, description="Strings to render, cycled; default: made-up names and numbers."
    )
    min_font_size: int = Field(12, ge=6, le=512, description="Smallest font size, pixels.")
    max_font_size: int = Field(24, ge=6, le=512, description="Largest font size, pixels.")

    @field_validator("texts")
    @classmethod
    def _check_texts(cls, texts: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for text in texts or ():
            if not text.strip():
                raise ValueError(f"texts must not hold blank strings, got {text!r}")
            missing = _missing_glyphs(text)
            if missing:
                raise ValueError(f"texts: PIL's default font has no glyph for {missing} in {text!r}")
        return texts

    @model_validator(mode="after")
    def _check_font_sizes(self) -> TextImageOptions:
        if self.min_font_size > self.max_font_size:
            raise field_error(
                self,
                "min_font_size",
                f"min_font_size ({self.min_font_size}) must not exceed max_font_size ({self.max_font_size})",
            )
        return self


@dataclass(frozen=True, eq=False)
class TextImage:
    """A one-line string drawn on a plain background.

    Attributes:
        image: the picture (PIL, mode ``"RGB"``).
        text: the string drawn (the label).
        font_size: font size used, pixels (shrunk from the drawn size until the text fits).
        color: text colour name.
        background: background colour name.
        mask: ``(H, W)`` bool, the pixels of the text (drawn without anti-aliasing, so exactly the text colour).
        bbox: ``(x0, y0, x1, y1)`` extent of ``mask``, ends exclusive; the text is never cut off at the border.
    """

    image: Image.Image
    text: str
    font_size: int
    color: ColorName
    background: ColorName
    mask: np.ndarray = field(repr=False)
    bbox: tuple[int, int, int, int]

    def label(self) -> dict[str, Any]:
        """Everything but the image and mask, as JSON-ready Python values."""
        return {
            "text": self.text,
            "font_size": self.font_size,
            "color": self.color,
            "rgb": list(COLORS[self.color]),
            "background": self.background,
            "bbox": list(self.bbox),
        }


def _default_text(rng: np.random.Generator, names: Sequence[str]) -> str:
    name = pick(rng, names)
    return f"{name} {int(rng.integers(1, 1000))}" if rng.random() < 0.3 else name


def _text_image(options: TextImageOptions, index: int, names: Sequence[str]) -> TextImage:
    rng = generator(options.seed, Stream.TEXT_IMAGE, index)
    text = options.texts[index % len(options.texts)] if options.texts else _default_text(rng, names)
    background, (color,) = pick_colors(rng, options, 1, 1)
    # Text goes on a mode "1" canvas: no anti-aliasing, and textbbox measures the glyphs drawn there (on an RGB
    # canvas with fontmode "1" it measures anti-aliased glyphs, up to several pixels narrower).
    canvas = Image.new("1", (options.width, options.height), 0)
    draw = ImageDraw.Draw(canvas)
    size = int(rng.integers(options.min_font_size, options.max_font_size + 1))
    while True:
        font = _font(size)
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        if x1 - x0 + 2 * _PADDING <= options.width and y1 - y0 + 2 * _PADDING <= options.height:
            break
        if size == options.min_font_size:
            raise ValueError(f"text {text!r} does not fit in {options.width}x{options.height} at min_font_size {size}")
        size -= 1
    # Random placement inside the free space; textbbox offsets (x0, y0) are relative to the anchor.
    x = _PADDING - x0 + int(rng.integers(options.width - (x1 - x0) - 2 * _PADDING + 1))
    y = _PADDING - y0 + int(rng.integers(options.height - (y1 - y0) - 2 * _PADDING + 1))
    draw.text((x, y), text, fill=1, font=font)
    mask = np.asarray(canvas, dtype=bool)
    bbox = mask_bbox(mask)
    if bbox is None:
        raise ValueError(f"text {text!r} draws no pixels at font size {size}")
    pixels = np.empty((options.height, options.width, 3), dtype=np.uint8)
    pixels[:] = COLORS[background]
    pixels[mask] = COLORS[color]
    return TextImage(Image.fromarray(pixels, "RGB"), text, size, color, background, mask, bbox)


def make_text_images(options: TextImageOptions | None = None) -> list[TextImage]:
    """Render ``options.n`` one-line strings with PIL's default font, each labelled with its string.

    Strings are ``options.texts`` (cycled) or, by default, made-up English names (see :func:`make_lexicon`),
    sometimes followed by a number. Image ``i`` depends only on ``(seed, i)``.

    Raises:
        ValueError: a string does not fit at ``min_font_size`` or draws no pixels.
    """
    options = options if options is not None else TextImageOptions()
    names = [] if options.texts else [name for name, _ in make_lexicon("en", seed=options.seed).entries()]
    return [_text_image(options, i, names) for i in range(options.n)]
