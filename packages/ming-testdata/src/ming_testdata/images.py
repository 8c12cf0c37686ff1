"""Scenes of coloured shapes on plain backgrounds, with exact per-object labels and visible-pixel masks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from pydantic import Field

from ._draw import enough_visible, mask_bbox, shape_mask, visible_masks
from ._options import ShapeOptions
from ._rng import Stream, generator, pick, pick_colors
from .palette import COLORS, ColorName, ShapeName

_MAX_ATTEMPTS = 200


class SceneOptions(ShapeOptions):
    """Options of :func:`make_scenes`."""

    occlusion: bool = Field(True, description="Let shapes overlap (a later shape covers an earlier one).")


def position_name(center: tuple[float, float], width: int, height: int) -> str:
    """Where ``center`` is on a 3×3 grid: ``"top left"``, ``"top"``, …, ``"center"``, …, ``"bottom right"``."""
    column = ("left", "center", "right")[min(int(3 * center[0] / width), 2)]
    row = ("top", "middle", "bottom")[min(int(3 * center[1] / height), 2)]
    if row == "middle":
        return column
    return row if column == "center" else f"{row} {column}"


@dataclass(frozen=True, eq=False)
class SceneObject:
    """One shape of a :class:`Scene`.

    Attributes:
        shape: its shape.
        color: its colour name.
        rgb: its exact RGB value in the image.
        center: ``(x, y)`` centre of the shape as drawn, in pixel units where pixel ``(col, row)`` covers
            ``[col, col + 1) × [row, row + 1)``: a shape centred on pixel ``(i, j)`` has centre ``(i + 0.5, j + 0.5)``.
        size: diameter of its circumscribed circle, pixels.
        mask: ``(H, W)`` bool, its visible pixels (parts covered by later shapes are false).
        bbox: ``(x0, y0, x1, y1)`` extent of ``mask``, ends exclusive.
    """

    shape: ShapeName
    color: ColorName
    rgb: tuple[int, int, int]
    center: tuple[float, float]
    size: float
    mask: np.ndarray = field(repr=False)
    bbox: tuple[int, int, int, int]

    @property
    def area(self) -> int:
        """Number of visible pixels."""
        return int(self.mask.sum())

    @property
    def position(self) -> str:
        """Coarse position of the centre (see :func:`position_name`)."""
        height, width = self.mask.shape
        return position_name(self.center, width, height)

    def label(self) -> dict[str, Any]:
        """Everything but the mask, as JSON-ready Python values."""
        return {
            "shape": self.shape,
            "color": self.color,
            "rgb": list(self.rgb),
            "center": list(self.center),
            "size": self.size,
            "bbox": list(self.bbox),
            "area": self.area,
            "position": self.position,
        }


@dataclass(frozen=True, eq=False)
class Scene:
    """An RGB image of shapes, drawn in order (later shapes on top).

    Attributes:
        image: the picture (PIL, mode ``"RGB"``).
        background: background colour name.
        objects: the shapes in drawing order.
    """

    image: Image.Image
    background: ColorName
    objects: tuple[SceneObject, ...]

    @property
    def count(self) -> int:
        """Number of shapes."""
        return len(self.objects)

    @property
    def caption(self) -> str:
        """An English description, e.g. ``"2 shapes on a white background: a red circle at the top left, …"``."""
        parts = []
        for obj in self.objects:
            where = "in the center" if obj.position == "center" else f"at the {obj.position}"
            article = "an" if obj.color[0] in "aeiou" else "a"
            parts.append(f"{article} {obj.color} {obj.shape} {where}")
        noun = "shape" if self.count == 1 else "shapes"
        return f"{self.count} {noun} on a {self.background} background: {', '.join(parts)}"

    def label(self) -> dict[str, Any]:
        """Everything but the image and masks, as JSON-ready Python values."""
        return {
            "background": self.background,
            "background_rgb": list(COLORS[self.background]),
            "count": self.count,
            "caption": self.caption,
            "objects": [obj.label() for obj in self.objects],
        }


def _scene(options: SceneOptions, rng: np.random.Generator) -> Scene:
    width, height = options.width, options.height
    background, colors = pick_colors(rng, options, options.min_objects, options.max_objects)
    count = len(colors)
    side = min(width, height)
    for _ in range(_MAX_ATTEMPTS):
        shapes = [pick(rng, options.shapes) for _ in range(count)]
        sizes = [float(rng.uniform(options.min_size, options.max_size) * side) for _ in range(count)]
        # Centres keep each shape's circumscribed circle inside the image.
        centers = [(float(rng.uniform(s / 2, width - s / 2)), float(rng.uniform(s / 2, height - s / 2))) for s in sizes]
        full = [shape_mask(sh, c, s, height, width) for sh, c, s in zip(shapes, centers, sizes, strict=True)]
        visible = visible_masks(full)
        overlap_ok = options.occlusion or np.sum(full, axis=0).max() <= 1
        if overlap_ok and enough_visible(full, visible, options.min_visible):
            break
    else:
        raise ValueError(
            f"could not place {count} shapes in {width}x{height} within {_MAX_ATTEMPTS} attempts; "
            "lower max_size or max_objects, or allow occlusion"
        )
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[:] = COLORS[background]
    objects = []
    for shape, color, center, size, mask, vis in zip(shapes, colors, centers, sizes, full, visible, strict=True):
        pixels[mask] = COLORS[color]
        bbox = mask_bbox(vis)
        assert bbox is not None  # enough_visible guarantees visible pixels
        objects.append(SceneObject(shape, color, COLORS[color], center, size, vis, bbox))
    return Scene(Image.fromarray(pixels, "RGB"), background, tuple(objects))


def make_scenes(options: SceneOptions | None = None) -> list[Scene]:
    """Draw ``options.n`` scenes of coloured shapes with exact labels.

    Shapes are filled without anti-aliasing, each in its own colour (never the background's), so a pixel's colour
    tells which object it belongs to and each mask is exactly the pixels of that colour. Scene ``i`` depends only on
    ``(seed, i)``.

    Raises:
        ValueError: the shapes cannot be placed as asked (too large, too many, or no overlap allowed).
    """
    options = options if options is not None else SceneOptions()
    return [_scene(options, generator(options.seed, Stream.SCENE, i)) for i in range(options.n)]
