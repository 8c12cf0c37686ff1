"""Options shared by the image and video makers, and cross-field errors that name their field."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from .palette import BACKGROUND_COLORS, OBJECT_COLORS, SHAPES, ColorName, ShapeName

_MIN_PIXELS = 4  # smallest shape diameter, in pixels, that still shows which shape it is

# Limits and descriptions of the fields whose default a subclass changes: subclasses call option_field too, so only
# the default can differ.
_FIELDS: dict[str, dict[str, Any]] = {
    "width": {"ge": 16, "le": 2048, "description": "Width in pixels."},
    "height": {"ge": 16, "le": 2048, "description": "Height in pixels."},
    "max_objects": {"ge": 1, "le": 10, "description": "Most objects per sample."},
    "min_size": {"gt": 0.0, "le": 1.0, "description": "Smallest shape diameter, fraction of the shorter side."},
    "max_size": {"gt": 0.0, "le": 1.0, "description": "Largest shape diameter, fraction of the shorter side."},
}


def option_field(name: str, default: Any) -> Any:
    """``Field(default)`` with the shared limits and description of field ``name``."""
    return Field(default, **_FIELDS[name])


def field_error(model: BaseModel, field: str, message: str) -> ValidationError:
    """A validation error located at ``field``: a ValueError raised in a model validator would have no location."""
    error = PydanticCustomError("value_error", "{message}", {"message": message})
    details = InitErrorDetails(type=error, loc=(field,), input=getattr(model, field))
    return ValidationError.from_exception_data(type(model).__name__, [details])


class CanvasOptions(BaseModel):
    """Count, seed, size and colours of made images."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(8, ge=1, description="Number of samples.")
    seed: int = Field(0, ge=0, description="Random seed; sample i depends only on (seed, i).")
    width: int = option_field("width", 64)
    height: int = option_field("height", 64)
    colors: tuple[ColorName, ...] = Field(OBJECT_COLORS, min_length=1, description="Colours to draw objects in.")
    backgrounds: tuple[ColorName, ...] = Field(BACKGROUND_COLORS, min_length=1, description="Background colours.")

    def _colors_per_sample(self) -> int:
        return 1

    @model_validator(mode="after")
    def _check_palette(self) -> CanvasOptions:
        # Objects of one sample get distinct colours, all unlike the background, so colour identifies the object.
        needed = self._colors_per_sample()
        for background in self.backgrounds:
            usable = len(set(self.colors) - {background})
            if usable < needed:
                raise field_error(
                    self,
                    "colors",
                    f"colors has {usable} colours other than background {background!r}; a sample needs {needed} "
                    "(one per object)",
                )
        return self


class ShapeOptions(CanvasOptions):
    """Which shapes, how many and how large (sizes are circumscribed-circle diameters / the shorter side)."""

    min_objects: int = Field(1, ge=1, le=10, description="Fewest objects per sample.")
    max_objects: int = option_field("max_objects", 3)
    shapes: tuple[ShapeName, ...] = Field(SHAPES, min_length=1, description="Shapes to draw.")
    min_size: float = option_field("min_size", 0.2)
    max_size: float = option_field("max_size", 0.45)
    min_visible: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="Fraction of each shape's area that must stay visible under later shapes (in every frame of a "
        "video); a shape always keeps at least one pixel.",
    )

    def _colors_per_sample(self) -> int:
        return self.max_objects

    @model_validator(mode="after")
    def _check_ranges(self) -> ShapeOptions:
        if self.min_objects > self.max_objects:
            raise field_error(
                self,
                "min_objects",
                f"min_objects ({self.min_objects}) must not exceed max_objects ({self.max_objects})",
            )
        if self.min_size > self.max_size:
            raise field_error(
                self, "min_size", f"min_size ({self.min_size}) must not exceed max_size ({self.max_size})"
            )
        if self.min_size * min(self.width, self.height) < _MIN_PIXELS:
            raise field_error(
                self, "min_size", f"min_size ({self.min_size}) makes shapes smaller than {_MIN_PIXELS} pixels"
            )
        return self
