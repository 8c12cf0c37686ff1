"""Prompts and rendered scenes of coloured shapes for a small generation and editing run (paper §2.3, Table 2).

The paper scores text-to-image generation on GenEval (Table 2: single object, two objects, counting, colours,
position, colour attribution). Without released weights the tiny model is trained and scored on the same six
categories, in a world of rendered shapes where a rule-based checker (:mod:`ming_testdata.geneval`) can tell
whether an image follows its prompt.

**Prompts.** A :class:`PromptSpec` is one or two object groups (count, optional colour, shape) and an optional
relation between them; its :attr:`~PromptSpec.text` is e.g. ``"two red circles left of a blue square"`` and its
:attr:`~PromptSpec.category` the GenEval category it belongs to (``"composite"`` when it mixes several).
:func:`prompt_specs` lists every prompt of the six categories for a palette, and :func:`split_prompts` holds a fixed
share of each category out of training, so the evaluation asks for combinations the model has never been shown.

**Scenes.** :func:`render_scene` draws exactly the objects a prompt asks for (unspecified colours drawn at random)
on a plain background. Each shape is drawn by ming-testdata (aliasing-free, so an object's mask is exactly its pixels)
and kept only where it stays at least ``min_gap`` pixels from every other object, so objects never touch and each
is one connected region; relations hold along their axis by ``relation_margin`` of the side, and that axis dominates
(an object "left of" another is further left than it is above or below it).

**Edits.** :func:`make_edit` picks one object of a rendered scene, names it by the shortest expression that singles
it out (``"the circle"``, ``"the red circle"``, ``"the red circle on the left"``) and asks for a colour not yet in the
scene (``"make the red circle on the left green"``); the target image is the reference with exactly that object's
pixels recoloured, and the object's mask comes with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import ndimage

from .images import Scene, SceneObject, SceneOptions, make_scenes
from .palette import COLORS, ColorName

__all__ = [
    "EDIT_TEMPLATES",
    "GENEVAL_CATEGORIES",
    "RELATIONS",
    "Category",
    "EditSample",
    "ObjectGroup",
    "PromptSpec",
    "PromptSplit",
    "Relation",
    "ShapeKind",
    "ShapeSample",
    "ShapesOptions",
    "make_edit",
    "prompt_specs",
    "relation_holds",
    "render_sample",
    "render_scene",
    "sample_specs",
    "split_prompts",
]

ShapeKind = Literal["circle", "square", "triangle"]
"""Shapes the checker tells apart at 32 px (ming-testdata draws more, but a 10-pixel pentagon looks like a circle)."""

Relation = Literal["left of", "right of", "above", "below"]
"""Spatial relations of GenEval's position category."""

RELATIONS: tuple[Relation, ...] = get_args(Relation)
"""Every relation."""

Category = Literal["single_object", "two_object", "counting", "colors", "position", "color_attr", "composite"]
"""A prompt's GenEval category, or ``"composite"`` for prompts that mix several (not scored by GenEval)."""

GENEVAL_CATEGORIES: tuple[Category, ...] = get_args(Category)[:-1]
"""The six scored categories, in the order of the paper's Table 2."""

EDIT_TEMPLATES: tuple[str, ...] = ("make {target} {color}", "color {target} {color}", "paint {target} {color}")
"""Wordings of a recolouring edit; the first is the evaluation's, ``"color …"`` is ming-genseg's default prompt."""

_NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four"}
# Axis and sign of each relation: "A left of B" means B.x - A.x > 0 along axis 0 (x); y grows downwards.
_AXES: dict[str, tuple[int, int]] = {"left of": (0, 1), "right of": (0, -1), "above": (1, 1), "below": (1, -1)}
_SIDE_WORDS: tuple[tuple[str, int, int], ...] = (
    ("on the left", 0, 1),
    ("on the right", 0, -1),
    ("at the top", 1, 1),
    ("at the bottom", 1, -1),
)
_ATTEMPTS = 200  # whole-scene restarts before giving up
_TRIES_PER_OBJECT = 50


