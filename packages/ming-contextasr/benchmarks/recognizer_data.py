"""Data split of the tiny recogniser (shared by ``train_recognizer.py`` and ``bench_recognizer.py``).

English espeak-ng speech from ming-testdata: every training seed brings its own lexicon of made-up names, the test
seed another one, and test utterances are spoken by voices never heard in training. Test utterances that name
anything from a training lexicon are dropped, so every test entity is unseen.
"""

from __future__ import annotations

import re

import numpy as np

from ming_contextasr import TaggedUtterance
from ming_testdata import SpeechOptions, make_lexicon, make_speech

TRAIN_VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-gb-x-rp", "en-029", "en-us+m1", "en-gb+f4")
TEST_VOICES = ("en-gb-scotland", "en-us+f2")
TEST_SEED = 10_000
LEXICON_SIZE = 32  # names per entity type and seed
# Lexicons of stand-in names for the text-only warm-up (see rename): neither training nor test seeds.
STAND_IN_SEEDS = range(1_000_001, 1_000_041)


def _tagged(options: SpeechOptions) -> list[TaggedUtterance]:
    return [
        TaggedUtterance(
            audio=u.audio, transcript=u.transcript, entities=[e.text for e in u.entities], language="English"
        )
        for u in make_speech(options)
    ]


def training_names(seeds: int) -> list[str]:
    """Every name in the lexicons of training seeds ``1 … seeds``."""
    return [
        name for seed in range(1, seeds + 1) for name, _ in make_lexicon("en", seed=seed, size=LEXICON_SIZE).entries()
    ]


def train_set(seeds: int, per_seed: int) -> list[TaggedUtterance]:
    """``per_seed`` utterances from each training seed ``1 … seeds``, in training voices."""
    return [
        utterance
        for seed in range(1, seeds + 1)
        for utterance in _tagged(SpeechOptions(n=per_seed, seed=seed, voices=TRAIN_VOICES, lexicon_size=LEXICON_SIZE))
    ]


def test_set(n: int, train_seeds: int) -> tuple[list[TaggedUtterance], list[str]]:
    """Up to ``n`` held-out utterances (test voices, test lexicon, no training name) and the distractor pool (the
    test lexicon's names)."""
    seen = set(training_names(train_seeds))
    pool = [name for name, _ in make_lexicon("en", seed=TEST_SEED, size=LEXICON_SIZE).entries() if name not in seen]
    options = SpeechOptions(n=n, seed=TEST_SEED, voices=TEST_VOICES, lexicon_size=LEXICON_SIZE)
    return [u for u in _tagged(options) if not seen.intersection(u.entities)], pool


def renaming(train_seeds: int, key: list[int]) -> dict[str, str]:
    """A random map from every training name to a stand-in name of the same type, drawn from lexicons of neither
    the training nor the test seeds (names in those lexicons excluded), the same for the same ``key``.

    Text-only samples need no audio, so their names can be swapped for names the model has never seen: then a name
    in the answer can only be predicted by copying it from the prompt, not recalled from a small training lexicon.
    """
    taken = {name for seed in [*range(1, train_seeds + 1), TEST_SEED] for name, _ in _lexicon(seed).entries()}
    stand_ins: dict[str, list[str]] = {}
    for seed in STAND_IN_SEEDS:
        for name, kind in make_lexicon("en", seed=seed, size=200).entries():
            if name not in taken:
                stand_ins.setdefault(kind, []).append(name)
    rng = np.random.default_rng(key)
    mapping = {}
    for kind, names in stand_ins.items():
        trained = [name for seed in range(1, train_seeds + 1) for name in _lexicon(seed).names(kind)]
        picks = rng.choice(len(names), size=len(trained), replace=False)
        mapping |= {name: names[i] for name, i in zip(trained, picks.tolist(), strict=True)}
    return mapping


def rename(utterance: TaggedUtterance, mapping: dict[str, str]) -> TaggedUtterance:
    """``utterance`` with its named entities swapped by ``mapping`` in the transcript and entity list (longest name
    first, whole words only)."""
    if not utterance.entities:
        return utterance
    names = sorted(set(utterance.entities), key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    transcript = pattern.sub(lambda match: mapping[match.group(1)], utterance.transcript)
    entities = tuple(mapping[e] for e in utterance.entities)
    return utterance.model_copy(update={"transcript": transcript, "entities": entities})


def _lexicon(seed: int):
    return make_lexicon("en", seed=seed, size=LEXICON_SIZE)
