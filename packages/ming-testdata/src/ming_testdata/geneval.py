"""A rule-based GenEval for the shape world: does a generated image follow its prompt? (paper §2.3, Table 2).

GenEval (Ghosh et al., 2023) detects objects with a detector, reads their colours and positions, and scores each
prompt as right or wrong per category: single object, two objects, counting, colours, position, colour attribution.
Here images are plain-background shape scenes (:mod:`ming_testdata.shape_world`), so detection is done by rule:

**Detection** (:func:`detect_objects`). Each pixel takes the nearest colour (Euclidean RGB) among the palette and the
background if it is within ``max_color_distance`` of it, else none (blends and noise). The pixels of each palette
colour split into 8-connected components; holes are filled. A component is an object when it covers at least
``min_area`` of the image and looks like a shape at all: it fills at least 0.4 of its bounding box, whose sides
differ by at most a factor 1.5 (every shape here is about as wide as it is tall); the rest is clutter. An object's
colour is the component's colour, its centre the centroid, and its shape comes from how much of its bounding box it
fills — about 1.0 for an axis-aligned square, π/4 ≈ 0.79 for a circle and 0.5 for a triangle (0.51–0.58 and
0.75–0.81 as ming-testdata draws them at 8–16 px), so fills below ``0.65`` read as triangle, from ``0.9`` as square,
and between as circle.

**Prompt check** (:func:`check_image`). For each group of the prompt, its matches are the detected objects of its
shape (and colour, when the prompt gives one). A group of one needs at least one match; a counted group ("three
circles") exactly its count, as GenEval's counting. For a relation every match of group 0 must be on that side of
every match of group 1 by more than ``relation_margin`` of the side (along the relation's axis only, as GenEval).
Extra objects the prompt does not mention are not penalised, but clutter is: an image fails when more than
``max_clutter`` of its pixels are neither background nor within a pixel of a detected object (a detector would not
find a circle in colour noise either; rendered scenes have none). A category's score is the share of its images that
pass; the overall score is the mean over the categories present (GenEval's "overall").

**Edit check** (:func:`check_edit`). An edit is right when a detected object of the new colour and the edited
object's shape overlaps the object's reference mask with IoU ≥ 0.5; what happened elsewhere is the share of pixels
outside the object (and a one-pixel band around it, where the model's soft edges belong to the edit) whose largest
channel difference from the reference exceeds ``change_tolerance``, and their mean absolute difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import ndimage

from .palette import COLORS, ColorName
from .shape_world import GENEVAL_CATEGORIES, Category, PromptSpec, ShapeKind, ShapesOptions, relation_holds

__all__ = [
    "CheckerOptions",
    "Detection",
    "EditCheck",
    "EditScores",
    "GenEvalScores",
    "ImageCheck",
    "check_edit",
    "check_image",
    "classify_shape",
    "detect_objects",
    "score_edits",
    "score_images",
]

_TRIANGLE_BELOW = 0.65  # bounding-box fill under which a component is a triangle (drawn: 0.51–0.58)
_SQUARE_FROM = 0.9  # fill from which it is a square (drawn: 1.0; circles 0.75–0.81)
_MIN_FILL = 0.4  # a component filling less of its box is no shape (drawn triangles fill 0.51 or more)
_MAX_ELONGATION = 1.5  # nor one whose box is this much longer than wide (drawn shapes: at most 1.2)
_EIGHT = np.ones((3, 3), dtype=bool)
_EDIT_IOU = 0.5


class CheckerOptions(BaseModel):
    """Palette and thresholds of the checker (defaults match :class:`~ming_testdata.shape_world.ShapesOptions`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    colors: tuple[ColorName, ...] = Field(ShapesOptions().colors, min_length=1, description="Object colours.")
    background: ColorName = Field(ShapesOptions().background, description="Background colour.")
    max_color_distance: float = Field(
        80.0, gt=0.0, le=442.0, description="Largest RGB distance from a palette colour that still counts as it."
    )
    min_area: float = Field(0.015, ge=0.0, lt=1.0, description="Smallest object, fraction of the image's pixels.")
    max_clutter: float = Field(
        0.05, ge=0.0, le=1.0, description="Largest share of pixels that are neither background nor near an object."
    )
    relation_margin: float = Field(
        0.05, ge=0.0, lt=1.0, description="Least centre offset for a relation, fraction of the image side."
    )
    change_tolerance: int = Field(
        32, ge=0, le=255, description="Largest channel difference of a pixel an edit leaves unchanged."
    )

    @model_validator(mode="after")
    def _check(self) -> CheckerOptions:
        if self.background in self.colors:
            raise ValueError(f"colors: must not include the background colour {self.background!r}")
        return self

    @classmethod
    def for_shapes(cls, options: ShapesOptions, **overrides: float) -> CheckerOptions:
        """The checker for the palette and background of a shape world."""
        return cls(colors=options.colors, background=options.background, **overrides)


@dataclass(frozen=True, eq=False)
class Detection:
    """One object found in an image.

    Attributes:
        shape: circle, square or triangle (:func:`classify_shape`).
        color: its palette colour.
        center: ``(x, y)`` centroid, in the pixel units of ming-testdata (pixel ``(i, j)`` has centre
            ``(i + 0.5, j + 0.5)``).
        mask: ``(H, W)`` bool, its pixels (holes filled).
    """

    shape: ShapeKind
    color: ColorName
    center: tuple[float, float]
    mask: np.ndarray = field(repr=False)

    @property
    def area(self) -> int:
        """Number of pixels."""
        return int(self.mask.sum())


def _pixels(image: Image.Image | np.ndarray, name: str) -> np.ndarray:
    pixels = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if pixels.ndim != 3 or pixels.shape[-1] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"{name} must be an RGB image (PIL or (H, W, 3) uint8), got {pixels.dtype} {pixels.shape}")
    return pixels