class ObjectGroup(BaseModel):
    """``count`` objects of one shape, in one colour or (``color=None``) in any colours."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shape: ShapeKind = Field(description="Shape of every object in the group.")
    color: ColorName | None = Field(None, description="Colour of every object; None: not part of the prompt.")
    count: int = Field(1, ge=1, le=4, description="Number of objects (2 or more must be matched exactly).")

    @property
    def text(self) -> str:
        """``"a red circle"``, ``"an orange square"``, ``"three triangles"``."""
        words = [self.color] if self.color else []
        if self.count == 1:
            noun = " ".join([*words, self.shape])
            return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"
        return " ".join([_NUMBERS[self.count], *words, f"{self.shape}s"])

    def matches(self, shape: str, color: str) -> bool:
        """Whether an object of ``shape`` and ``color`` belongs to this group."""
        return shape == self.shape and self.color in (None, color)


class PromptSpec(BaseModel):
    """What a prompt asks for: one or two object groups and, for two, optionally a relation (group 0 ``relation``
    group 1, e.g. circles *left of* a square).

    Two groups must be told apart by shape or by colour (``"a circle and a red circle"`` is rejected at ``groups``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    groups: tuple[ObjectGroup, ...] = Field(min_length=1, max_length=2, description="The object groups.")
    relation: Relation | None = Field(None, description="Where group 0 is relative to group 1; needs two groups.")

    @model_validator(mode="after")
    def _check(self) -> PromptSpec:
        if self.relation is not None and len(self.groups) != 2:
            raise ValueError("relation needs exactly two groups")
        if len(self.groups) == 2:
            first, second = self.groups
            if first.shape == second.shape and (first.color is None or second.color in (None, first.color)):
                raise ValueError("groups: the two groups must differ in shape or in (given) colour")
        return self

    @property
    def text(self) -> str:
        """The prompt, e.g. ``"two red circles left of a blue square"``."""
        if len(self.groups) == 1:
            return self.groups[0].text
        joint = self.relation or "and"
        return f"{self.groups[0].text} {joint} {self.groups[1].text}"

    @property
    def category(self) -> Category:
        """The GenEval category of the prompt; ``"composite"`` when it mixes counts, colours and relations."""
        counts = [g.count for g in self.groups]
        colored = [g.color is not None for g in self.groups]
        if len(self.groups) == 1:
            if counts[0] == 1:
                return "colors" if colored[0] else "single_object"
            return "composite" if colored[0] else "counting"
        if counts != [1, 1]:
            return "composite"
        if self.relation is not None:
            return "composite" if any(colored) else "position"
        if all(colored):
            return "color_attr"
        return "composite" if any(colored) else "two_object"

    @property
    def exact(self) -> tuple[bool, ...]:
        """Per group, whether its count must be met exactly (a number word, as GenEval's counting) or at least."""
        return tuple(g.count > 1 for g in self.groups)


class ShapesOptions(BaseModel):
    """The shape world: image size, palette, shapes, object sizes and spacing, and the held-out split."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int = Field(32, ge=16, le=256, description="Image width and height in pixels.")
    colors: tuple[ColorName, ...] = Field(
        ("red", "green", "blue", "yellow", "purple"), min_length=2, description="Object colours (ming-testdata)."
    )
    shapes: tuple[ShapeKind, ...] = Field(get_args(ShapeKind), min_length=2, description="Object shapes.")
    background: ColorName = Field("white", description="Background colour; not one of the object colours.")
    min_size: float = Field(0.25, gt=0.0, le=0.6, description="Smallest shape diameter, fraction of the side.")
    max_size: float = Field(0.35, gt=0.0, le=0.6, description="Largest shape diameter, fraction of the side.")
    min_gap: int = Field(2, ge=1, le=8, description="Fewest background pixels between two objects.")
    relation_margin: float = Field(
        0.2, gt=0.0, lt=1.0, description="Least centre offset along a relation's axis, fraction of the side."
    )
    held_out: float = Field(0.25, gt=0.0, lt=1.0, description="Share of each category's prompts kept for evaluation.")
    split_seed: int = Field(0, ge=0, description="Seed of the train / held-out split.")

    @model_validator(mode="after")
    def _check(self) -> ShapesOptions:
        if self.background in self.colors:
            raise ValueError(f"colors: must not include the background colour {self.background!r}")
        if len(set(self.colors)) != len(self.colors) or len(set(self.shapes)) != len(self.shapes):
            raise ValueError("colors and shapes must not repeat")
        if self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) must not exceed max_size ({self.max_size})")
        if self.min_size * self.size < 6:
            raise ValueError(f"min_size: shapes under 6 pixels ({self.min_size} × {self.size}) lose their shape")
        return self


def prompt_specs(options: ShapesOptions | None = None) -> dict[Category, tuple[PromptSpec, ...]]:
    """Every prompt of the six GenEval categories over ``options``' shapes and colours.

    single object: ``"a circle"``; two objects: ``"a circle and a square"`` (ordered pairs of distinct shapes);
    counting: ``"two circles"`` … ``"four circles"``; colours: ``"a red circle"``; position: ``"a circle left of a
    square"``; colour attribution: ``"a red circle and a blue square"`` (distinct shapes and colours).
    """
    options = options or ShapesOptions()
    shapes, colors = options.shapes, options.colors
    pairs = [(a, b) for a in shapes for b in shapes if a != b]
    color_pairs = [(a, b) for a in colors for b in colors if a != b]
    one = ObjectGroup
    specs: dict[Category, list[PromptSpec]] = {
        "single_object": [PromptSpec(groups=(one(shape=s),)) for s in shapes],
        "two_object": [PromptSpec(groups=(one(shape=a), one(shape=b))) for a, b in pairs],
        "counting": [PromptSpec(groups=(one(shape=s, count=n),)) for s in shapes for n in (2, 3, 4)],
        "colors": [PromptSpec(groups=(one(shape=s, color=c),)) for s in shapes for c in colors],
        "position": [PromptSpec(groups=(one(shape=a), one(shape=b)), relation=r) for a, b in pairs for r in RELATIONS],
        "color_attr": [
            PromptSpec(groups=(one(shape=a, color=ca), one(shape=b, color=cb)))
            for a, b in pairs
            for ca, cb in color_pairs
        ],
    }
    return {category: tuple(found) for category, found in specs.items()}


@dataclass(frozen=True)
class PromptSplit:
    """Prompts per category for training and for the held-out evaluation (disjoint; together every prompt)."""

    train: dict[Category, tuple[PromptSpec, ...]]
    held_out: dict[Category, tuple[PromptSpec, ...]]


def split_prompts(options: ShapesOptions | None = None) -> PromptSplit:
    """Hold ``options.held_out`` of each category's prompts (at least one) out of training, chosen by a seeded
    permutation of the category's prompt list (so the split depends only on the options)."""
    options = options or ShapesOptions()
    train, held_out = {}, {}
    for index, (category, specs) in enumerate(prompt_specs(options).items()):
        rng = np.random.default_rng(np.random.SeedSequence(options.split_seed, spawn_key=(index,)))
        order = rng.permutation(len(specs))
        n_held = min(len(specs) - 1, max(1, round(options.held_out * len(specs))))
        held = set(order[:n_held].tolist())
        held_out[category] = tuple(s for i, s in enumerate(specs) if i in held)
        train[category] = tuple(s for i, s in enumerate(specs) if i not in held)
    return PromptSplit(train=train, held_out=held_out)


def sample_specs(specs: dict[Category, Sequence[PromptSpec]], n: int, seed: int) -> list[PromptSpec]:
    """``n`` prompts drawn with replacement, each from a uniformly chosen category (so small categories such as
    single object are not swamped by colour attribution)."""
    rng = np.random.default_rng(seed)
    categories = [c for c, found in specs.items() if found]
    if not categories:
        raise ValueError("specs: no prompts to sample from")
    picks = []
    for _ in range(n):
        found = specs[categories[int(rng.integers(len(categories)))]]
        picks.append(found[int(rng.integers(len(found)))])
    return picks


def relation_holds(
    first: tuple[float, float], second: tuple[float, float], relation: Relation, margin: float, *, dominant: bool
) -> bool:
    """Whether a centre ``first`` is ``relation`` a centre ``second`` (e.g. left of it) by more than ``margin``
    pixels along the relation's axis; with ``dominant`` the offset along that axis must also be at least the offset
    along the other one."""
    axis, sign = _AXES[relation]
    along = sign * (second[axis] - first[axis])
    across = abs(second[1 - axis] - first[1 - axis])
    return along > margin and (not dominant or along >= across)


def _draw(shape: str, color: str, options: ShapesOptions, rng: np.random.Generator) -> SceneObject:
    """One shape at a random place, drawn by ming-testdata (a one-object scene in the wanted shape and colour)."""
    diameter = float(rng.uniform(options.min_size, options.max_size))
    scene_options = SceneOptions(
        n=1,
        seed=int(rng.integers(2**63)),
        width=options.size,
        height=options.size,
        colors=(color,),
        backgrounds=(options.background,),
        shapes=(shape,),
        min_objects=1,
        max_objects=1,
        min_size=diameter,
        max_size=diameter,
    )
    return make_scenes(scene_options)[0].objects[0]


def _fits(
    obj: SceneObject,
    group: int,
    placed: list[tuple[int, SceneObject]],
    keep_out: np.ndarray,
    spec: PromptSpec,
    options: ShapesOptions,
) -> bool:
    if (obj.mask & keep_out).any():
        return False
    if spec.relation is None or group != 1:
        return True
    margin = options.relation_margin * options.size
    return all(
        relation_holds(other.center, obj.center, spec.relation, margin, dominant=True)
        for other_group, other in placed
        if other_group == 0
    )


def render_scene(spec: PromptSpec, seed: int, options: ShapesOptions | None = None) -> Scene:
    """Draw the objects ``spec`` asks for, and nothing else (rules in the module docstring).

    Groups are drawn in order, so the objects of group 0 come first in ``Scene.objects``. A colour the prompt leaves
    open is drawn uniformly from ``options.colors`` for each object.

    Raises:
        ValueError: ``spec`` uses a shape or colour outside ``options``, or the objects could not be placed (too
            many or too large for the image).
    """
    options = options or ShapesOptions()
    for group in spec.groups:
        if group.shape not in options.shapes or (group.color is not None and group.color not in options.colors):
            raise ValueError(f"spec: {group.text!r} uses a shape or colour outside options")
    rng = np.random.default_rng(seed)
    wanted = [
        (index, group.shape, group.color or options.colors[int(rng.integers(len(options.colors)))])
        for index, group in enumerate(spec.groups)
        for _ in range(group.count)
    ]
    grow = np.ones((2 * options.min_gap + 1,) * 2, dtype=bool)
    for _ in range(_ATTEMPTS):
        placed: list[tuple[int, SceneObject]] = []
        keep_out = np.zeros((options.size, options.size), dtype=bool)
        for group, shape, color in wanted:
            for _ in range(_TRIES_PER_OBJECT):
                obj = _draw(shape, color, options, rng)
                if _fits(obj, group, placed, keep_out, spec, options):
                    placed.append((group, obj))
                    # Everything within min_gap pixels (Chebyshev distance) of an object stays background.
                    keep_out |= ndimage.binary_dilation(obj.mask, structure=grow)
                    break
            else:
                break
        else:
            pixels = np.empty((options.size, options.size, 3), dtype=np.uint8)
            pixels[:] = COLORS[options.background]
            for _, obj in placed:
                pixels[obj.mask] = obj.rgb
            return Scene(Image.fromarray(pixels, "RGB"), options.background, tuple(obj for _, obj in placed))
    raise ValueError(f"could not place {spec.text!r} in {options.size}x{options.size}; lower max_size or min_gap")


@dataclass(frozen=True)
class ShapeSample:
    """A prompt and an image that follows it.

    Attributes:
        spec: what the prompt asks for.
        scene: the rendered scene (ming-testdata's :class:`~ming_testdata.Scene`, with per-object labels and masks).
    """

    spec: PromptSpec
    scene: Scene

    @property
    def prompt(self) -> str:
        """The prompt text."""
        return self.spec.text

    @property
    def image(self) -> Image.Image:
        """The rendered image."""
        return self.scene.image


def render_sample(spec: PromptSpec, seed: int, options: ShapesOptions | None = None) -> ShapeSample:
    """:func:`render_scene` with its prompt."""
    return ShapeSample(spec, render_scene(spec, seed, options))


@dataclass(frozen=True, eq=False)
class EditSample:
    """A recolouring edit of one object.

    Attributes:
        reference: the scene before the edit.
        target: the reference with exactly the object's pixels in ``color``.
        instruction: e.g. ``"make the red circle on the left green"``.
        expression: the words naming the object, e.g. ``"the red circle on the left"``.
        index: which of ``reference.objects`` is edited.
        color: the new colour (not in the reference).
    """

    reference: Scene
    target: Image.Image
    instruction: str
    expression: str
    index: int
    color: ColorName

    @property
    def object(self) -> SceneObject:
        """The edited object (its shape, old colour and centre)."""
        return self.reference.objects[self.index]

    @property
    def mask(self) -> np.ndarray:
        """``(H, W)`` bool: the edited object's pixels."""
        return self.object.mask


def _expression(objects: Sequence[SceneObject], index: int, margin: float, name_color: bool) -> str | None:
    """The shortest of "the circle" (skipped with ``name_color``), "the red circle", "the red circle on the left" (or
    on the right, at the top, at the bottom) that only ``objects[index]`` fits; None if none does."""
    obj = objects[index]
    same_shape = [o for i, o in enumerate(objects) if i != index and o.shape == obj.shape]
    if not same_shape and not name_color:
        return f"the {obj.shape}"
    same = [o for o in same_shape if o.color == obj.color]
    if not same:
        return f"the {obj.color} {obj.shape}"
    for words, axis, sign in _SIDE_WORDS:
        # "on the left": further left than every look-alike by more than the margin.
        if all(sign * (other.center[axis] - obj.center[axis]) > margin for other in same):
            return f"the {obj.color} {obj.shape} {words}"
    return None


def make_edit(
    specs: Sequence[PromptSpec],
    seed: int,
    options: ShapesOptions | None = None,
    template: str = EDIT_TEMPLATES[0],
    *,
    name_color: bool = False,
) -> EditSample:
    """A recolouring edit on the scene of a prompt drawn from ``specs`` (rules in the module docstring).

    The edited object is drawn uniformly among those an expression can single out; the new colour uniformly among
    ``options.colors`` not in the scene (a scene with no such object or colour is drawn again). With ``name_color``
    the expression always names the object's colour, as referring expressions for segmentation usually do.

    Raises:
        ValueError: ``specs`` is empty, ``template`` lacks ``{target}`` or ``{color}``, or scene after scene
            leaves no palette colour free (or no object that an expression singles out).
    """
    options = options or ShapesOptions()
    if not specs:
        raise ValueError("specs: no prompts to draw a scene from")
    if "{target}" not in template or "{color}" not in template:
        raise ValueError(f"template must hold {{target}} and {{color}}, got {template!r}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    margin = options.relation_margin * options.size
    for _ in range(_ATTEMPTS):
        spec = specs[int(rng.integers(len(specs)))]
        scene = render_scene(spec, int(rng.integers(2**63)), options)
        named = [
            (i, e) for i in range(scene.count) if (e := _expression(scene.objects, i, margin, name_color)) is not None
        ]
        free = [c for c in options.colors if c not in {o.color for o in scene.objects}]
        if named and free:
            break
    else:
        raise ValueError("options.colors: too few colours to recolour an object into one not in the scene")
    index, expression = named[int(rng.integers(len(named)))]
    color = free[int(rng.integers(len(free)))]
    pixels = np.array(scene.image)
    pixels[scene.objects[index].mask] = COLORS[color]
    instruction = template.format(target=expression, color=color)
    return EditSample(scene, Image.fromarray(pixels, "RGB"), instruction, expression, index, color)
