"""Spoken sentences with transcripts, tagged named entities and (optionally) word timings, made with espeak-ng."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._rng import Stream, generator, pick
from .espeak import _PITCH_RANGE, _SPEED_RANGE, SAMPLE_RATE, speak
from .lexicon import Language, make_lexicon
from .sentences import EntitySpan, make_sentence

# espeak-ng 1.51 as packaged for Debian/Ubuntu: the plain "cmn" voice speaks many characters as pinyin spelled in
# English plus the tone digit ("小" → "xiao three"); "cmn-latn-pinyin" reads them in Mandarin, so it is the default.
DEFAULT_VOICES: MappingProxyType[Language, tuple[str, ...]] = MappingProxyType(
    {
        "en": ("en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-gb-scotland", "en-us+f2"),
        "cmn": ("cmn-latn-pinyin", "cmn-latn-pinyin+f3", "cmn-latn-pinyin+m3", "cmn-latn-pinyin+f2"),
    }
)
"""Voices used when :attr:`SpeechOptions.voices` is not given (read-only)."""

_VOICE = re.compile(r"[A-Za-z0-9_\-]+(\+[A-Za-z0-9_\-]+)?")
_SILENCE = 0.02  # samples below this fraction of a word's peak count as silence when a word is trimmed


class SpeechOptions(BaseModel):
    """Options of :func:`make_speech`.

    Each utterance draws its sentence, voice, speed and pitch from ``(seed, index)`` alone. Speeds and pitches have
    the limits of :func:`speak`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(8, ge=1, description="Number of utterances.")
    seed: int = Field(
        0, ge=0, description="Random seed; names come from `make_lexicon(language, seed=seed, size=lexicon_size)`."
    )
    language: Language = Field("en", description="'en' or 'cmn' (Mandarin).")
    voices: tuple[str, ...] | None = Field(
        None, min_length=1, description="espeak-ng voices to draw from; default DEFAULT_VOICES[language]."
    )
    speeds: tuple[Annotated[int, Field(ge=_SPEED_RANGE[0], le=_SPEED_RANGE[1])], ...] = Field(
        (140, 170, 200), min_length=1, description="Speaking rates to draw from, words per minute."
    )
    pitches: tuple[Annotated[int, Field(ge=_PITCH_RANGE[0], le=_PITCH_RANGE[1])], ...] = Field(
        (30, 50, 70), min_length=1, description="Pitches to draw from, 0–99."
    )
    lexicon_size: int = Field(32, ge=2, le=200, description="Names per entity type in the lexicon.")
    word_timings: bool = Field(
        False,
        description="Speak word by word and concatenate, so exact word timings are known (with choppier prosody).",
    )
    word_gap_s: float = Field(0.08, ge=0.0, le=2.0, description="Silence between words when word_timings is on.")
    cache_dir: Path | None = Field(None, description="Cache root; default default_cache_dir().")
    use_cache: bool = Field(True, description="Read and write the on-disk cache.")

    @field_validator("voices")
    @classmethod
    def _check_voices(cls, voices: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for voice in voices or ():
            if not _VOICE.fullmatch(voice):
                raise ValueError(f"{voice!r} is not an espeak-ng voice name like 'en-us' or 'en-gb+f3'")
        return voices

    def voice_list(self) -> tuple[str, ...]:
        """The voices to draw from (``voices`` or the language's defaults)."""
        return self.voices if self.voices is not None else DEFAULT_VOICES[self.language]


@dataclass(frozen=True)
class WordTiming:
    """Where one word of the transcript is in the audio.

    Attributes:
        text: the word (``transcript[char_start:char_end]``).
        char_start: character offset of the word in the transcript.
        char_end: one past its last character.
        start_s: time its first non-silent sample starts, seconds.
        end_s: time its last non-silent sample ends, seconds.
    """

    text: str
    char_start: int
    char_end: int
    start_s: float
    end_s: float


@dataclass(frozen=True, eq=False)
class Utterance:
    """One spoken sentence.

    Attributes:
        audio: ``(samples,)`` float32 mono audio at ``sample_rate``.
        sample_rate: always :data:`SAMPLE_RATE` (16 kHz).
        transcript: the text that was spoken.
        language: its language.
        voice: espeak-ng voice.
        speed: words per minute.
        pitch: espeak-ng pitch, 0–99.
        entities: named entities with character spans into ``transcript``.
        words: word timings when made with ``word_timings=True``, else ``None`` (espeak-ng's command line does not
            report where words fall in a sentence it speaks as a whole).
    """

    audio: np.ndarray
    sample_rate: int
    transcript: str
    language: Language
    voice: str
    speed: int
    pitch: int
    entities: tuple[EntitySpan, ...]
    words: tuple[WordTiming, ...] | None

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return len(self.audio) / self.sample_rate

    def label(self) -> dict[str, Any]:
        """Everything but the audio, as JSON-ready Python values."""
        return {
            "transcript": self.transcript,
            "language": self.language,
            "voice": self.voice,
            "speed": self.speed,
            "pitch": self.pitch,
            "sample_rate": self.sample_rate,
            "duration_s": self.duration_s,
            "entities": [vars(e) for e in self.entities],
            "words": None if self.words is None else [vars(w) for w in self.words],
        }


def _trim(audio: np.ndarray) -> np.ndarray:
    # initial=0: empty or silent audio has no loud sample and trims to nothing.
    loud = np.flatnonzero(np.abs(audio) > _SILENCE * np.abs(audio).max(initial=0.0))
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio[:0]


def _cache_args(options: SpeechOptions) -> dict[str, Any]:
    return {"cache_dir": options.cache_dir, "use_cache": options.use_cache}


def _speak_words(
    transcript: str, spans: tuple[tuple[int, int], ...], options: SpeechOptions, voice: str, speed: int, pitch: int
) -> tuple[np.ndarray, tuple[WordTiming, ...]]:
    gap = np.zeros(round(options.word_gap_s * SAMPLE_RATE), dtype=np.float32)
    pieces = [gap]
    position = len(gap)
    timings = []
    for start, end in spans:
        word = _trim(speak(transcript[start:end], voice, speed=speed, pitch=pitch, **_cache_args(options)))
        timings.append(
            WordTiming(transcript[start:end], start, end, position / SAMPLE_RATE, (position + len(word)) / SAMPLE_RATE)
        )
        pieces += [word, gap]
        position += len(word) + len(gap)
    return np.concatenate(pieces), tuple(timings)


def make_speech(options: SpeechOptions | None = None) -> list[Utterance]:
    """Speak ``options.n`` template sentences full of made-up names with espeak-ng.

    Utterance ``i`` speaks ``make_sentences(n, language=..., seed=seed, lexicon=...)[i]`` with a voice, speed and
    pitch drawn from the options, so it depends only on ``(seed, i)``. Audio is 16 kHz mono float32 in [-1, 1],
    resampled from espeak-ng's 22050 Hz with :func:`scipy.signal.resample_poly`, and cached on disk (see
    :func:`speak`).

    Word timings: with ``word_timings=True`` each word is spoken on its own, trimmed of silence and joined with
    ``word_gap_s`` of silence between words, so the returned timings are exact for the returned audio. Otherwise the
    sentence is spoken as a whole (natural prosody) and ``words`` is ``None``.

    Raises:
        EspeakNotFoundError: ``espeak-ng`` is not installed.
        EspeakError: ``espeak-ng`` failed, e.g. for an unknown voice in ``options.voices``.
    """
    options = options if options is not None else SpeechOptions()
    lexicon = make_lexicon(options.language, seed=options.seed, size=options.lexicon_size)
    voices = options.voice_list()
    utterances = []
    for i in range(options.n):
        # The sentence stream is make_sentences' own, so utterance i speaks its sentence i.
        sentence = make_sentence(generator(options.seed, Stream.SENTENCE, i), lexicon)
        rng = generator(options.seed, Stream.UTTERANCE, i)
        voice, speed, pitch = pick(rng, voices), pick(rng, options.speeds), pick(rng, options.pitches)
        if options.word_timings:
            audio, words = _speak_words(sentence.text, sentence.words, options, voice, speed, pitch)
        else:
            audio, words = speak(sentence.text, voice, speed=speed, pitch=pitch, **_cache_args(options)), None
        utterances.append(
            Utterance(
                audio, SAMPLE_RATE, sentence.text, options.language, voice, speed, pitch, sentence.entities, words
            )
        )
    return utterances
