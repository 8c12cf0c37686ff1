"""Edit prompts: a referring expression becomes a colouring edit (paper §2.3: "segment the banana" → "color the
banana purple").

**Template.** ``template.format(target=..., color=...)`` with the default :data:`DEFAULT_TEMPLATE`
``"color {target} {color}"``. The target is the expression with whitespace collapsed and trailing punctuation
removed; a leading determiner is lower-cased, and ``"the "`` is put in front when the expression starts without one
(RefCOCO expressions are often bare: "man on left" → "color the man on left purple").

**Colour.** ``options.color`` when given, otherwise :func:`~ming_genseg.choose_edit_color` over ``options.palette``
minus the colours the expression names (the rule is documented in :mod:`ming_genseg.colors`).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Annotated

from PIL import Image
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ._validation import Expression, RGBImage, checked, field_error
from .colors import EDIT_COLORS, NAMED_COLORS, RGB, EditColorName, choose_edit_color, color_words
from .extraction import MaskOptions

__all__ = [
    "DEFAULT_TEMPLATE",
    "EDIT_TEMPLATES",
    "EditInstruction",
    "EditOptions",
    "SegmentationOptions",
    "SegmentationRequest",
    "Template",
    "describe_object",
    "edit_prompt",
]

EDIT_TEMPLATES: tuple[str, ...] = (
    "color {target} {color}",
    "paint {target} {color}",
    "make {target} {color}",
    "turn {target} {color}",
    "recolor {target} in {color}",
)
"""Paraphrases of the colouring edit (vary them when building training pairs); each has ``{target}`` and
``{color}``."""

DEFAULT_TEMPLATE = EDIT_TEMPLATES[0]
"""The paper's wording: ``"color {target} {color}"``."""

_DETERMINERS = frozenset(
    {"the", "a", "an", "this", "that", "these", "those", "my", "your", "his", "her", "its", "our", "their"}
    | {"each", "every", "all", "both", "either", "neither"}
)
_TRAILING = ".!?;:, "


def _check_template(template: str) -> str:
    try:
        fields = sorted(name for _, name, _, _ in string.Formatter().parse(template) if name is not None)
    except ValueError as error:
        raise ValueError(f"template {template!r} is not a valid format string ({error})") from None
    if fields != ["color", "target"]:
        raise ValueError(f"template must hold {{target}} and {{color}} once each and no other field, got {template!r}")
    return template


Template = Annotated[str, AfterValidator(_check_template)]
"""An edit instruction with the placeholders ``{target}`` and ``{color}``, once each, e.g. :data:`DEFAULT_TEMPLATE`."""


@checked
def edit_prompt(expression: Expression, color: EditColorName, template: Template = DEFAULT_TEMPLATE) -> str:
    """The edit instruction for ``expression`` painted in ``color`` (rule in the module docstring).

    >>> edit_prompt("The banana.", "purple")
    'color the banana purple'
    >>> edit_prompt("man on left", "green", "paint {target} {color}")
    'paint the man on left green'

    Raises:
        pydantic.ValidationError: a bad argument, named in the error (blank or punctuation-only ``expression``,
            ``color`` not an :data:`~ming_genseg.EditColorName`, ``template`` without both placeholders).
    """
    target = expression.rstrip(_TRAILING)
    first, _, rest = target.partition(" ")
    target = f"{first.lower()} {rest}".rstrip() if first.lower() in _DETERMINERS else f"the {target}"
    return template.format(target=target, color=color)


@checked
def describe_object(shape: str, color: str, position: str) -> str:
    """A referring expression from an object's attributes, as synthetic scenes label them.

    >>> describe_object("circle", "red", "top left")
    'the red circle at the top left'
    >>> describe_object("square", "blue", "center")
    'the blue square in the center'
    """
    where = "in the center" if position == "center" else f"at the {position}"
    return f"the {color} {shape} {where}"


@dataclass(frozen=True)
class EditInstruction:
    """What the editor is asked to do.

    Attributes:
        prompt: the edit instruction, e.g. ``"color the banana purple"``.
        color: the colour name it paints with.
        rgb: that colour's sRGB value (:data:`~ming_genseg.NAMED_COLORS`), which mask extraction looks for.
    """

    prompt: str
    color: EditColorName
    rgb: RGB


class EditOptions(BaseModel):
    """How the colouring edit is worded and which colour it uses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    color: EditColorName | None = Field(None, description="Edit colour; None: chosen per image (contrast rule).")
    palette: tuple[EditColorName, ...] = Field(
        EDIT_COLORS, min_length=1, description="Candidates of the automatic choice, preferred first."
    )
    template: Template = Field(DEFAULT_TEMPLATE, description="Instruction with {target} and {color} placeholders.")


class SegmentationOptions(EditOptions):
    """Options of :func:`~ming_genseg.segment`: the edit, and how its mask is read back."""

    mask: MaskOptions = Field(default_factory=MaskOptions, description="Mask extraction thresholds.")


def _instruction(title: str, image: Image.Image, expression: str, options: EditOptions) -> EditInstruction:
    """The edit for ``expression``; a field error at ``options`` (titled ``title``) when no palette colour is left."""
    color = options.color
    if color is None:
        named = color_words(expression)
        if set(options.palette) <= set(named):
            message = (
                f"every colour of options.palette {options.palette} is named in the expression, so none would show "
                "as an edit; add palette colours or set options.color"
            )
            raise field_error(title, "options", message, options)
        color = choose_edit_color(image, options.palette, exclude=named)
    return EditInstruction(edit_prompt(expression, color, options.template), color, NAMED_COLORS[color])


class SegmentationRequest(BaseModel):
    """One referring-segmentation request: which object of which image.

    Bad input raises ``pydantic.ValidationError`` located at the field: ``image`` not a PIL image, not mode
    ``"RGB"`` or empty; ``expression`` not a string, blank or only punctuation; options out of range. :meth:`edit`
    raises one at ``options`` when no palette colour is left once the colours the expression names are set aside.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: RGBImage = Field(description="The picture (PIL, mode RGB).")
    expression: Expression = Field(description="Referring expression, e.g. 'the red circle on the left'.")
    options: SegmentationOptions = Field(default_factory=SegmentationOptions, description="Edit and mask options.")

    def edit(self) -> EditInstruction:
        """The colouring edit for this request: prompt, colour name and its RGB.

        Raises:
            pydantic.ValidationError: at ``options``, when every palette colour is named in the expression.
        """
        return _instruction(type(self).__name__, self.image, self.expression, self.options)
