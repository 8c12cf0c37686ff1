"""Template sentences in English and Mandarin with named entities tagged by character span."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast

import numpy as np

from ._rng import Stream, generator, pick
from .lexicon import ENTITY_TYPES, EntityType, Language, Lexicon, make_lexicon

# Slots: {person}, {place}, {product} are entities; {number} and {day} are filler. English words are separated by
# spaces; Mandarin templates mark word boundaries with "|", which is removed from the text.
_TEMPLATES: dict[Language, tuple[str, ...]] = {
    "en": (
        "{person} flew to {place} on {day}.",
        "Please ask {person} to bring the {product} to {place}.",
        "{person} paid {number} dollars for a {product}.",
        "The {product} sold out in {place} within {number} hours.",
        "On {day} {person} will meet {person} in {place}.",
        "Did {person} leave the {product} at home?",
        "{place} is {number} miles from {place}.",
        "We ordered {number} units of the {product} for {person}.",
    ),
    "cmn": (
        "{person}|{day}|要|去|{place}|出差。",
        "{person}|花了|{number}|元|买了|一台|{product}。",
        "请|{person}|把|{product}|带到|{place}。",
        "{place}|离|{place}|有|{number}|公里。",
        "{person}|和|{person}|{day}|在|{place}|见面。",
        "{product}|在|{place}|卖得|很|好。",
    ),
}
_DAYS: dict[Language, tuple[str, ...]] = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "cmn": ("星期一", "星期二", "星期三", "星期四", "星期五", "明天", "后天"),
}
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class EntitySpan:
    """A named entity in a transcript: ``transcript[start:end] == text``.

    Attributes:
        start: character offset of the first character.
        end: character offset one past the last character.
        type: ``"person"``, ``"place"`` or ``"product"``.
        text: the entity's surface form.
    """

    start: int
    end: int
    type: EntityType
    text: str


@dataclass(frozen=True)
class Sentence:
    """A sentence with its entities and word boundaries.

    Attributes:
        text: the sentence.
        language: its language.
        entities: named entities in order of appearance.
        words: ``(start, end)`` character spans of the words (English: runs of non-space characters, punctuation
            attached; Mandarin: the template's words, each entity being one word, with the closing punctuation
            attached to the last word).
    """

    text: str
    language: Language
    entities: tuple[EntitySpan, ...]
    words: tuple[tuple[int, int], ...]


def _fill(template: str, language: Language, lexicon: Lexicon, rng: np.random.Generator) -> Sentence:
    separator = " " if language == "en" else "|"
    used: set[str] = set()
    text = ""
    entities: list[EntitySpan] = []
    words: list[tuple[int, int]] = []
    for token in template.split(separator):
        word_start = len(text)
        for i, part in enumerate(_SLOT.split(token)):
            if i % 2 == 0:  # literal text between slots
                text += part
                continue
            if part == "number":
                text += str(int(rng.integers(2, 100)))
            elif part == "day":
                text += pick(rng, _DAYS[language])
            else:
                # A slot used twice in one template ("{person} will meet {person}") names two different entities.
                kind = cast(EntityType, part)
                name = pick(rng, [name for name in lexicon.names(kind) if name not in used])
                used.add(name)
                entities.append(EntitySpan(len(text), len(text) + len(name), kind, name))
                text += name
        words.append((word_start, len(text)))
        if language == "en":
            text += " "
    text = text.rstrip(" ")
    if language == "en":  # an English entity may hold several words
        words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    return Sentence(text, language, tuple(entities), tuple(words))


def make_sentence(rng: np.random.Generator, lexicon: Lexicon) -> Sentence:
    """Fill a random template of ``lexicon.language`` with names from ``lexicon``, drawing from ``rng``.

    The lexicon needs at least 2 names of each type (some templates name two people or two places).
    """
    if min(len(lexicon.names(kind)) for kind in ENTITY_TYPES) < 2:
        raise ValueError("the lexicon needs at least 2 names of each entity type")
    return _fill(pick(rng, _TEMPLATES[lexicon.language]), lexicon.language, lexicon, rng)


def make_sentences(
    n: int, *, language: Language = "en", seed: int = 0, lexicon: Lexicon | None = None
) -> list[Sentence]:
    """Make ``n`` sentences, deterministically from ``seed``.

    Sentence ``i`` depends only on ``(seed, i)`` and the lexicon, so the first sentences do not change with ``n``.

    Args:
        n: number of sentences.
        language: ``"en"`` or ``"cmn"``.
        seed: random seed.
        lexicon: where names come from; default ``make_lexicon(language, seed=seed)``.
    """
    lexicon = lexicon if lexicon is not None else make_lexicon(language, seed=seed)
    if lexicon.language != language:
        raise ValueError(f"lexicon is {lexicon.language!r} but language is {language!r}")
    return [make_sentence(generator(seed, Stream.SENTENCE, i), lexicon) for i in range(n)]
