"""Short clips of coloured shapes moving in straight lines, with per-frame labels of every object."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from ._draw import mask_bbox, shape_mask, visible_masks
from ._options import ShapeOptions
from .palette import COLORS, ColorName, ShapeName


class VideoOptions(ShapeOptions):
    """Options of :func:`make_videos`.

    Each object moves at constant velocity along a straight line that stays inside the frame; when the drawn
    speed would carry it out, the velocity is scaled down until the path fits.
    """

    max_objects: int = Field(2, ge=1, le=10, description="Most objects per clip.")
    min_size: float = Field(0.15, gt=0.0, le=1.0, description="Smallest shape diameter, fraction of the shorter side.")
    max_size: float = Field(0.3, gt=0.0, le=1.0, description="Largest shape diameter, fraction of the shorter side.")
    frames: int = Field(16, ge=2, le=512, description="Frames per clip.")
    fps: float = Field(8.0, gt=0.0, le=240.0, description="Frames per second.")
    min_speed: float = Field(0.5, ge=0.0, description="Slowest speed, pixels per frame.")
    max_speed: float = Field(3.0, gt=0.0, description="Fastest speed, pixels per frame.")
    late_entry: bool = Field(True, description="Objects may appear after the first frame (up to mid-clip).")

    @model_validator(mode="after")
    def _check_speeds(self) -> VideoOptions:
        if self.min_speed > self.max_speed:
            raise ValueError(f"min_speed ({self.min_speed}) must not exceed max_speed ({self.max_speed})")
        return self


@dataclass(frozen=True, eq=False)
class VideoObject:
    """One moving shape of a :class:`VideoClip`. Arrays have one row per frame.

    Attributes:
        shape: its shape.
        color: its colour name.
        rgb: its exact RGB value in the frames.
        size: diameter of its circumscribed circle, pixels.
        appear_frame: first frame it is drawn in; it stays until the end.
        velocity: ``(vx, vy)`` pixels per frame.
        centers: ``(T, 2)`` float ``(x, y)`` centre per frame; NaN before ``appear_frame``.
        masks: ``(T, H, W)`` bool visible pixels per frame (later objects cover earlier ones).
        bboxes: ``(T, 4)`` int ``(x0, y0, x1, y1)`` extent of each mask, ends exclusive; -1 where nothing is visible.
    """

    shape: ShapeName
    color: ColorName
    rgb: tuple[int, int, int]
    size: float
    appear_frame: int
    velocity: tuple[float, float]
    centers: np.ndarray = field(repr=False)
    masks: np.ndarray = field(repr=False)
    bboxes: np.ndarray = field(repr=False)

    @property
    def present(self) -> np.ndarray:
        """``(T,)`` bool: frames from ``appear_frame`` on."""
        return np.arange(len(self.centers)) >= self.appear_frame

    @property
    def visible(self) -> np.ndarray:
        """``(T,)`` bool: frames where at least one of its pixels shows."""
        return self.masks.any(axis=(1, 2))

    def label(self) -> dict[str, Any]:
        """Everything but the masks, as JSON-ready Python values (``None`` for absent centres and boxes)."""
        return {
            "shape": self.shape,
            "color": self.color,
            "rgb": list(self.rgb),
            "size": self.size,
            "appear_frame": self.appear_frame,
            "velocity": list(self.velocity),
            "centers": [None if np.isnan(c[0]) else c.tolist() for c in self.centers],
            "bboxes": [None if b[0] < 0 else b.tolist() for b in self.bboxes],
        }


@dataclass(frozen=True, eq=False)
class VideoClip:
    """A clip of moving shapes.

    Attributes:
        frames: ``(T, H, W, 3)`` uint8 RGB frames.
        fps: frames per second.
        background: background colour name.
        objects: the shapes in drawing order.
    """

    frames: np.ndarray = field(repr=False)
    fps: float
    background: ColorName
    objects: tuple[VideoObject, ...]

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return len(self.frames) / self.fps

    def label(self) -> dict[str, Any]:
        """Everything but the pixels and masks, as JSON-ready Python values."""
        return {
            "frames": len(self.frames),
            "fps": self.fps,
            "background": self.background,
            "background_rgb": list(COLORS[self.background]),
            "objects": [obj.label() for obj in self.objects],
        }


def _path(options: VideoOptions, rng: np.random.Generator, size: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Start centre and velocity of a straight path of ``steps`` frames that keeps the shape inside the frame."""
    extent = np.array([options.width, options.height], dtype=float)
    speed = rng.uniform(options.min_speed, options.max_speed)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    velocity = speed * np.array([math.cos(angle), math.sin(angle)])
    travel = np.abs(velocity) * steps
    room = extent - size
    if np.any(travel > room):
        velocity *= np.min(room / np.maximum(travel, 1e-12))
    low = size / 2 + np.maximum(0.0, -velocity * steps)
    high = extent - size / 2 - np.maximum(0.0, velocity * steps)
    return rng.uniform(low, np.maximum(low, high)), velocity


def _clip(options: VideoOptions, rng: np.random.Generator) -> VideoClip:
    width, height, frames = options.width, options.height, options.frames
    background = options.backgrounds[int(rng.integers(len(options.backgrounds)))]
    palette = [c for c in dict.fromkeys(options.colors) if c != background]
    count = int(rng.integers(options.min_objects, options.max_objects + 1))
    colors = [palette[i] for i in rng.permutation(len(palette))[:count]]
    time = np.arange(frames)
    specs = []
    for color in colors:
        shape = options.shapes[int(rng.integers(len(options.shapes)))]
        size = float(rng.uniform(options.min_size, options.max_size) * min(width, height))
        appear = int(rng.integers(0, frames // 2 + 1)) if options.late_entry else 0
        start, velocity = _path(options, rng, size, frames - 1 - appear)
        centers = np.where((time >= appear)[:, None], start + velocity * (time - appear)[:, None], np.nan)
        specs.append((shape, color, size, appear, velocity, centers))

    pixels = np.empty((frames, height, width, 3), dtype=np.uint8)
    pixels[:] = COLORS[background]
    empty = np.zeros((height, width), dtype=bool)
    masks = np.zeros((count, frames, height, width), dtype=bool)
    for t in range(frames):
        full = [
            shape_mask(shape, tuple(centers[t]), size, height, width) if t >= appear else empty
            for shape, _, size, appear, _, centers in specs
        ]
        for k, (mask, visible) in enumerate(zip(full, visible_masks(full), strict=True)):
            pixels[t][mask] = COLORS[specs[k][1]]
            masks[k, t] = visible

    objects = []
    for k, (shape, color, size, appear, velocity, centers) in enumerate(specs):
        boxes = [mask_bbox(m) for m in masks[k]]
        bboxes = np.array([box if box is not None else (-1, -1, -1, -1) for box in boxes], dtype=np.int64)
        vx, vy = (float(v) for v in velocity)
        objects.append(VideoObject(shape, color, COLORS[color], size, appear, (vx, vy), centers, masks[k], bboxes))
    return VideoClip(pixels, options.fps, background, tuple(objects))


def make_videos(options: VideoOptions | None = None) -> list[VideoClip]:
    """Make ``options.n`` clips of shapes moving at constant velocity, with per-frame labels.

    Each object has its own colour (never the background's) and is drawn without anti-aliasing, so its pixels in a
    frame are exactly its visible mask. Clip ``i`` depends only on ``(seed, i)``.
    """
    options = options if options is not None else VideoOptions()
    return [_clip(options, np.random.default_rng([options.seed, i])) for i in range(options.n)]
