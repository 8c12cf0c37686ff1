"""Made-up names of people, places and products, built from syllables so that each seed gives a fresh lexicon.

The names are pronounceable but (almost surely) not real words, so a speech recogniser can only get them right from
the audio or from a context list, which is what named-entity tests of contextual ASR need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from ._rng import Stream, generator, pick

Language = Literal["en", "cmn"]
"""``"en"`` English or ``"cmn"`` Mandarin Chinese (simplified characters)."""

EntityType = Literal["person", "place", "product"]
"""The kind of a named entity."""

ENTITY_TYPES: tuple[EntityType, ...] = get_args(EntityType)
"""Every entity type, in the order :meth:`Lexicon.entries` lists them."""

_EN_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kl", "st", "tr")
_EN_VOWELS = ("a", "e", "i", "o", "u", "a", "o", "ai", "ea")
_EN_CODAS = ("", "", "", "n", "r", "l", "s", "m", "x")
_EN_PLACE_SUFFIXES = ("ton", "ville", "burg", "field", "port", "dale", "more")
_EN_PRODUCT_MODELS = ("Pro", "Max", "Mini", "Plus", "Air", "X2", "X5", "X7", "Z3")

_ZH_SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗"
_ZH_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚英华玉兰文志建国红梅晓东海燕"
_ZH_PLACE_CHARS = "山河江湖云石青安平宁东西南北新华阳泉林海金川"
_ZH_PLACE_SUFFIXES = ("市", "镇", "县", "村", "湾")
_ZH_BRAND_CHARS = "星辰云帆飞天光速智灵锐影龙凤雷风月"
_ZH_PRODUCTS = ("手机", "电脑", "相机", "耳机", "手表", "汽车")


@dataclass(frozen=True)
class Lexicon:
    """Entity names of one language, unique across all three types.

    Attributes:
        language: the language of the names.
        persons: people's names (English: first and last name; Mandarin: surname + one or two given characters).
        places: place names.
        products: product names (English: brand + model; Mandarin: brand + kind of product).
    """

    language: Language
    persons: tuple[str, ...]
    places: tuple[str, ...]
    products: tuple[str, ...]

    def names(self, entity_type: EntityType) -> tuple[str, ...]:
        """The names of one entity type."""
        return {"person": self.persons, "place": self.places, "product": self.products}[entity_type]

    def entries(self) -> list[tuple[str, EntityType]]:
        """Every ``(name, type)`` pair, persons first, then places, then products."""
        return [(name, kind) for kind in ENTITY_TYPES for name in self.names(kind)]


def _en_word(rng: np.random.Generator, syllables: int) -> str:
    word = "".join(pick(rng, _EN_ONSETS) + pick(rng, _EN_VOWELS) for _ in range(syllables - 1))
    return (word + pick(rng, _EN_ONSETS) + pick(rng, _EN_VOWELS) + pick(rng, _EN_CODAS)).capitalize()


def _en_name(rng: np.random.Generator, entity_type: EntityType) -> str:
    if entity_type == "person":
        return f"{_en_word(rng, 2)} {_en_word(rng, int(rng.integers(2, 4)))}"
    if entity_type == "place":
        return _en_word(rng, 2) + pick(rng, _EN_PLACE_SUFFIXES)
    return f"{_en_word(rng, 2)} {pick(rng, _EN_PRODUCT_MODELS)}"


def _zh_name(rng: np.random.Generator, entity_type: EntityType) -> str:
    if entity_type == "person":
        given = "".join(pick(rng, _ZH_GIVEN) for _ in range(int(rng.integers(1, 3))))
        return pick(rng, _ZH_SURNAMES) + given
    if entity_type == "place":
        return pick(rng, _ZH_PLACE_CHARS) + pick(rng, _ZH_PLACE_CHARS) + pick(rng, _ZH_PLACE_SUFFIXES)
    return pick(rng, _ZH_BRAND_CHARS) + pick(rng, _ZH_BRAND_CHARS) + pick(rng, _ZH_PRODUCTS)


def make_lexicon(language: Language = "en", *, seed: int = 0, size: int = 32) -> Lexicon:
    """Make ``size`` names of each entity type, deterministically from ``seed``.

    Args:
        language: ``"en"`` or ``"cmn"``.
        seed: the same seed always gives the same lexicon.
        size: names per entity type (at most 200).

    Returns:
        A :class:`Lexicon` whose names are unique across all types, so a name determines its type.
    """
    languages = get_args(Language)
    if language not in languages:
        raise ValueError(f"language must be 'en' or 'cmn', got {language!r}")
    if not 1 <= size <= 200:
        raise ValueError(f"size must be between 1 and 200, got {size}")
    rng = generator(seed, Stream.LEXICON, languages.index(language))
    make = _en_name if language == "en" else _zh_name
    seen: set[str] = set()
    names: dict[EntityType, list[str]] = {kind: [] for kind in ENTITY_TYPES}
    for kind in ENTITY_TYPES:
        while len(names[kind]) < size:
            name = make(rng, kind)
            if name not in seen:
                seen.add(name)
                names[kind].append(name)
    return Lexicon(language, tuple(names["person"]), tuple(names["place"]), tuple(names["product"]))
