"""Context-ASR training samples (paper §3.2, "Context ASR Data": <audio, text, context, entity list> samples with
lowered keyword density, absent keywords removed and negative samples added).

From a transcribed clip with its named entities, :func:`build_context_samples` makes a sample whose hotword list
mixes (some of) the true entities with distractor terms that do not occur in the transcript, optionally with a topic
sentence, so that a model learns to use context and to ignore what is not said. Sample ``i`` depends only on
``(seed, i)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .prompt import SAMPLE_RATE, ContextASRRequest, _Language, format_transcription

__all__ = ["ContextSample", "ContextSampleOptions", "TaggedUtterance", "build_context_samples"]


class TaggedUtterance(BaseModel):
    """A transcribed clip and the named entities said in it (plain data; e.g. from ming-testdata's ``Utterance``:
    ``TaggedUtterance(audio=u.audio, transcript=u.transcript, entities=[e.text for e in u.entities], ...)``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    audio: Any = Field(description="Mono waveform at `sample_rate`.")
    sample_rate: int = Field(SAMPLE_RATE, gt=0, description="Sample rate of `audio`, Hz.")
    transcript: str = Field(min_length=1, description="What is said.")
    entities: tuple[str, ...] = Field((), description="Named entities, each occurring verbatim in the transcript.")
    language: _Language = Field(description="Language name used in the target, e.g. 'English'.")

    @model_validator(mode="after")
    def _entities_in_transcript(self) -> TaggedUtterance:
        for i, entity in enumerate(self.entities):
            if not entity.strip() or entity not in self.transcript:
                raise ValueError(f"entities[{i}] = {entity!r} does not occur in the transcript")
        return self


class ContextSampleOptions(BaseModel):
    """How context samples are drawn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(0, ge=0, description="Random seed; sample i depends only on (seed, i).")
    distractor_ratio: float = Field(
        1.0,
        ge=0.0,
        description="Distractors per true entity listed (at least one), on average: the product is rounded "
        "stochastically, e.g. 0.5 × 1 entity gives 0 or 1 distractor with equal chance.",
    )
    entity_keep_probability: float = Field(
        1.0, ge=0.0, le=1.0, description="Chance each true entity is put in the hotword list (lowers keyword density)."
    )
    negative_probability: float = Field(
        0.0, ge=0.0, le=1.0, description="Chance a sample lists only distractors (a negative sample)."
    )
    topic_probability: float = Field(0.0, ge=0.0, le=1.0, description="Chance a sample gets a topic sentence.")
    topic_templates: tuple[str, ...] = Field(
        ("A conversation that mentions {terms}.",),
        min_length=1,
        description="Topic sentences; '{terms}' becomes the listed hotwords joined by ', '.",
    )

    @field_validator("topic_templates")
    @classmethod
    def _has_slot(cls, templates: tuple[str, ...]) -> tuple[str, ...]:
        for i, template in enumerate(templates):
            if "{terms}" not in template:
                raise ValueError(f"topic_templates[{i}] has no '{{terms}}' slot")
        return templates


@dataclass(frozen=True, eq=False)
class ContextSample:
    """One training sample.

    Attributes:
        audio: the clip (as given).
        sample_rate: its sample rate.
        transcript: the reference transcript.
        language: its language name.
        hotwords: the context list, true entities and distractors shuffled together.
        true_entities: the listed hotwords that are said.
        distractors: the listed hotwords that are not said.
        topic: topic sentence, or ``None``.
    """

    audio: Any
    sample_rate: int
    transcript: str
    language: str
    hotwords: tuple[str, ...]
    true_entities: tuple[str, ...]
    distractors: tuple[str, ...]
    topic: str | None

    def request(self) -> ContextASRRequest:
        """The model input: a :class:`ContextASRRequest` with this sample's context."""
        return ContextASRRequest(
            audio=self.audio,
            sample_rate=self.sample_rate,
            topic=self.topic,
            hotwords=self.hotwords,
            language=self.language,
        )

    def target(self) -> str:
        """The training target ``{language}\\t{transcript}``."""
        return format_transcription(self.language, self.transcript)


def build_context_samples(
    utterances: Sequence[TaggedUtterance],
    distractor_pool: Sequence[str],
    options: ContextSampleOptions | None = None,
) -> list[ContextSample]:
    """Make one context sample per utterance.

    Each entity is listed with probability ``entity_keep_probability`` (none in a negative sample). With ``x =
    distractor_ratio × max(1, number of listed entities)`` — so a sample that lists no true entity still gets
    distractors — ``floor(x)`` distractors, plus one more with probability ``x − floor(x)`` (so ``x`` on average),
    are drawn without replacement from the pool terms that do not occur in the transcript (case-insensitive). The
    list is shuffled.

    Raises:
        ValueError: fewer pool terms than the distractors needed are absent from an utterance's transcript (naming
            the utterance).
    """
    options = options or ContextSampleOptions()
    pool = list(dict.fromkeys(distractor_pool))
    samples = []
    for index, utterance in enumerate(utterances):
        rng = np.random.default_rng([options.seed, index])
        negative = rng.random() < options.negative_probability
        entities = list(dict.fromkeys(utterance.entities))
        kept = [] if negative else [e for e in entities if rng.random() < options.entity_keep_probability]
        expected = options.distractor_ratio * max(1, len(kept))
        wanted = int(expected) + int(rng.random() < expected - int(expected))
        spoken = utterance.transcript.lower()
        candidates = [term for term in pool if term.lower() not in spoken]
        if wanted > len(candidates):
            raise ValueError(
                f"utterances[{index}] needs {wanted} distractors (distractor_ratio = {options.distractor_ratio}) but "
                f"only {len(candidates)} of the {len(pool)} distractor_pool terms are not said in its transcript"
            )
        picks = rng.permutation(len(candidates))[:wanted]
        distractors = [candidates[i] for i in picks]
        hotwords = kept + distractors
        hotwords = [hotwords[i] for i in rng.permutation(len(hotwords))]
        topic = None
        if hotwords and rng.random() < options.topic_probability:
            template = options.topic_templates[int(rng.integers(len(options.topic_templates)))]
            topic = template.format(terms=", ".join(hotwords))
        samples.append(
            ContextSample(
                audio=utterance.audio,
                sample_rate=utterance.sample_rate,
                transcript=utterance.transcript,
                language=utterance.language,
                hotwords=tuple(hotwords),
                true_entities=tuple(kept),
                distractors=tuple(distractors),
                topic=topic,
            )
        )
    return samples
