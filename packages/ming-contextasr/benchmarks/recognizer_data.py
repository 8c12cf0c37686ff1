"""Data split of the tiny recogniser (shared by ``train_recognizer.py`` and ``bench_recognizer.py``).

English espeak-ng speech from ming-testdata: every training seed brings its own lexicon of made-up names, the test
seed another one, and test utterances are spoken by voices never heard in training. Test utterances that name
anything from a training lexicon are dropped, so every test entity is unseen.
"""

from __future__ import annotations

from ming_contextasr import TaggedUtterance
from ming_testdata import SpeechOptions, make_lexicon, make_speech

TRAIN_VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-gb-x-rp", "en-029", "en-us+m1", "en-gb+f4")
TEST_VOICES = ("en-gb-scotland", "en-us+f2")
TEST_SEED = 10_000
LEXICON_SIZE = 32  # names per entity type and seed


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
