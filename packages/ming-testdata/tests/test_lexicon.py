import re

import numpy as np
import pytest

from ming_testdata import ENTITY_TYPES, make_lexicon, make_sentence, make_sentences
from ming_testdata._rng import Stream, generator

CJK = re.compile(r"^[\u4e00-\u9fff]+$")


@pytest.mark.parametrize("language", ["en", "cmn"])
def test_lexicon_is_deterministic_per_seed_and_differs_across_seeds(language):
    assert make_lexicon(language, seed=3) == make_lexicon(language, seed=3)
    assert make_lexicon(language, seed=3).persons != make_lexicon(language, seed=4).persons


@pytest.mark.parametrize("language", ["en", "cmn"])
def test_lexicon_names_are_unique_across_types(language):
    lexicon = make_lexicon(language, seed=0, size=100)
    names = [name for name, _ in lexicon.entries()]
    assert len(names) == len(set(names)) == 300
    assert all(len(lexicon.names(kind)) == 100 for kind in ENTITY_TYPES)


def test_mandarin_names_are_chinese_characters_and_english_names_capitalised():
    assert all(CJK.match(name) for name, _ in make_lexicon("cmn").entries())
    assert all(word[0].isupper() for name, _ in make_lexicon("en").entries() for word in name.split())


@pytest.mark.parametrize("language", ["en", "cmn"])
def test_entity_spans_index_their_names_in_the_text(language):
    lexicon = make_lexicon(language, seed=1)
    sentences = make_sentences(40, language=language, seed=1, lexicon=lexicon)
    assert sum(len(s.entities) for s in sentences) >= 40
    for sentence in sentences:
        for entity in sentence.entities:
            assert sentence.text[entity.start : entity.end] == entity.text
            assert entity.text in lexicon.names(entity.type)


@pytest.mark.parametrize("language", ["en", "cmn"])
def test_words_tile_the_sentence(language):
    for sentence in make_sentences(20, language=language, seed=2):
        joined = (" " if language == "en" else "").join(sentence.text[a:b] for a, b in sentence.words)
        assert joined == sentence.text
        starts = {a for a, _ in sentence.words}
        for entity in sentence.entities:
            # An entity starts a word and ends one, but for the sentence's punctuation attached to the last word.
            assert entity.start in starts
            (end,) = [b for a, b in sentence.words if a < entity.end <= b]
            assert all(ch in ".,?!。" for ch in sentence.text[entity.end : end])
            if language == "cmn":  # one template word per Mandarin entity; English ones may span several
                assert (entity.start, end) in sentence.words


def test_sentence_i_does_not_depend_on_how_many_are_made():
    assert make_sentences(3, seed=5) == make_sentences(10, seed=5)[:3]
    assert make_sentences(3, seed=5) != make_sentences(3, seed=6)


def test_lexicon_and_language_must_agree():
    with pytest.raises(ValueError, match="language"):
        make_sentences(2, language="en", lexicon=make_lexicon("cmn"))
    with pytest.raises(ValueError, match="at least 2"):
        make_sentence(np.random.default_rng(0), make_lexicon("en", size=1))


def test_random_streams_never_coincide():
    # A flat default_rng([seed, i]) gives [seed, 0] the stream of [seed], and seeds over 32 bits those of other pairs.
    draws = [
        tuple(generator(seed, stream, *index).random(2))
        for seed in (0, 1, 2**32)
        for stream in Stream
        for index in [(), (0,), (1,), (0, 0)]
    ]
    assert len(set(draws)) == len(draws)
