"""The colour-word baseline: perfect where colour identifies the object, fooled by a same-coloured distractor."""

from __future__ import annotations

import numpy as np
import pytest
from genseg_helpers import scene_samples
from PIL import Image
from pydantic import ValidationError

from ming_genseg import ColorThresholdOptions, clean_mask, color_threshold_segment, color_words, mask_iou, recolor
from ming_testdata import COLORS, SceneOptions, make_scenes


def test_color_words():
    assert color_words("the Red circle left of the BLUE square") == ("red", "blue")
    assert color_words("a grey cat, a violet hat") == ("gray", "purple")
    assert color_words("the redder one, bluish") == ()


def test_every_testdata_colour_is_read_as_its_name():
    for name, rgb in COLORS.items():
        image = Image.new("RGB", (12, 12), rgb)
        assert color_threshold_segment(image, f"the {name} thing").all(), name


def test_on_scenes_with_distinct_colours_the_baseline_finds_each_object():
    # ming-testdata gives every object of a scene its own colour, so colour alone identifies it.
    samples = scene_samples(10, 5, 96, occlusion=True)
    for sample in samples:
        assert np.array_equal(color_threshold_segment(sample.image, sample.expression), clean_mask(sample.mask))


def test_a_same_coloured_distractor_fools_it():
    options = SceneOptions(n=1, seed=7, width=96, height=96, min_objects=2, max_objects=2, occlusion=False)
    scene = make_scenes(options)[0]
    target, other = scene.objects
    image = recolor(scene.image, other.mask, target.rgb, 0.0)  # the other shape now has the target's colour
    found = color_threshold_segment(image, f"the {target.color} {target.shape}")
    assert np.array_equal(found, target.mask | other.mask)
    assert mask_iou(found, target.mask) == pytest.approx(target.area / (target.area + other.area))


def test_no_colour_word_gives_an_empty_mask_and_a_tight_threshold_selects_less():
    image = Image.new("RGB", (20, 20), (240, 130, 30))  # an orange about 11 ΔE from the "orange" prototype
    assert not color_threshold_segment(image, "the thing on the left").any()
    assert color_threshold_segment(image, "the orange square").all()
    assert not color_threshold_segment(image, "the orange square", ColorThresholdOptions(max_distance=1.0)).any()


def test_bad_input_names_the_field():
    with pytest.raises(ValidationError) as error:
        color_threshold_segment(Image.new("LA", (4, 4)), "the red cup")
    assert error.value.errors()[0]["loc"] == ("image",)
    with pytest.raises(ValidationError) as error:
        color_threshold_segment(Image.new("RGB", (4, 4)), "")
    assert error.value.errors()[0]["loc"] == ("expression",)
