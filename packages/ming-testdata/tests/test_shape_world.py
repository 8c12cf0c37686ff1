"""The shape world: prompt wording and categories, the held-out split, scenes that follow their prompt (checked
against ming-testdata's labels and pixels, not the checker) and recolouring edits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import ndimage

from ming_testdata import COLORS
from ming_testdata.shape_world import (
    EDIT_TEMPLATES,
    GENEVAL_CATEGORIES,
    ObjectGroup,
    PromptSpec,
    ShapesOptions,
    make_edit,
    prompt_specs,
    render_scene,
    sample_specs,
    split_prompts,
)

_SIDES = {"left": (0, 1), "right": (0, -1), "top": (1, 1), "bottom": (1, -1)}


def _spec(*groups: tuple[int, str | None, str], relation: str | None = None) -> PromptSpec:
    return PromptSpec(
        groups=tuple(ObjectGroup(count=n, color=c, shape=s) for n, c, s in groups),
        relation=relation,
    )


@pytest.mark.parametrize(
    ("spec", "text", "category"),
    [
        (_spec((1, None, "triangle")), "a triangle", "single_object"),
        (_spec((1, None, "circle"), (1, None, "square")), "a circle and a square", "two_object"),
        (_spec((3, None, "circle")), "three circles", "counting"),
        (_spec((1, "orange", "square")), "an orange square", "colors"),
        (_spec((1, None, "square"), (1, None, "circle"), relation="above"), "a square above a circle", "position"),
        (_spec((1, "red", "circle"), (1, "blue", "square")), "a red circle and a blue square", "color_attr"),
        (
            _spec((2, "red", "circle"), (1, "blue", "square"), relation="left of"),
            "two red circles left of a blue square",
            "composite",
        ),
        (_spec((2, "green", "triangle")), "two green triangles", "composite"),
        (_spec((1, "red", "circle"), (1, None, "square")), "a red circle and a square", "composite"),
    ],
)
def test_prompt_text_and_category(spec, text, category):
    assert spec.text == text
    assert spec.category == category


def test_prompt_specs_fall_in_their_own_category_and_do_not_repeat():
    specs = prompt_specs()
    assert tuple(specs) == GENEVAL_CATEGORIES
    for category, found in specs.items():
        assert {s.category for s in found} == {category}
        assert len({s.text for s in found}) == len(found)
    # 3 shapes, 5 colours: ordered pairs of distinct shapes (6) and colours (20).
    assert [len(f) for f in specs.values()] == [3, 6, 9, 15, 24, 120]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"groups": (ObjectGroup(shape="circle"),), "relation": "above"}, "relation"),
        ({"groups": (ObjectGroup(shape="circle"), ObjectGroup(shape="circle", color="red"))}, "groups"),
        ({"groups": ()}, "groups"),
    ],
)
def test_bad_prompt_spec_names_the_field(kwargs, field):
    with pytest.raises(ValidationError, match=field):
        PromptSpec(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"colors": ("red", "white")}, "colors"),
        ({"min_size": 0.5, "max_size": 0.3}, "min_size"),
        ({"size": 16, "min_size": 0.2}, "min_size"),
        ({"shapes": ("circle", "star")}, "shapes"),
        ({"held_out": 1.0}, "held_out"),
    ],
)
def test_bad_options_name_the_field(kwargs, field):
    with pytest.raises(ValidationError, match=field):
        ShapesOptions(**kwargs)


def test_split_is_disjoint_complete_and_seeded():
    everything = prompt_specs()
    split = split_prompts()
    for category, found in everything.items():
        train, held = {s.text for s in split.train[category]}, {s.text for s in split.held_out[category]}
        assert train.isdisjoint(held)
        assert train | held == {s.text for s in found}
        assert train
        assert held
        assert len(held) == max(1, round(0.25 * len(found)))
    assert split_prompts() == split
    other = split_prompts(ShapesOptions(split_seed=1))
    assert other.held_out["color_attr"] != split.held_out["color_attr"]


def test_sample_specs_draws_every_category_evenly():
    specs = sample_specs(split_prompts().train, 1200, seed=0)
    counts = {c: sum(s.category == c for s in specs) for c in GENEVAL_CATEGORIES}
    assert all(150 <= n <= 250 for n in counts.values()), counts
    assert sample_specs(split_prompts().train, 50, seed=3) == sample_specs(split_prompts().train, 50, seed=3)


def _chebyshev_gap(a: np.ndarray, b: np.ndarray) -> int:
    """Smallest Chebyshev distance between a pixel of ``a`` and one of ``b``."""
    return int(ndimage.distance_transform_cdt(~a, metric="chessboard")[b].min())


def _follows(spec: PromptSpec, scene, options: ShapesOptions) -> None:
    """Assert from the scene's own labels that it shows exactly the prompt's objects, apart and well placed."""
    objects = list(scene.objects)
    assert len(objects) == sum(g.count for g in spec.groups)
    start = 0
    groups = []
    for group in spec.groups:
        members = objects[start : start + group.count]
        start += group.count
        assert all(group.matches(o.shape, o.color) for o in members)
        groups.append(members)
    margin = options.relation_margin * options.size
    if spec.relation is not None:
        axis, sign = {"left of": (0, 1), "right of": (0, -1), "above": (1, 1), "below": (1, -1)}[spec.relation]
        for a, b in itertools.product(*groups):
            along = sign * (b.center[axis] - a.center[axis])
            assert along > margin
            assert along >= abs(b.center[1 - axis] - a.center[1 - axis])
    for a, b in itertools.combinations(objects, 2):
        assert _chebyshev_gap(a.mask, b.mask) > options.min_gap
    pixels = np.asarray(scene.image)
    covered = np.zeros(pixels.shape[:2], dtype=bool)
    for obj in objects:
        assert (pixels[obj.mask] == COLORS[obj.color]).all()
        covered |= obj.mask
    assert (pixels[~covered] == COLORS[options.background]).all()


@pytest.mark.parametrize("size", [32, 64])
def test_rendered_scenes_follow_their_prompts(size):
    options = ShapesOptions(size=size)
    specs = [s for found in prompt_specs(options).values() for s in found[:: max(1, len(found) // 8)]]
    specs.append(_spec((2, "red", "circle"), (1, "blue", "square"), relation="left of"))
    for seed, spec in enumerate(specs):
        scene = render_scene(spec, seed, options)
        assert scene.image.size == (size, size)
        _follows(spec, scene, options)


def test_unnamed_colours_vary_and_named_ones_do_not():
    scenes = [render_scene(_spec((1, None, "circle")), seed) for seed in range(40)]
    assert len({s.objects[0].color for s in scenes}) == 5
    assert {render_scene(_spec((1, "green", "circle")), seed).objects[0].color for seed in range(10)} == {"green"}


def test_rendering_is_deterministic_per_seed():
    spec = _spec((1, "red", "circle"), (1, None, "triangle"), relation="below")
    first, again, other = (np.asarray(render_scene(spec, s).image) for s in (5, 5, 6))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_impossible_scenes_and_foreign_specs_raise():
    crowded = ShapesOptions(size=16, min_size=0.5, max_size=0.6, min_gap=4)
    with pytest.raises(ValueError, match="could not place"):
        render_scene(_spec((4, None, "square")), 0, crowded)
    with pytest.raises(ValueError, match="spec"):
        render_scene(_spec((1, "orange", "circle")), 0)


def _referents(expression: str, objects) -> list[int]:
    """Indices of the objects an expression of make_edit's grammar describes, read independently of it."""
    words = expression.split()[1:]  # drop "the"
    shape_at = next(i for i, w in enumerate(words) if w in {"circle", "square", "triangle"})
    shape, color = words[shape_at], words[shape_at - 1] if shape_at else None
    fits = [i for i, o in enumerate(objects) if o.shape == shape and color in (None, o.color)]
    if shape_at + 1 < len(words):
        axis, sign = _SIDES[words[-1]]
        fits = [i for i in fits if all(sign * objects[j].center[axis] >= sign * objects[i].center[axis] for j in fits)]
    return fits


