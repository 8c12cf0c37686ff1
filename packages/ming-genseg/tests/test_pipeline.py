"""segment() on any object with the EditingPipeline interface (a fake, perfectly trained editor here)."""

from __future__ import annotations

import numpy as np
import pytest
from genseg_helpers import RecolorPipeline, scene_samples, shape_mask, textured_image
from PIL import Image, ImageDraw
from pydantic import ValidationError

from ming_genseg import EditingPipeline, SegmentationOptions, color_words, mask_iou, segment


def test_a_perfect_editor_gives_the_exact_mask():
    rng = np.random.default_rng(0)
    for width, height in ((48, 80), (200, 150)):
        image = textured_image(width, height, rng)
        mask = shape_mask(width, height, "star", rng)
        pipeline = RecolorPipeline(mask)
        result = segment(image, "the star", pipeline, seed=7)
        assert np.array_equal(result.mask, mask)
        assert pipeline.prompts == [result.prompt] == [f"color the star {result.color}"]
        assert pipeline.seeds == [7]
        assert result.edited.size == image.size


def test_segment_on_scenes_with_the_paper_wording():
    for sample in scene_samples(5, 2, 96):
        result = segment(sample.image, sample.expression, RecolorPipeline(sample.mask))
        assert np.array_equal(result.mask, sample.mask)
        assert result.color not in color_words(sample.expression)


def test_options_reach_the_prompt_and_the_extraction():
    image = Image.new("RGB", (64, 64), "white")
    mask = np.zeros((64, 64), dtype=bool)
    mask[10:40, 20:50] = True
    options = SegmentationOptions(color="green", template="paint {target} {color}")
    result = segment(image, "box", RecolorPipeline(mask), options)
    assert (result.prompt, result.color) == ("paint the box green", "green")
    assert np.array_equal(result.mask, mask)
    strict = SegmentationOptions(color="green", mask={"min_contrast": 400})  # white to green is 337 apart
    assert not segment(image, "box", RecolorPipeline(mask), strict).mask.any()


class _Unchanged:
    def edit(self, image: Image.Image, prompt: str, *, seed: int | None = None) -> Image.Image:
        return image


class _DrawsOnItsInput:
    """Paints in place and returns its input: the reference the mask is measured against must not change."""

    def edit(self, image: Image.Image, prompt: str, *, seed: int | None = None) -> Image.Image:
        ImageDraw.Draw(image).rectangle((5, 5, 20, 20), fill=(3, 67, 223) if "blue" in prompt else (255, 255, 20))
        return image


def test_an_editor_that_changes_nothing_gives_an_empty_mask():
    assert not segment(Image.new("RGB", (40, 40), "gray"), "the cat", _Unchanged()).mask.any()


def test_an_editor_drawing_on_its_input_does_not_corrupt_the_reference():
    image = Image.new("RGB", (40, 40), "white")
    result = segment(image, "the square", _DrawsOnItsInput())
    assert result.mask.sum() == 16 * 16
    assert result.mask[5:21, 5:21].all()
    assert np.asarray(image).min() == 255  # the caller's image is untouched too


class _Returns:
    def __init__(self, value):
        self.value = value

    def edit(self, image, prompt, *, seed=None):
        return self.value


class _NotCallable:
    edit = "paint it"


def test_the_interface_is_checked():
    assert isinstance(RecolorPipeline(np.zeros((2, 2), bool)), EditingPipeline)
    image = Image.new("RGB", (16, 16))
    for pipeline in (object(), _NotCallable()):
        with pytest.raises(TypeError, match="edit"):
            segment(image, "the cat", pipeline)
    with pytest.raises(TypeError, match="ndarray, not a PIL image"):
        segment(image, "the cat", _Returns(np.zeros((16, 16, 3), np.uint8)))
    with pytest.raises(ValueError, match="returned a L image"):
        segment(image, "the cat", _Returns(Image.new("L", (16, 16))))


class _Resizes(RecolorPipeline):
    """A perfect editor that returns its edit at 64 × 64, as an editor working at a fixed bucket size might."""

    def edit(self, image: Image.Image, prompt: str, *, seed: int | None = None) -> Image.Image:
        return super().edit(image, prompt, seed=seed).resize((64, 64), Image.Resampling.BILINEAR)


def test_an_edit_of_another_size_is_resized_back():
    rng = np.random.default_rng(3)
    image = textured_image(300, 200, rng)
    # Down to 64² and back blurs the edge by about a pixel (measured IoU 0.995-0.998); a star also loses the tips
    # that are thinner than a 64² pixel (measured 0.978-0.982).
    for kind, least_iou in (("ellipse", 0.99), ("rectangle", 0.99), ("star", 0.97)):
        mask = shape_mask(300, 200, kind, rng)
        result = segment(image, f"the {kind}", _Resizes(mask))
        assert result.edited.size == image.size
        assert mask_iou(result.mask, mask) >= least_iou, kind


def test_bad_request_is_rejected_before_the_editor_runs():
    pipeline = RecolorPipeline(np.zeros((8, 8), bool))
    with pytest.raises(ValidationError) as error:
        segment(Image.new("RGB", (8, 8)), "", pipeline)
    assert error.value.errors()[0]["loc"] == ("expression",)
    with pytest.raises(ValidationError) as error:
        segment(Image.new("RGBA", (8, 8)), "the cat", pipeline)
    assert error.value.errors()[0]["loc"] == ("image",)
    assert pipeline.prompts == []
