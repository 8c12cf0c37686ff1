"""Options shared by the image and video makers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .palette import BACKGROUND_COLORS, OBJECT_COLORS, SHAPES, ColorName, ShapeName

_MIN_PIXELS = 4  # smallest shape diameter, in pixels, that still shows which shape it is


class CanvasOptions(BaseModel):
    """Count, seed, size and colours of made images."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(8, ge=1, description="Number of samples.")
    seed: int = Field(0, ge=0, description="Random seed; sample i depends only on (seed, i).")
    width: int = Field(64, ge=16, le=2048, description="Width in pixels.")
    height: int = Field(64, ge=16, le=2048, description="Height in pixels.")
    colors: tuple[ColorName, ...] = Field(OBJECT_COLORS, min_length=1, description="Colours to draw objects in.")
    backgrounds: tuple[ColorName, ...] = Field(BACKGROUND_COLORS, min_length=1, description="Background colours.")


class ShapeOptions(CanvasOptions):
    """Which shapes, how many and how large (sizes are circumscribed-circle diameters / the shorter side)."""

    min_objects: int = Field(1, ge=1, le=10, description="Fewest objects per sample.")
    max_objects: int = Field(3, ge=1, le=10, description="Most objects per sample.")
    shapes: tuple[ShapeName, ...] = Field(SHAPES, min_length=1, description="Shapes to draw.")
    min_size: float = Field(0.2, gt=0.0, le=1.0, description="Smallest shape diameter, fraction of the shorter side.")
    max_size: float = Field(0.45, gt=0.0, le=1.0, description="Largest shape diameter, fraction of the shorter side.")

    @model_validator(mode="after")
    def _check_ranges(self) -> ShapeOptions:
        if self.min_objects > self.max_objects:
            raise ValueError(f"min_objects ({self.min_objects}) must not exceed max_objects ({self.max_objects})")
        if self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) must not exceed max_size ({self.max_size})")
        if self.min_size * min(self.width, self.height) < _MIN_PIXELS:
            raise ValueError(f"min_size ({self.min_size}) makes shapes smaller than {_MIN_PIXELS} pixels")
        # Objects of one sample get distinct colours, all unlike the background, so colour identifies the object.
        for background in self.backgrounds:
            usable = set(self.colors) - {background}
            if len(usable) < self.max_objects:
                raise ValueError(
                    f"colors has {len(usable)} colours other than background {background!r}, "
                    f"fewer than max_objects ({self.max_objects})"
                )
        return self
