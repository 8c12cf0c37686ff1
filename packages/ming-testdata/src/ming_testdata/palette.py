"""The named colours and shapes that images and videos are drawn with."""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal, get_args

ColorName = Literal[
    "red", "green", "blue", "yellow", "orange", "purple", "cyan", "magenta", "brown", "pink", "white", "black", "gray"
]
"""A colour of :data:`COLORS`."""

ShapeName = Literal["circle", "square", "triangle", "diamond", "pentagon", "hexagon", "star"]
"""A shape that scenes and videos can hold."""

COLORS: MappingProxyType[str, tuple[int, int, int]] = MappingProxyType(
    {
        "red": (220, 30, 30),
        "green": (30, 160, 60),
        "blue": (30, 80, 220),
        "yellow": (240, 210, 40),
        "orange": (245, 130, 20),
        "purple": (130, 50, 170),
        "cyan": (40, 200, 210),
        "magenta": (220, 40, 180),
        "brown": (130, 80, 40),
        "pink": (250, 160, 190),
        "white": (255, 255, 255),
        "black": (0, 0, 0),
        "gray": (128, 128, 128),
    }
)
"""RGB value of each colour name; all distinct, so a pixel's colour names its object."""

SHAPES: tuple[ShapeName, ...] = get_args(ShapeName)
"""Every shape name."""

OBJECT_COLORS: tuple[ColorName, ...] = (
    "red",
    "green",
    "blue",
    "yellow",
    "orange",
    "purple",
    "cyan",
    "magenta",
    "brown",
    "pink",
)
"""Default colours of objects (the chromatic ones)."""

BACKGROUND_COLORS: tuple[ColorName, ...] = ("white", "black", "gray")
"""Default background colours."""
