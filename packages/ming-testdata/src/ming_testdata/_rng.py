"""Random streams and the draws the makers share."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from ._options import CanvasOptions
    from .palette import ColorName

_T = TypeVar("_T")


class Stream(enum.IntEnum):
    """What a random stream is for: each use of a seed draws from its own stream."""

    LEXICON = 1
    SENTENCE = 2
    UTTERANCE = 3
    SCENE = 4
    TEXT_IMAGE = 5
    VIDEO = 6


def generator(seed: int, stream: Stream, *index: int) -> np.random.Generator:
    """The generator of ``stream`` (and sample ``index``) for ``seed``.

    Stream and index go in the spawn key, which numpy keeps apart from the seed; a flat ``default_rng([seed, i])``
    would give ``[seed, 0]`` the numbers of ``[seed]``, and a seed over 32 bits those of another ``(seed, i)``.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(int(stream), *index)))


def pick(rng: np.random.Generator, items: Sequence[_T]) -> _T:
    """One item of ``items``, uniformly."""
    return items[int(rng.integers(len(items)))]


def pick_colors(
    rng: np.random.Generator, options: CanvasOptions, fewest: int, most: int
) -> tuple[ColorName, list[ColorName]]:
    """A background, then ``fewest`` to ``most`` distinct object colours that differ from it.

    ``CanvasOptions`` validation guarantees enough colours besides every background.
    """
    background = pick(rng, options.backgrounds)
    palette = [c for c in dict.fromkeys(options.colors) if c != background]
    count = int(rng.integers(fewest, most + 1))
    return background, [palette[i] for i in rng.permutation(len(palette))[:count]]
