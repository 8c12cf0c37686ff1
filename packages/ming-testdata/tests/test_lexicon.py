import re

import numpy as np
import pytest

from ming_testdata import ENTITY_TYPES, make_lexicon, make_sentence, make_sentences

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
        for entity in sentence.entities:  # an entity never straddles a word boundary
            assert sum(a <= entity.start < b for a, b in sentence.words) == 1
            assert any(a < entity.end <= b for a, b in sentence.words)


def test_sentence_i_does_not_depend_on_how_many_are_made():
    assert make_sentences(3, seed=5) == make_sentences(10, seed=5)[:3]
    assert make_sentences(3, seed=5) != make_sentences(3, seed=6)


def test_lexicon_and_language_must_agree():
    with pytest.raises(ValueError, match="language"):
        make_sentences(2, language="en", lexicon=make_lexicon("cmn"))
    with pytest.raises(ValueError, match="at least 2"):
        make_sentence(np.random.default_rng(0), make_lexicon("en", size=1))
