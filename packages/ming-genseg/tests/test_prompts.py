"""Edit prompts: wording, the contrast rule for the colour, and request validation naming the field."""

from __future__ import annotations

import numpy as np
import pytest
from genseg_helpers import scene_samples, textured_image
from PIL import Image
from pydantic import ValidationError

from ming_genseg import (
    CONFLICT_DISTANCE,
    EDIT_COLORS,
    EDIT_TEMPLATES,
    NAMED_COLORS,
    SegmentationOptions,
    SegmentationRequest,
    choose_edit_color,
    describe_object,
    edit_prompt,
    synthesize_pair,
)
from ming_genseg.colors import _to_lab


@pytest.mark.parametrize(
    ("expression", "template", "prompt"),
    [
        ("the banana", "color {target} {color}", "color the banana purple"),
        ("The banana.", "color {target} {color}", "color the banana purple"),
        ("man   on left", "color {target} {color}", "color the man on left purple"),
        ("A red circle on the left!", "paint {target} {color}", "paint a red circle on the left purple"),
        ("Those two cups", "recolor {target} in {color}", "recolor those two cups in purple"),
        ("{odd} braces", "color {target} {color}", "color the {odd} braces purple"),
    ],
)
def test_edit_prompt_wording(expression, template, prompt):
    assert edit_prompt(expression, "purple", template) == prompt


@pytest.mark.parametrize(
    ("args", "loc", "message"),
    [
        (("  ", "purple"), ("expression",), "must not be empty"),
        (("...", "purple"), ("expression",), "only punctuation"),
        (("the cat", 3), ("color",), "'purple'"),
        (("the cat", "black"), ("color",), "'purple'"),
        (("the cat", "purple", "color {target}"), ("template",), "once each"),
        (("the cat", "purple", "color {target} {colour}"), ("template",), "no other field"),
    ],
)
def test_edit_prompt_rejects_bad_arguments_naming_them(args, loc, message):
    with pytest.raises(ValidationError, match=message) as error:
        edit_prompt(*args)
    assert error.value.errors()[0]["loc"] == loc


def test_describe_object():
    assert describe_object("circle", "red", "top left") == "the red circle at the top left"
    assert describe_object("star", "blue", "center") == "the blue star in the center"


def test_every_template_has_both_placeholders():
    for template in EDIT_TEMPLATES:
        prompt = edit_prompt("the cat", "green", template)
        assert "the cat" in prompt
        assert prompt.endswith("green")
        assert SegmentationOptions(template=template).template == template


def _lab(color: str) -> np.ndarray:
    return _to_lab(np.array(NAMED_COLORS[color], dtype=np.uint8))


def test_lab_values_match_the_cielab_reference():
    # sRGB → CIELAB (D50, as littleCMS computes it), to the 8-bit Lab steps: catches a change in Pillow's transform.
    lab = _to_lab(np.array([[255, 0, 0], [0, 0, 255], [255, 255, 255]], dtype=np.uint8))
    np.testing.assert_allclose(lab, [[54.1, 81, 70], [29.4, 68, -112], [100, 0, 0]], atol=1)


def test_the_choice_contrasts_with_the_background():
    for background in ((255, 255, 255), (240, 240, 235)):
        assert _lab(choose_edit_color(Image.new("RGB", (50, 40), background)))[0] < 50  # a dark colour on white
    for background in ((0, 0, 0), (128, 128, 128)):
        assert _lab(choose_edit_color(Image.new("RGB", (50, 40), background)))[0] > 70  # a light one on black/gray


def test_a_colour_present_in_the_image_is_avoided():
    # Stripes of every palette colour but one: only the missing one has no conflicting pixel.
    for missing in EDIT_COLORS:
        stripes = [NAMED_COLORS[c] for c in EDIT_COLORS if c != missing]
        image = Image.fromarray(np.repeat(np.array([stripes], dtype=np.uint8), 12, axis=0).repeat(4, axis=1))
        assert choose_edit_color(image) == missing


def test_on_scenes_the_choice_is_far_from_every_object_and_the_background():
    for sample in scene_samples(10, 0, 80):
        color = SegmentationRequest(image=sample.image, expression=sample.expression).edit().color
        present = np.unique(np.asarray(sample.image).reshape(-1, 3), axis=0)
        distance = np.linalg.norm(_to_lab(present) - _lab(color), axis=-1)
        assert distance.min() > CONFLICT_DISTANCE