def _box_fill(mask: np.ndarray) -> tuple[float, float]:
    """Share of its bounding box a mask fills, and the ratio of the box's longer side to its shorter one."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("mask is empty")
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    return float(mask.sum() / (height * width)), float(max(height, width) / min(height, width))


def classify_shape(mask: np.ndarray) -> ShapeKind:
    """Circle, square or triangle, from the share of its bounding box a one-object mask fills (module docstring).

    Raises:
        ValueError: the mask is empty.
    """
    fill = _box_fill(mask)[0]
    if fill < _TRIANGLE_BELOW:
        return "triangle"
    return "square" if fill >= _SQUARE_FROM else "circle"


def _labels(image: Image.Image | np.ndarray, options: CheckerOptions) -> np.ndarray:
    """Per pixel, the index of its colour in ``(*options.colors, options.background)``, or -1 for none."""
    pixels = _pixels(image, "image").astype(np.float32)
    names = [*options.colors, options.background]
    palette = np.array([COLORS[n] for n in names], dtype=np.float32)
    distance = np.linalg.norm(pixels[:, :, None, :] - palette, axis=-1)
    nearest = distance.argmin(axis=-1)
    return np.where(distance.min(axis=-1) <= options.max_color_distance, nearest, -1)


def detect_objects(image: Image.Image | np.ndarray, options: CheckerOptions | None = None) -> list[Detection]:
    """The objects of a shape-world image, largest first (rules in the module docstring)."""
    options = options or CheckerOptions()
    labelled = _labels(image, options)
    min_pixels = options.min_area * labelled.size
    found = []
    for index, color in enumerate(options.colors):
        components, _ = ndimage.label(labelled == index, structure=_EIGHT)
        for number, piece in enumerate(ndimage.find_objects(components), start=1):
            own = ndimage.binary_fill_holes(components[piece] == number)
            fill, elongation = _box_fill(own)
            if own.sum() < max(min_pixels, 1) or fill < _MIN_FILL or elongation > _MAX_ELONGATION:
                continue
            mask = np.zeros(labelled.shape, dtype=bool)
            mask[piece] = own
            row, col = ndimage.center_of_mass(mask)
            found.append(Detection(classify_shape(mask), color, (float(col) + 0.5, float(row) + 0.5), mask))
    return sorted(found, key=lambda d: -d.area)


@dataclass(frozen=True)
class ImageCheck:
    """The verdict on one image.

    Attributes:
        passed: whether the image follows the prompt.
        failures: why not, one line per unmet requirement (empty when passed).
        detections: the objects found.
        clutter: share of pixels that are neither background nor within a pixel of an object.
    """

    passed: bool
    failures: tuple[str, ...]
    detections: tuple[Detection, ...] = field(repr=False)
    clutter: float = 0.0


def check_image(image: Image.Image | np.ndarray, spec: PromptSpec, options: CheckerOptions | None = None) -> ImageCheck:
    """Whether ``image`` shows what ``spec`` asks for (rules in the module docstring)."""
    options = options or CheckerOptions()
    detections = detect_objects(image, options)
    near = np.zeros(_pixels(image, "image").shape[:2], dtype=bool)
    for detection in detections:
        near |= ndimage.binary_dilation(detection.mask, structure=_EIGHT)
    clutter = float(((_labels(image, options) != len(options.colors)) & ~near).mean())
    failures = [f"cluttered: {clutter:.0%} of the pixels are stray colour"] if clutter > options.max_clutter else []
    matches = []
    for group, exact in zip(spec.groups, spec.exact, strict=True):
        found = [d for d in detections if group.matches(d.shape, d.color)]
        matches.append(found)
        if len(found) < group.count or (exact and len(found) != group.count):
            wanted = f"exactly {group.count}" if exact else f"at least {group.count}"
            failures.append(f"{group.text}: wanted {wanted}, found {len(found)}")
    if spec.relation is not None and not failures:
        side = _pixels(image, "image").shape[1]
        margin = options.relation_margin * side
        if not all(
            relation_holds(a.center, b.center, spec.relation, margin, dominant=False)
            for a in matches[0]
            for b in matches[1]
        ):
            failures.append(f"{spec.groups[0].text} is not {spec.relation} {spec.groups[1].text}")
    return ImageCheck(not failures, tuple(failures), tuple(detections), clutter)


@dataclass(frozen=True)
class GenEvalScores:
    """Per-category accuracy of a set of images.

    Attributes:
        categories: ``{category: share of its images that pass}`` for the categories present.
        counts: ``{category: number of images}``.
        overall: mean of the six GenEval categories' scores present (composite prompts are reported but not in it).
    """

    categories: dict[Category, float]
    counts: dict[Category, int]
    overall: float


def score_images(
    images: Iterable[Image.Image | np.ndarray], specs: Iterable[PromptSpec], options: CheckerOptions | None = None
) -> GenEvalScores:
    """Check each image against its prompt and score per category.

    Raises:
        ValueError: images and specs differ in number, or there are none.
    """
    passed: dict[Category, list[bool]] = {}
    images, specs = list(images), list(specs)
    if len(images) != len(specs):
        raise ValueError(f"images ({len(images)}) and specs ({len(specs)}) must pair up")
    if not images:
        raise ValueError("images: nothing to score")
    for image, spec in zip(images, specs, strict=True):
        passed.setdefault(spec.category, []).append(check_image(image, spec, options).passed)
    order = [*GENEVAL_CATEGORIES, "composite"]
    categories = {c: float(np.mean(passed[c])) for c in order if c in passed}
    scored = [categories[c] for c in GENEVAL_CATEGORIES if c in categories]
    overall = float(np.mean(scored)) if scored else float("nan")
    return GenEvalScores(categories, {c: len(passed[c]) for c in categories}, overall)


@dataclass(frozen=True)
class EditCheck:
    """The verdict on one edit.

    Attributes:
        object_ok: a detected object of the new colour and the object's shape covers the object (IoU ≥ 0.5).
        iou: the best IoU of such a detection with the object's mask (0 when there is none).
        outside_changed: share of pixels outside the object (and a 1-pixel band around it) that changed.
        outside_mae: their mean absolute difference from the reference, 0–255.
    """

    object_ok: bool
    iou: float
    outside_changed: float
    outside_mae: float


def check_edit(
    reference: Image.Image | np.ndarray,
    edited: Image.Image | np.ndarray,
    mask: np.ndarray,
    color: ColorName,
    shape: ShapeKind,
    options: CheckerOptions | None = None,
) -> EditCheck:
    """Score an edit that should have painted the object ``mask`` of ``reference`` in ``color`` (module docstring).

    Raises:
        ValueError: the images or the mask differ in size, or ``color`` is not in the checker's palette.
    """
    options = options or CheckerOptions()
    before, after = _pixels(reference, "reference"), _pixels(edited, "edited")
    mask = np.asarray(mask, dtype=bool)
    if before.shape != after.shape or mask.shape != before.shape[:2]:
        raise ValueError(f"reference {before.shape}, edited {after.shape} and mask {mask.shape} must match in size")
    if color not in options.colors:
        raise ValueError(f"color {color!r} is not in the checker's colours {options.colors}")
    ious = [
        (d.mask & mask).sum() / (d.mask | mask).sum()
        for d in detect_objects(after, options)
        if d.color == color and d.shape == shape
    ]
    iou = float(max(ious, default=0.0))
    outside = ~ndimage.binary_dilation(mask, structure=_EIGHT)
    difference = np.abs(after.astype(np.int16) - before.astype(np.int16))[outside]
    changed = float((difference.max(axis=-1) > options.change_tolerance).mean()) if difference.size else 0.0
    mae = float(difference.mean()) if difference.size else 0.0
    return EditCheck(iou >= _EDIT_IOU, iou, changed, mae)


@dataclass(frozen=True)
class EditScores:
    """Scores of a set of edits.

    Attributes:
        accuracy: share of edits whose object check passed.
        mean_iou: mean of :attr:`EditCheck.iou`.
        outside_changed: mean share of changed pixels outside the objects.
        outside_mae: mean absolute difference outside the objects, 0–255.
        n: number of edits.
    """

    accuracy: float
    mean_iou: float
    outside_changed: float
    outside_mae: float
    n: int


def score_edits(checks: Sequence[EditCheck]) -> EditScores:
    """Average edit checks.

    Raises:
        ValueError: there are none.
    """
    if not checks:
        raise ValueError("checks: nothing to score")
    return EditScores(
        accuracy=float(np.mean([c.object_ok for c in checks])),
        mean_iou=float(np.mean([c.iou for c in checks])),
        outside_changed=float(np.mean([c.outside_changed for c in checks])),
        outside_mae=float(np.mean([c.outside_mae for c in checks])),
        n=len(checks),
    )
