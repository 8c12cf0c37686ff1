"""Context-aware ASR prompts (paper §2.2: ASR conditioned on preceding text and hotword lists).

A :class:`ContextASRRequest` (audio + optional topic, preceding text, hotwords and language hint) is rendered into
the instruction text the model is trained on; the model answers ``{language}\\t{transcript}``. Rendered prompt::

    Topic: <topic>
    Context: <preceding text>
    Hotwords: <w1>; <w2>; ...
    Transcribe the speech (language: English). Answer as "<language><TAB><transcript>".

Lines are present only when their field is. Whitespace runs in the topic and preceding text are collapsed to one
space, so every field is one line and :func:`parse_prompt` recovers it exactly.

Truncation (rule of :class:`PromptOptions`): the topic keeps its first ``max_topic_chars`` characters, the preceding
text its *last* ``max_context_chars`` (the text right before the audio matters most), the hotword list its first
``max_hotwords`` entries (list order is priority). Whatever is dropped is reported in :class:`RenderedPrompt` and,
unless ``PromptOptions.warn`` is off, announced with a :class:`ContextTruncatedWarning`.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import torch
import torchaudio
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator

from .configuration import ContextASRAudioConfig

__all__ = [
    "SAMPLE_RATE",
    "ContextASRRequest",
    "ContextTruncatedWarning",
    "PromptFields",
    "PromptOptions",
    "RenderedPrompt",
    "Transcription",
    "format_transcription",
    "parse_prompt",
    "parse_transcription",
    "render_prompt",
]

SAMPLE_RATE = 16_000
"""Sample rate of the audio front end, Hz."""

_MIN_SAMPLES = ContextASRAudioConfig.n_fft  # the audio encoder needs one STFT window
_HOTWORD_SEPARATOR = "; "
_LANGUAGE_RE = re.compile(r"[A-Za-z][A-Za-z \-]*[A-Za-z]")
# pydantic searches for the pattern, so it is anchored; "$" is the end of the string in pydantic's regex engine.
_Language = Annotated[str, StringConstraints(pattern=f"^{_LANGUAGE_RE.pattern}$")]
_INSTRUCTION = 'Transcribe the speech{hint}. Answer as "<language><TAB><transcript>".'
_INSTRUCTION_RE = re.compile(
    r'^Transcribe the speech(?: \(language: (?P<language>[^)]+)\))?\. Answer as "<language><TAB><transcript>"\.$'
)


class ContextTruncatedWarning(UserWarning):
    """Context (topic, preceding text or hotwords) was cut to fit :class:`PromptOptions`."""


def _not_float(dtype: Any) -> ValueError:
    return ValueError(
        f"audio must hold float samples in [-1, 1], got {dtype}; scale integer PCM first (int16: x / 32768)"
    )


def _collapse(text: str | None) -> str | None:
    if text is None:
        return None
    collapsed = " ".join(text.split())
    return collapsed or None


class ContextASRRequest(BaseModel):
    """One context-aware transcription request.

    ``audio`` is mono (``(samples,)``, or ``(1, samples)``) floating-point audio in [-1, 1]: a numpy array, a torch
    tensor (any device or float dtype; it is detached and moved to the CPU) or a list of floats. Integer PCM is
    rejected rather than guessed at: scale it first (int16: ``x / 32768``). After validation ``audio`` is a float32
    CPU tensor at :data:`SAMPLE_RATE` of at least 400 samples (one STFT window of the audio encoder). Other rates are
    an error unless ``allow_resample`` is set, in which case torchaudio resamples the audio and ``sample_rate``
    becomes :data:`SAMPLE_RATE`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    # Validated in this order: audio's validator reads the two fields before it.
    allow_resample: bool = Field(False, description="Resample audio at another rate to 16 kHz instead of failing.")
    sample_rate: int = Field(SAMPLE_RATE, gt=0, description="Sample rate of `audio`, Hz.")
    audio: Any = Field(description="Mono float waveform in [-1, 1], (samples,) or (1, samples).")
    topic: str | None = Field(None, description="What the recording is about (one sentence).")
    preceding_text: str | None = Field(None, description="Text said or written right before the audio.")
    hotwords: tuple[str, ...] = Field((), description="Terms likely to occur (names, jargon), most important first.")
    language: _Language | None = Field(None, description="Language hint, e.g. 'English' or 'Chinese'.")

    @field_validator("sample_rate")
    @classmethod
    def _check_sample_rate(cls, sample_rate: int, info: ValidationInfo) -> int:
        if sample_rate != SAMPLE_RATE and not info.data.get("allow_resample", False):
            raise ValueError(
                f"sample_rate is {sample_rate} Hz but the audio front end needs {SAMPLE_RATE} Hz; "
                "resample the audio or set allow_resample=True"
            )
        return sample_rate

    @field_validator("audio", mode="before")
    @classmethod
    def _check_audio(cls, audio: Any, info: ValidationInfo) -> torch.Tensor:
        if isinstance(audio, torch.Tensor):
            if not audio.is_floating_point():
                raise _not_float(audio.dtype)
            tensor = audio.detach().to("cpu", torch.float32)
        else:
            try:
                array = np.asarray(audio)
            except (TypeError, ValueError) as error:
                raise ValueError(f"audio must be an array of numbers ({error})") from None
            if array.dtype.kind in "iub":
                raise _not_float(array.dtype)
            if array.dtype.kind != "f":
                raise ValueError(f"audio must be an array of numbers, got dtype {array.dtype}")
            tensor = torch.from_numpy(array.astype(np.float32))
        if tensor.ndim == 2 and tensor.shape[0] == 1:
            tensor = tensor[0]
        if tensor.ndim != 1:
            raise ValueError(f"audio must be mono, shaped (samples,) or (1, samples); got {tuple(tensor.shape)}")
        if tensor.numel() == 0:
            raise ValueError("audio is empty")
        if not torch.isfinite(tensor).all():
            raise ValueError("audio contains NaN or infinite samples")
        sample_rate = info.data.get("sample_rate")
        if sample_rate is None:  # sample_rate failed validation, which reports it
            return tensor
        if sample_rate != SAMPLE_RATE:
            tensor = torchaudio.functional.resample(tensor, sample_rate, SAMPLE_RATE)
        if tensor.numel() < _MIN_SAMPLES:
            raise ValueError(
                f"audio has {tensor.numel()} samples at {SAMPLE_RATE} Hz, fewer than the audio encoder's minimum of "
                f"{_MIN_SAMPLES} (one STFT window)"
            )
        return tensor

    @field_validator("hotwords", mode="before")
    @classmethod
    def _check_hotwords(cls, hotwords: Any) -> tuple[str, ...]:
        if hotwords is None:
            return ()
        if isinstance(hotwords, str):
            raise ValueError("hotwords must be a list of strings, not one string")
        if not isinstance(hotwords, (list, tuple)):
            raise ValueError(f"hotwords must be a list of strings, got {type(hotwords).__name__} {hotwords!r}")
        checked = []
        for i, word in enumerate(hotwords):
            if not isinstance(word, str):
                raise ValueError(f"hotwords[{i}] must be a string, got {type(word).__name__} {word!r}")
            word = " ".join(word.split())
            if not word:
                raise ValueError(f"hotwords[{i}] is empty")
            if ";" in word:
                raise ValueError(f"hotwords[{i}] = {word!r} contains ';', the prompt's hotword separator")
            checked.append(word)
        return tuple(checked)

    @field_validator("topic", "preceding_text")
    @classmethod
    def _collapse_whitespace(cls, text: str | None) -> str | None:
        return _collapse(text)

    @model_validator(mode="after")
    def _record_resampling(self) -> ContextASRRequest:
        self.sample_rate = SAMPLE_RATE  # audio's validator resampled it, if needed
        return self


