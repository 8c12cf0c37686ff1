"""Aliasing-free rasterisation of single shapes into boolean masks (exact labels need exact pixels)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .palette import ShapeName

# Regular polygons: (number of vertices, angle of the first vertex in degrees; y grows downwards, so -90 is up).
_POLYGONS: dict[str, tuple[int, float]] = {
    "triangle": (3, -90.0),
    "square": (4, 45.0),
    "diamond": (4, 0.0),
    "pentagon": (5, -90.0),
    "hexagon": (6, 0.0),
}
_STAR_INNER = 0.45  # inner radius of the five-pointed star, as a fraction of the outer one


def _vertices(count: int, first_deg: float, radius: float, cx: float, cy: float) -> list[tuple[float, float]]:
    angles = [math.radians(first_deg + 360.0 * k / count) for k in range(count)]
    return [(cx + radius * math.cos(a), cy + radius * math.sin(a)) for a in angles]


def shape_mask(shape: ShapeName, center: tuple[float, float], size: float, height: int, width: int) -> np.ndarray:
    """Pixels covered by ``shape`` (circumscribed-circle diameter ``size``) at ``center``: ``(height, width)`` bool.

    PIL's ImageDraw fills without anti-aliasing, so each pixel is either inside or outside.
    """
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy = center
    radius = size / 2
    if shape == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=1)
    elif shape == "star":
        outer = _vertices(5, -90.0, radius, cx, cy)
        inner = _vertices(5, -54.0, radius * _STAR_INNER, cx, cy)
        draw.polygon([p for pair in zip(outer, inner, strict=True) for p in pair], fill=1)
    else:
        draw.polygon(_vertices(*_POLYGONS[shape], radius, cx, cy), fill=1)
    return np.asarray(canvas, dtype=bool)


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` extent of a mask's true pixels, ends exclusive; ``None`` for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def visible_masks(full: list[np.ndarray]) -> list[np.ndarray]:
    """What each mask keeps once every later mask is painted over it (later objects cover earlier ones)."""
    covered = np.zeros_like(full[0]) if full else None
    visible = []
    for mask in reversed(full):
        visible.append(mask & ~covered)
        covered = covered | mask
    return visible[::-1]


def enough_visible(full: list[np.ndarray], visible: list[np.ndarray], min_visible: float) -> bool:
    """Whether every shape shows at least one pixel and at least ``min_visible`` of its full area."""
    return all(v.sum() > 0 and v.sum() >= min_visible * f.sum() for f, v in zip(full, visible, strict=True))