@pytest.mark.parametrize("size", [32, 64])
def test_edits_recolour_exactly_the_named_object(size):
    options = ShapesOptions(size=size)
    specs = [s for found in split_prompts(options).train.values() for s in found]
    instructions = set()
    for seed in range(60):
        edit = make_edit(specs, seed, options)
        objects = edit.reference.objects
        before, after = np.asarray(edit.reference.image), np.asarray(edit.target)
        changed = (before != after).any(axis=-1)
        assert np.array_equal(changed, edit.mask)
        assert (after[edit.mask] == COLORS[edit.color]).all()
        assert edit.color not in {o.color for o in objects}
        assert _referents(edit.expression, objects) == [edit.index]
        assert edit.instruction == EDIT_TEMPLATES[0].format(target=edit.expression, color=edit.color)
        instructions.add(edit.instruction.split()[-1])
    assert len(instructions) > 2  # several new colours


def test_edit_expressions_can_always_name_the_colour():
    specs = [s for found in split_prompts().train.values() for s in found]
    for seed in range(40):
        edit = make_edit(specs, seed, name_color=True)
        assert edit.object.color in edit.expression.split()
        assert _referents(edit.expression, edit.reference.objects) == [edit.index]
    assert any(len(make_edit(specs, seed).expression.split()) == 2 for seed in range(40))  # "the circle"


def test_edit_expressions_use_sides_when_look_alikes_share_the_scene():
    specs = [_spec((3, "red", "circle")), _spec((2, "blue", "square"), (1, None, "triangle"))]
    expressions = [make_edit(specs, seed).expression for seed in range(30)]
    assert any(e.split()[-1] in _SIDES for e in expressions)


def test_edit_template_and_specs_are_checked():
    specs = list(prompt_specs()["colors"])
    assert make_edit(specs, 0, template="color {target} {color}").instruction.startswith("color the ")
    with pytest.raises(ValueError, match="template"):
        make_edit(specs, 0, template="make it {color}")
    with pytest.raises(ValueError, match="specs"):
        make_edit([], 0)