def test_the_choice_does_not_depend_on_image_size():
    # A textured image with a patch of each of two palette colours: a resampling filter mixes colours at every
    # edge and changes the pixel noise, and the choice must survive that.
    rng = np.random.default_rng(1)
    pixels = np.asarray(textured_image(96, 96, rng)).copy()
    pixels[10:40, 10:40] = NAMED_COLORS["purple"]
    pixels[50:80, 50:80] = NAMED_COLORS["blue"]
    image = Image.fromarray(pixels, "RGB")
    chosen = choose_edit_color(image)
    assert chosen not in ("purple", "blue")
    for size in ((512, 512), (300, 173), (61, 77)):
        assert choose_edit_color(image.resize(size, Image.Resampling.LANCZOS)) == chosen, size


def test_colours_named_in_the_expression_are_never_chosen():
    white = Image.new("RGB", (32, 32), "white")
    first = choose_edit_color(white)
    request = SegmentationRequest(image=white, expression=f"the {first.upper()} cup")
    assert request.edit().color != first
    assert choose_edit_color(white, exclude=(first,)) == request.edit().color
    with pytest.raises(ValueError, match="no colour left"):
        choose_edit_color(white, ("red", "blue"), exclude=("blue", "red"))
    forced = SegmentationRequest(image=white, expression="the red cup", options=SegmentationOptions(color="red"))
    assert forced.edit().prompt == "color the red cup red"  # an explicit colour is the caller's choice


def test_no_palette_colour_left_is_a_field_error_at_options():
    image = Image.new("RGB", (8, 8))
    options = SegmentationOptions(palette=("red", "blue"))
    request = SegmentationRequest(image=image, expression="the red cup by the grey and blue box", options=options)
    with pytest.raises(ValidationError, match="named in the expression") as error:
        request.edit()
    assert error.value.errors()[0]["loc"] == ("options",)
    mask = np.zeros((8, 8), dtype=bool)
    with pytest.raises(ValidationError, match="named in the expression") as error:
        synthesize_pair(image, mask, "the violet cup", {"palette": ("purple",)})
    assert error.value.errors()[0]["loc"] == ("options",)


def test_request_edit_uses_the_options():
    white = Image.new("RGB", (32, 32), "white")
    options = SegmentationOptions(palette=("yellow", "pink"), template="make {target} {color}")
    instruction = SegmentationRequest(image=white, expression="the bowl", options=options).edit()
    assert instruction.color in ("yellow", "pink")
    assert instruction.prompt == f"make the bowl {instruction.color}"
    assert instruction.rgb == NAMED_COLORS[instruction.color]


@pytest.mark.parametrize(
    ("kwargs", "loc", "message"),
    [
        ({"image": np.zeros((8, 8, 3), np.uint8)}, ("image",), "PIL.Image.Image"),
        ({"image": Image.new("L", (8, 8))}, ("image",), r"mode 'L'.*convert\('RGB'\)"),
        ({"image": Image.new("RGBA", (8, 8))}, ("image",), "mode 'RGBA'"),
        ({"image": Image.new("RGB", (0, 8))}, ("image",), "empty"),
        ({"expression": ""}, ("expression",), "must not be empty"),
        ({"expression": " \n\t "}, ("expression",), "must not be empty"),
        ({"expression": 7}, ("expression",), "must be a string"),
        ({"options": {"template": "color {target}"}}, ("options", "template"), "once each"),
        ({"options": {"template": "color {target} {color} {size}"}}, ("options", "template"), "no other field"),
        ({"options": {"template": "color {target"}}, ("options", "template"), "not a valid format string"),
        ({"options": {"color": "violet"}}, ("options", "color"), "purple"),
        ({"options": {"palette": ()}}, ("options", "palette"), "at least 1"),
        ({"options": {"mask": {"radius": 1.5}}}, ("options", "mask", "radius"), "less than 1"),
        ({"expression": " ...!? "}, ("expression",), "only punctuation"),
        ({"prompt": "x"}, ("prompt",), "Extra inputs"),
    ],
)
def test_bad_request_names_the_field(kwargs, loc, message):
    arguments = {"image": Image.new("RGB", (8, 8)), "expression": "the cup", **kwargs}
    with pytest.raises(ValidationError, match=message) as error:
        SegmentationRequest(**arguments)
    assert error.value.errors()[0]["loc"] == loc
