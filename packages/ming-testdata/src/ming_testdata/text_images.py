"""Images of rendered text strings, labelled with the string, its colour and its exact pixels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydantic import Field, model_validator

from ._draw import mask_bbox
from ._options import CanvasOptions
from .lexicon import make_lexicon
from .palette import COLORS, ColorName

_PADDING = 2  # pixels kept free around the text


class TextImageOptions(CanvasOptions):
    """Options of :func:`make_text_images`.

    The font is PIL's default (``ImageFont.load_default(size=...)``), which has Latin glyphs only.
    """

    width: int = Field(192, ge=16, le=2048, description="Width in pixels.")
    height: int = Field(40, ge=16, le=2048, description="Height in pixels.")
    texts: tuple[str, ...] | None = Field(
        None, min_length=1, description="Strings to render, cycled; default: made-up names and numbers."
    )
    min_font_size: int = Field(12, ge=6, le=512, description="Smallest font size, pixels.")
    max_font_size: int = Field(24, ge=6, le=512, description="Largest font size, pixels.")

    @model_validator(mode="after")
    def _check_fonts(self) -> TextImageOptions:
        if self.min_font_size > self.max_font_size:
            raise ValueError(
                f"min_font_size ({self.min_font_size}) must not exceed max_font_size ({self.max_font_size})"
            )
        for background in self.backgrounds:
            if not set(self.colors) - {background}:
                raise ValueError(f"colors needs a colour other than background {background!r}")
        for text in self.texts or ():
            if not text.strip() or "\n" in text:
                raise ValueError(f"texts must be non-empty single lines, got {text!r}")
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
        bbox: ``(x0, y0, x1, y1)`` extent of ``mask``, ends exclusive.
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


def _default_text(rng: np.random.Generator, names: list[str]) -> str:
    name = names[int(rng.integers(len(names)))]
    return f"{name} {int(rng.integers(1, 1000))}" if rng.random() < 0.3 else name


def _text_image(options: TextImageOptions, index: int, names: list[str]) -> TextImage:
    rng = np.random.default_rng([options.seed, index])
    text = options.texts[index % len(options.texts)] if options.texts else _default_text(rng, names)
    background = options.backgrounds[int(rng.integers(len(options.backgrounds)))]
    colors = [c for c in dict.fromkeys(options.colors) if c != background]
    color = colors[int(rng.integers(len(colors)))]
    canvas = Image.new("RGB", (options.width, options.height), COLORS[background])
    draw = ImageDraw.Draw(canvas)
    draw.fontmode = "1"  # no anti-aliasing: every text pixel has exactly the text colour
    size = int(rng.integers(options.min_font_size, options.max_font_size + 1))
    while True:
        font = ImageFont.load_default(size=size)
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        if x1 - x0 + 2 * _PADDING <= options.width and y1 - y0 + 2 * _PADDING <= options.height:
            break
        if size == options.min_font_size:
            raise ValueError(f"text {text!r} does not fit in {options.width}x{options.height} at min_font_size {size}")
        size -= 1
    # Random placement inside the free space; textbbox offsets (x0, y0) are relative to the anchor.
    x = _PADDING - x0 + int(rng.integers(options.width - (x1 - x0) - 2 * _PADDING + 1))
    y = _PADDING - y0 + int(rng.integers(options.height - (y1 - y0) - 2 * _PADDING + 1))
    draw.text((x, y), text, fill=COLORS[color], font=font)
    mask = np.all(np.asarray(canvas) == COLORS[color], axis=-1)
    bbox = mask_bbox(mask)
    if bbox is None:
        raise ValueError(f"text {text!r} has no visible glyphs in PIL's default font")
    return TextImage(canvas, text, size, color, background, mask, bbox)


def make_text_images(options: TextImageOptions | None = None) -> list[TextImage]:
    """Render ``options.n`` one-line strings with PIL's default font, each labelled with its string.

    Strings are ``options.texts`` (cycled) or, by default, made-up English names (see :func:`make_lexicon`),
    sometimes followed by a number. Image ``i`` depends only on ``(seed, i)``.

    Raises:
        ValueError: a string does not fit at ``min_font_size`` or has no glyph in the font.
    """
    options = options if options is not None else TextImageOptions()
    lexicon = make_lexicon("en", seed=options.seed)
    names = [name for name, _ in lexicon.entries()]
    return [_text_image(options, i, names) for i in range(options.n)]
