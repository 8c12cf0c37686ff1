"""Edit prompts: wording, the contrast rule for the colour, and request validation naming the field."""

from __future__ import annotations

import numpy as np
import pytest
from genseg_helpers import scene_samples
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
    edit_prompt,
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


def test_every_template_has_both_placeholders():
    for template in EDIT_TEMPLATES:
        prompt = edit_prompt("the cat", "green", template)
        assert "the cat" in prompt
        assert prompt.endswith("green")
        assert SegmentationOptions(template=template).template == template


def _lab(color: str) -> np.ndarray:
    return _to_lab(np.array(NAMED_COLORS[color], dtype=np.uint8))


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
    for sample in scene_samples(4, 1, 64):
        small = choose_edit_color(sample.image)
        assert choose_edit_color(sample.image.resize((512, 512), Image.Resampling.NEAREST)) == small
        assert choose_edit_color(sample.image.resize((300, 173), Image.Resampling.NEAREST)) == small


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
        ({"options": {"palette": ("red",)}, "expression": "the red cup"}, ("options",), "named in the expression"),
        ({"prompt": "x"}, ("prompt",), "Extra inputs"),
    ],
)
def test_bad_request_names_the_field(kwargs, loc, message):
    arguments = {"image": Image.new("RGB", (8, 8)), "expression": "the cup", **kwargs}
    with pytest.raises(ValidationError, match=message) as error:
        SegmentationRequest(**arguments)
    assert error.value.errors()[0]["loc"] == loc
