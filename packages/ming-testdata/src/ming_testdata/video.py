"""Short clips of coloured shapes moving in straight lines, with per-frame labels of every object."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from pydantic import Field, model_validator

from ._draw import enough_visible, mask_bbox, shape_mask, visible_masks
from ._options import ShapeOptions, field_error, option_field
from ._rng import Stream, generator, pick, pick_colors
from .palette import COLORS, ColorName, ShapeName

_MAX_ATTEMPTS = 200


class _Motion(NamedTuple):
    shape: ShapeName
    size: float
    appear: int
    velocity: np.ndarray  # (vx, vy) pixels per frame
    centers: np.ndarray  # (T, 2), NaN before the appear frame


class VideoOptions(ShapeOptions):
    """Options of :func:`make_videos`.

    Each object moves at constant velocity along a straight line that stays inside the frame; when the drawn
    speed would carry it out, the velocity is scaled down until the path fits. In every frame from its appearance on,
    each object keeps at least ``min_visible`` of its area (and at least one pixel) visible under later objects;
    paths are redrawn until that holds.
    """

    max_objects: int = option_field("max_objects", 2)
    min_size: float = option_field("min_size", 0.15)
    max_size: float = option_field("max_size", 0.3)
    frames: int = Field(16, ge=2, le=512, description="Frames per clip.")
    fps: float = Field(8.0, gt=0.0, le=240.0, description="Frames per second.")
    min_speed: float = Field(0.5, ge=0.0, description="Slowest speed, pixels per frame.")
    max_speed: float = Field(3.0, gt=0.0, description="Fastest speed, pixels per frame.")
    late_entry: bool = Field(True, description="Objects may appear after the first frame (up to mid-clip).")

    @model_validator(mode="after")
    def _check_speeds(self) -> VideoOptions:
        if self.min_speed > self.max_speed:
            raise field_error(
                self, "min_speed", f"min_speed ({self.min_speed}) must not exceed max_speed ({self.max_speed})"
            )
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
        centers: ``(T, 2)`` float ``(x, y)`` centre per frame, NaN before ``appear_frame``; in pixel units where pixel
            ``(col, row)`` covers ``[col, col + 1) × [row, row + 1)``, so a shape centred on pixel ``(i, j)`` has
            centre ``(i + 0.5, j + 0.5)``.
        masks: ``(T, H, W)`` bool visible pixels per frame (later objects cover earlier ones); from ``appear_frame``
            on, at least ``min_visible`` of the shape and at least one pixel.
        bboxes: ``(T, 4)`` int ``(x0, y0, x1, y1)`` extent of each mask, ends exclusive; -1 before ``appear_frame``.
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
        """``(T,)`` bool: frames where at least one of its pixels shows (the ``present`` frames)."""
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


def _motion(options: VideoOptions, rng: np.random.Generator) -> _Motion:
    shape = pick(rng, options.shapes)
    size = float(rng.uniform(options.min_size, options.max_size) * min(options.width, options.height))
    appear = int(rng.integers(0, options.frames // 2 + 1)) if options.late_entry else 0
    start, velocity = _path(options, rng, size, options.frames - 1 - appear)
    time = np.arange(options.frames)
    centers = np.where((time >= appear)[:, None], start + velocity * (time - appear)[:, None], np.nan)
    return _Motion(shape, size, appear, velocity, centers)


def _visible(options: VideoOptions, motions: list[_Motion]) -> np.ndarray | None:
    """``(objects, T, H, W)`` visible masks, or ``None`` if a present object shows too little of itself somewhere."""
    height, width = options.height, options.width
    visible = np.zeros((len(motions), options.frames, height, width), dtype=bool)
    for t in range(options.frames):
        present = [k for k, motion in enumerate(motions) if t >= motion.appear]
        full = [shape_mask(m.shape, tuple(m.centers[t]), m.size, height, width) for m in (motions[k] for k in present)]
        shown = visible_masks(full)
        if not enough_visible(full, shown, options.min_visible):
            return None
        for k, mask in zip(present, shown, strict=True):
            visible[k, t] = mask
    return visible


def _clip(options: VideoOptions, rng: np.random.Generator) -> VideoClip:
    background, colors = pick_colors(rng, options, options.min_objects, options.max_objects)
    for _ in range(_MAX_ATTEMPTS):
        motions = [_motion(options, rng) for _ in colors]
        masks = _visible(options, motions)
        if masks is not None:
            break
    else:
        raise ValueError(
            f"could not move {len(colors)} shapes in {options.width}x{options.height} keeping min_visible "
            f"({options.min_visible}) of each visible in every frame within {_MAX_ATTEMPTS} attempts; "
            "lower max_size, max_objects or min_visible"
        )
    # Visible masks are disjoint, so painting them gives the frames of shapes drawn in order.
    pixels = np.empty((options.frames, options.height, options.width, 3), dtype=np.uint8)
    pixels[:] = COLORS[background]
    objects = []
    for color, motion, object_masks in zip(colors, motions, masks, strict=True):
        pixels[object_masks] = COLORS[color]
        boxes = [mask_bbox(m) for m in object_masks]
        bboxes = np.array([box if box is not None else (-1, -1, -1, -1) for box in boxes], dtype=np.int64)
        vx, vy = (float(v) for v in motion.velocity)
        objects.append(
            VideoObject(
                motion.shape,
                color,
                COLORS[color],
                motion.size,
                motion.appear,
                (vx, vy),
                motion.centers,
                object_masks,
                bboxes,
            )
        )
    return VideoClip(pixels, options.fps, background, tuple(objects))


def make_videos(options: VideoOptions | None = None) -> list[VideoClip]:
    """Make ``options.n`` clips of shapes moving at constant velocity, with per-frame labels.

    Each object has its own colour (never the background's) and is drawn without anti-aliasing, so its pixels in a
    frame are exactly its visible mask. Clip ``i`` depends only on ``(seed, i)``.

    Raises:
        ValueError: no paths keep every object ``min_visible`` visible (shapes too large or too many).
    """
    options = options if options is not None else VideoOptions()
    return [_clip(options, generator(options.seed, Stream.VIDEO, i)) for i in range(options.n)]
