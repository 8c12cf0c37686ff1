"""Checks shared by the requests and functions of the package; every failure names its field."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import numpy as np
from PIL import Image
from pydantic import PlainValidator, ValidationError, validate_call
from pydantic_core import InitErrorDetails, PydanticCustomError

_F = TypeVar("_F", bound=Callable[..., Any])


def checked(func: _F) -> _F:
    """``pydantic.validate_call`` whose errors name each argument even when it is passed by position (validate_call
    alone locates positional arguments by index)."""
    validated = validate_call(func)
    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return validated(**signature.bind(*args, **kwargs).arguments)

    return wrapper  # type: ignore[return-value]


def _rgb_image(value: Any) -> Image.Image:
    if not isinstance(value, Image.Image):
        raise ValueError(f"must be a PIL.Image.Image, got {type(value).__module__}.{type(value).__qualname__}")
    if value.mode != "RGB":
        raise ValueError(f"must be an RGB image, got mode {value.mode!r}; convert it with image.convert('RGB')")
    if value.width == 0 or value.height == 0:
        raise ValueError(f"is empty ({value.width}x{value.height})")
    return value


def _expression(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {type(value).__name__}")
    collapsed = " ".join(value.split())
    if not collapsed:
        raise ValueError("must not be empty (a referring expression such as 'the red circle on the left')")
    if not any(char.isalnum() for char in collapsed):
        raise ValueError(f"must name something (a word or number), got only punctuation {value!r}")
    return collapsed


def as_mask(value: Any, name: str) -> np.ndarray:
    """``value`` as a 2-D bool array; a ``ValueError`` naming ``name`` unless it is bool or holds only 0 and 1."""
    array = np.asarray(value)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (height, width) mask, got shape {array.shape}")
    if array.dtype == bool:
        return array
    if array.dtype.kind not in "iuf" or not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must be boolean (or hold only 0 and 1); threshold it first, e.g. {name} > 0")
    return array.astype(bool)


RGBImage = Annotated[Image.Image, PlainValidator(_rgb_image)]
"""A non-empty PIL image in mode ``"RGB"``."""

Expression = Annotated[str, PlainValidator(_expression)]
"""A referring expression with at least one word, whitespace runs collapsed to one space."""

BoolMask = Annotated[np.ndarray, PlainValidator(lambda value: as_mask(value, "mask"))]
"""A 2-D boolean mask (0/1 arrays are converted)."""


def field_error(title: str, field: str, message: str, value: Any) -> ValidationError:
    """A validation error located at ``field``, for checks across fields (a plain ValueError would have no location)."""
    error = PydanticCustomError("value_error", "{message}", {"message": message})
    return ValidationError.from_exception_data(title, [InitErrorDetails(type=error, loc=(field,), input=value)])
