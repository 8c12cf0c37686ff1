"""The rule-based checker: it passes rendered ground truth, fails images with the wrong colour, count, position or
colour binding, survives noise, and scores edits by the edited object and by what changed elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError
from scipy import ndimage

from ming_testdata import COLORS, SceneOptions, make_scenes
from ming_testdata.geneval import (
    CheckerOptions,
    EditCheck,
    check_edit,
    check_image,
    classify_shape,
    detect_objects,
    score_edits,
    score_images,
)
from ming_testdata.shape_world import (
    GENEVAL_CATEGORIES,
    ObjectGroup,
    PromptSpec,
    ShapesOptions,
    make_edit,
    prompt_specs,
    render_scene,
    split_prompts,
)


def _spec(*groups: tuple[int, str | None, str], relation: str | None = None) -> PromptSpec:
    return PromptSpec(groups=tuple(ObjectGroup(count=n, color=c, shape=s) for n, c, s in groups), relation=relation)


@pytest.mark.parametrize("size", [32, 64])
def test_rendered_ground_truth_passes_every_prompt(size):
    options = ShapesOptions(size=size)
    checker = CheckerOptions.for_shapes(options)
    specs = [s for found in prompt_specs(options).values() for s in found]
    images = [render_scene(spec, seed, options).image for seed, spec in enumerate(specs)]
    scores = score_images(images, specs, checker)
    assert scores.categories == dict.fromkeys(GENEVAL_CATEGORIES, 1.0)
    assert scores.overall == 1.0


def test_detections_are_the_scene_objects():
    for seed, spec in enumerate(s for found in split_prompts().held_out.values() for s in found):
        scene = render_scene(spec, seed)
        detections = detect_objects(scene.image)
        assert len(detections) == scene.count
        for obj in scene.objects:
            match = next(d for d in detections if np.array_equal(d.mask, obj.mask))
            assert (match.shape, match.color) == (obj.shape, obj.color)
            # The centroid of the drawn pixels is within a pixel of the centre the shape was drawn around.
            assert np.hypot(*np.subtract(match.center, obj.center)) < 1.0


@pytest.mark.parametrize("shape", ["circle", "square", "triangle"])
def test_shape_classifier_on_drawn_shapes_of_every_size(shape):
    for diameter in range(6, 41, 2):
        options = SceneOptions(
            n=4,
            seed=diameter,
            width=48,
            height=48,
            shapes=(shape,),
            min_objects=1,
            max_objects=1,
            min_size=diameter / 48,
            max_size=diameter / 48,
        )
        for scene in make_scenes(options):
            assert classify_shape(scene.objects[0].mask) == shape


def test_wrong_colour_fails():
    scene = render_scene(_spec((1, "red", "circle")), 0)
    assert check_image(scene.image, _spec((1, "red", "circle"))).passed
    result = check_image(scene.image, _spec((1, "blue", "circle")))
    assert not result.passed
    assert result.failures == ("a blue circle: wanted at least 1, found 0",)


def test_wrong_count_fails_and_counting_is_exact():
    image = render_scene(_spec((3, None, "square")), 1).image
    assert check_image(image, _spec((3, None, "square"))).passed
    assert not check_image(image, _spec((2, None, "square"))).passed
    assert not check_image(image, _spec((4, None, "square"))).passed
    assert check_image(image, _spec((1, None, "square"))).passed  # "a square": at least one, as GenEval


def test_wrong_shape_fails():
    image = render_scene(_spec((1, None, "triangle")), 2).image
    assert check_image(image, _spec((1, None, "triangle"))).passed
    assert not check_image(image, _spec((1, None, "circle"))).passed
    assert not check_image(image, _spec((1, None, "square"))).passed


@pytest.mark.parametrize(
    ("relation", "flip", "mirrored"),
    [
        ("left of", Image.Transpose.FLIP_LEFT_RIGHT, "right of"),
        ("above", Image.Transpose.FLIP_TOP_BOTTOM, "below"),
    ],
)
def test_position_follows_the_picture(relation, flip, mirrored):
    for seed in range(10):
        spec = _spec((1, None, "circle"), (1, None, "square"), relation=relation)
        image = render_scene(spec, seed).image
        assert check_image(image, spec).passed
        assert not check_image(image, _spec((1, None, "circle"), (1, None, "square"), relation=mirrored)).passed
        flipped = image.transpose(flip)
        assert not check_image(flipped, spec).passed
        assert check_image(flipped, _spec((1, None, "circle"), (1, None, "square"), relation=mirrored)).passed


def test_swapped_colour_binding_fails():
    image = render_scene(_spec((1, "red", "circle"), (1, "blue", "square")), 3).image
    assert check_image(image, _spec((1, "red", "circle"), (1, "blue", "square"))).passed
    assert not check_image(image, _spec((1, "blue", "circle"), (1, "red", "square"))).passed


def test_blank_image_fails_every_category():
    blank = Image.new("RGB", (32, 32), COLORS["white"])
    specs = [found[0] for found in prompt_specs().values()]
    scores = score_images([blank] * len(specs), specs)
    assert scores.categories == dict.fromkeys(GENEVAL_CATEGORIES, 0.0)


def test_checker_survives_pixel_noise():
    rng = np.random.default_rng(0)
    specs = [s for found in split_prompts().held_out.values() for s in found]
    passed = []
    for seed, spec in enumerate(specs):
        pixels = np.asarray(render_scene(spec, seed).image).astype(np.float32)
        noisy = np.clip(pixels + rng.normal(0.0, 20.0, pixels.shape), 0, 255).astype(np.uint8)
        passed.append(check_image(noisy, spec).passed)
    assert np.mean(passed) >= 0.95
    noise = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert not any(check_image(noise, spec).passed for spec in specs)


def test_colour_clutter_fails_even_around_the_right_objects():
    spec = _spec((1, "red", "circle"))
    pixels = np.array(render_scene(spec, 4).image)
    assert check_image(pixels, spec).passed
    rng = np.random.default_rng(1)
    clear = ~ndimage.binary_dilation(detect_objects(pixels)[0].mask, iterations=2)
    speckle = clear & (rng.random(clear.shape) < 0.15)  # 1×1 blobs: too small to be objects, but stray colour
    pixels[speckle] = COLORS["blue"]
    result = check_image(pixels, spec)
    assert len(result.detections) == 1
    assert result.clutter == pytest.approx(speckle.mean())
    assert not result.passed
    assert result.failures[0].startswith("cluttered")


def test_blobs_that_are_no_shape_are_not_objects():
    pixels = np.full((32, 32, 3), 255, dtype=np.uint8)
    pixels[4:6, 2:30] = COLORS["red"]  # a 2×28 bar: far longer than wide
    pixels[10:26, 10:26][np.eye(16, dtype=bool) | np.eye(16, k=1, dtype=bool)] = COLORS["green"]  # a thin diagonal
    assert detect_objects(pixels) == []


def test_scores_are_per_category_means():
    red_circle = render_scene(_spec((1, "red", "circle")), 0).image
    images = [red_circle, red_circle, red_circle]
    specs = [_spec((1, None, "circle")), _spec((1, None, "square")), _spec((1, "red", "circle"))]
    scores = score_images(images, specs)
    assert scores.categories == {"single_object": 0.5, "colors": 1.0}
    assert scores.counts == {"single_object": 2, "colors": 1}
    assert scores.overall == 0.75
    with pytest.raises(ValueError, match="pair up"):
        score_images(images, specs[:2])
    with pytest.raises(ValueError, match="nothing"):
        score_images([], [])


def _edit(seed: int = 0):
    specs = [s for found in split_prompts().train.values() for s in found]
    return make_edit(specs, seed)


def test_perfect_edit_scores_full_and_identity_fails_the_object():
    for seed in range(20):
        edit = _edit(seed)
        args = (edit.mask, edit.color, edit.object.shape)
        perfect = check_edit(edit.reference.image, edit.target, *args)
        assert perfect == EditCheck(object_ok=True, iou=1.0, outside_changed=0.0, outside_mae=0.0)
        unchanged = check_edit(edit.reference.image, edit.reference.image, *args)
        assert not unchanged.object_ok
        assert (unchanged.iou, unchanged.outside_changed) == (0.0, 0.0)


def test_edit_outside_changes_are_measured():
    edit = _edit(1)
    before, target = np.asarray(edit.target).astype(int), np.array(edit.target)
    rows = np.arange(32)[:, None] < 10
    touched = rows & ~ndimage.binary_dilation(edit.mask, iterations=3)  # clear of the object and its band
    target[touched] = 255 - target[touched]
    check = check_edit(edit.reference.image, target, edit.mask, edit.color, edit.object.shape)
    outside = ~ndimage.binary_dilation(edit.mask, structure=np.ones((3, 3), bool))  # object + 1-px band left out
    difference = np.abs(255 - 2 * before)[touched]
    assert check.object_ok
    assert check.outside_changed == pytest.approx((difference.max(-1) > 32).sum() / outside.sum())
    assert check.outside_mae == pytest.approx(difference.sum() / (3 * outside.sum()))
    assert check.outside_changed > 0.1


def test_edit_in_the_wrong_colour_or_place_fails():
    edit = _edit(2)
    wrong = np.array(edit.reference.image)
    other = next(c for c in ShapesOptions().colors if c not in {o.color for o in edit.reference.objects} | {edit.color})
    wrong[edit.mask] = COLORS[other]
    assert not check_edit(edit.reference.image, wrong, edit.mask, edit.color, edit.object.shape).object_ok
    shifted = np.roll(np.asarray(edit.target), 12, axis=1)
    assert check_edit(edit.reference.image, shifted, edit.mask, edit.color, edit.object.shape).iou < 0.5


def test_score_edits_averages():
    checks = [EditCheck(True, 1.0, 0.0, 0.0), EditCheck(False, 0.2, 0.5, 10.0)]
    scores = score_edits(checks)
    assert (scores.accuracy, scores.mean_iou, scores.outside_changed, scores.outside_mae, scores.n) == (
        0.5,
        0.6,
        0.25,
        5.0,
        2,
    )
    with pytest.raises(ValueError, match="nothing"):
        score_edits([])


def test_bad_input_names_the_argument():
    edit = _edit(0)
    with pytest.raises(ValueError, match="image"):
        detect_objects(np.zeros((32, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match="edited"):
        check_edit(edit.reference.image, np.zeros((32, 32, 4), np.uint8), edit.mask, edit.color, "circle")
    with pytest.raises(ValueError, match="must match in size"):
        check_edit(edit.reference.image, edit.target.resize((16, 16)), edit.mask, edit.color, "circle")
    with pytest.raises(ValueError, match="color"):
        check_edit(edit.reference.image, edit.target, edit.mask, "orange", "circle")
    with pytest.raises(ValidationError, match="colors"):
        CheckerOptions(colors=("red", "white"))
    with pytest.raises(ValidationError, match="max_color_distance"):
        CheckerOptions(max_color_distance=0)