class PromptOptions(BaseModel):
    """Limits of the rendered context (see the module docstring for the truncation rule)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_topic_chars: int = Field(200, ge=0, description="Keep at most this many leading characters of the topic.")
    max_context_chars: int = Field(
        1000, ge=0, description="Keep at most this many trailing characters of the preceding text."
    )
    max_hotwords: int = Field(100, ge=0, description="Keep at most this many hotwords (the first ones).")
    warn: bool = Field(True, description="Emit ContextTruncatedWarning when something is dropped.")


@dataclass(frozen=True)
class PromptFields:
    """The context fields of a prompt, as :func:`parse_prompt` reads them back.

    Attributes:
        topic: topic line, or ``None``.
        preceding_text: context line, or ``None``.
        hotwords: hotword list.
        language: language hint, or ``None``.
    """

    topic: str | None
    preceding_text: str | None
    hotwords: tuple[str, ...]
    language: str | None


@dataclass(frozen=True)
class RenderedPrompt:
    """A rendered prompt and what truncation removed from it.

    Attributes:
        text: the prompt text.
        fields: the context it holds (after truncation).
        dropped_topic: characters cut from the end of the topic.
        dropped_context: characters cut from the start of the preceding text.
        dropped_hotwords: hotwords left out.
    """

    text: str
    fields: PromptFields
    dropped_topic: str = ""
    dropped_context: str = ""
    dropped_hotwords: tuple[str, ...] = ()

    @property
    def truncated(self) -> bool:
        """Whether anything was dropped."""
        return bool(self.dropped_topic or self.dropped_context or self.dropped_hotwords)


def render_prompt(request: ContextASRRequest, options: PromptOptions | None = None) -> RenderedPrompt:
    """Render the instruction text for ``request``, truncating overlong context by the documented rule."""
    options = options or PromptOptions()
    topic, dropped_topic = request.topic, ""
    if topic is not None and len(topic) > options.max_topic_chars:
        topic, dropped_topic = topic[: options.max_topic_chars], topic[options.max_topic_chars :]
    context, dropped_context = request.preceding_text, ""
    if context is not None and len(context) > options.max_context_chars:
        cut = len(context) - options.max_context_chars
        context, dropped_context = context[cut:], context[:cut]
    hotwords = request.hotwords[: options.max_hotwords]
    dropped_hotwords = request.hotwords[options.max_hotwords :]
    fields = PromptFields(_collapse(topic), _collapse(context), hotwords, request.language)

    lines = []
    if fields.topic:
        lines.append(f"Topic: {fields.topic}")
    if fields.preceding_text:
        lines.append(f"Context: {fields.preceding_text}")
    if fields.hotwords:
        lines.append("Hotwords: " + _HOTWORD_SEPARATOR.join(fields.hotwords))
    hint = f" (language: {fields.language})" if fields.language else ""
    lines.append(_INSTRUCTION.format(hint=hint))
    rendered = RenderedPrompt("\n".join(lines), fields, dropped_topic, dropped_context, tuple(dropped_hotwords))
    if rendered.truncated and options.warn:
        warnings.warn(
            f"context truncated: {len(dropped_topic)} topic characters, {len(dropped_context)} preceding-text "
            f"characters and {len(dropped_hotwords)} hotwords dropped (PromptOptions limits)",
            ContextTruncatedWarning,
            stacklevel=2,
        )
    return rendered


def parse_prompt(text: str) -> PromptFields:
    """Read the context fields back from a prompt made by :func:`render_prompt`.

    Raises:
        ValueError: the text is not such a prompt (the message names the offending line).
    """
    lines = text.split("\n")
    match = _INSTRUCTION_RE.match(lines[-1])
    if match is None:
        raise ValueError(f"last line {lines[-1]!r} is not the transcription instruction")
    values: dict[str, str] = {}
    for line in lines[:-1]:
        key, sep, value = line.partition(": ")
        if not sep or key not in ("Topic", "Context", "Hotwords") or key in values:
            raise ValueError(f"unexpected prompt line {line!r}")
        values[key] = value
    hotwords = tuple(values["Hotwords"].split(_HOTWORD_SEPARATOR)) if "Hotwords" in values else ()
    return PromptFields(values.get("Topic"), values.get("Context"), hotwords, match["language"])


@dataclass(frozen=True)
class Transcription:
    """A parsed model answer.

    Attributes:
        language: the language the model named, or ``None`` when the answer had no tab (non-strict parsing).
        text: the transcript.
    """

    language: str | None
    text: str


def format_transcription(language: str, transcript: str) -> str:
    """The training target ``{language}\\t{transcript}``."""
    if not _LANGUAGE_RE.fullmatch(language):
        raise ValueError(f"language {language!r} must be a name like 'English' (letters, spaces, hyphens)")
    return f"{language}\t{transcript}"


def parse_transcription(output: str, *, strict: bool = True) -> Transcription:
    """Split a model answer ``{language}\\t{transcript}`` (surrounding whitespace ignored).

    With ``strict`` (default) an answer without a valid language before the first tab raises ``ValueError``;
    otherwise the whole answer is returned as the transcript with ``language=None``.
    """
    stripped = output.strip()
    language, sep, transcript = stripped.partition("\t")
    if sep and _LANGUAGE_RE.fullmatch(language):
        return Transcription(language, transcript.strip())
    if strict:
        raise ValueError(f"answer {output[:80]!r} is not of the form '<language>\\t<transcript>'")
    return Transcription(None, stripped)
