"""What a user passes to the processor: chat messages with text, images, videos and audio (paper §2's inputs).

Each piece of content is a pydantic model, so a bad message (an unknown role, an image that cannot be decoded, audio
at another rate than 16 kHz, a video without a frame rate) fails with a ``ValidationError`` naming the field.
Nothing is resampled or truncated here: audio must already be at 16 kHz (the audio encoder's rate).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from ming_contextasr import SAMPLE_RATE, ContextASRRequest

__all__ = [
    "AudioContent",
    "Content",
    "ImageContent",
    "Message",
    "TextContent",
    "VideoContent",
    "validate_conversation",
]


def _as_rgb(value: Any, name: str) -> Image.Image:
    """A PIL RGB image from a PIL image, a path or an ``(H, W, 3)`` uint8 array."""
    if isinstance(value, (str, Path)):
        try:
            with Image.open(value) as opened:
                opened.load()
                value = opened.copy()
        except (OSError, UnidentifiedImageError) as error:
            raise ValueError(f"{name}: cannot decode image file {str(value)!r} ({error})") from None
    elif isinstance(value, np.ndarray):
        if value.dtype != np.uint8 or value.ndim != 3 or value.shape[-1] != 3:
            raise ValueError(f"{name}: an array image must be (H, W, 3) uint8, got {value.shape} {value.dtype}")
        value = Image.fromarray(value)
    if not isinstance(value, Image.Image):
        raise ValueError(f"{name}: expected a PIL image, a path or an (H, W, 3) uint8 array, got {type(value)}")
    if min(value.size) < 1:
        raise ValueError(f"{name}: image is empty ({value.size})")
    return value.convert("RGB")


class TextContent(BaseModel):
    """Plain text."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["text"] = "text"
    text: str


class ImageContent(BaseModel):
    """An image: PIL image, path to an image file, or ``(H, W, 3)`` uint8 array; stored as PIL RGB."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    type: Literal["image"] = "image"
    image: Any

    @field_validator("image", mode="before")
    @classmethod
    def _decode(cls, value: Any) -> Image.Image:
        return _as_rgb(value, "image")


class VideoContent(BaseModel):
    """A video: its frames (``(T, H, W, 3)`` uint8 array, or a list of images of one size) and frame rate.

    The processor samples ``config.video_fps`` frames per second from it (between ``video_min_frames`` and
    ``video_max_frames``, an even number for the temporal patch of 2).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    type: Literal["video"] = "video"
    frames: Any
    fps: float = Field(gt=0, description="Frame rate of `frames`.")

    @field_validator("frames", mode="before")
    @classmethod
    def _decode(cls, value: Any) -> list[Image.Image]:
        if isinstance(value, np.ndarray):
            if value.ndim != 4:
                raise ValueError(f"frames: an array video must be (T, H, W, 3) uint8, got shape {value.shape}")
            value = list(value)
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError("frames: expected a non-empty list of images or a (T, H, W, 3) uint8 array")
        frames = [_as_rgb(frame, f"frames[{i}]") for i, frame in enumerate(value)]
        sizes = {frame.size for frame in frames}
        if len(sizes) != 1:
            raise ValueError(f"frames: all frames must have one size, got {sorted(sizes)}")
        return frames


class AudioContent(BaseModel):
    """Mono float audio in [-1, 1] at 16 kHz (a numpy array, a tensor or a list), validated as ming-contextasr's
    :class:`~ming_contextasr.ContextASRRequest` validates it; stored as a float32 CPU tensor."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    type: Literal["audio"] = "audio"
    sample_rate: int = Field(SAMPLE_RATE, description="Sample rate of `audio`; must be 16000 (resample first).")
    audio: Any

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any) -> Any:
        if isinstance(data, dict) and "audio" in data:
            try:
                request = ContextASRRequest(audio=data["audio"], sample_rate=data.get("sample_rate", SAMPLE_RATE))
            except ValidationError as error:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
                raise ValueError(problems) from None
            data = {**data, "audio": request.audio}
        return data


Content = Annotated[TextContent | ImageContent | VideoContent | AudioContent, Field(discriminator="type")]
"""One piece of a message, told apart by ``type``."""


class Message(BaseModel):
    """One chat turn. ``content`` is a string (text) or a list of :data:`Content` pieces (dicts work too)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    role: Literal["system", "user", "assistant"]
    content: str | list[Content]

    @field_validator("content")
    @classmethod
    def _as_list(cls, content: str | list[Content]) -> list[Content]:
        return [TextContent(text=content)] if isinstance(content, str) else content

    @model_validator(mode="after")
    def _system_is_text(self) -> Message:
        if self.role == "system" and any(not isinstance(c, TextContent) for c in self.content):
            raise ValueError("a system message holds text only")
        return self


_CONVERSATION = TypeAdapter(list[Message])


def validate_conversation(messages: Any) -> list[Message]:
    """Validate a conversation: a non-empty list of :class:`Message` (or dicts), at most one system message, first.

    Raises:
        pydantic.ValidationError: a message or a piece of content is malformed (the error names it).
        ValueError: the conversation is empty or a system message is not the first.
    """
    checked = _CONVERSATION.validate_python(messages)
    if not checked:
        raise ValueError("messages is empty: pass at least one message")
    if any(m.role == "system" for m in checked[1:]):
        raise ValueError("only the first message may be a system message")
    return checked
