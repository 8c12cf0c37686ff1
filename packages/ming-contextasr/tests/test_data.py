"""Context-sample builder: true entities + distractors, negatives, topics, determinism, ming-testdata input."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from ming_contextasr import (
    ContextSampleOptions,
    TaggedUtterance,
    build_context_samples,
    parse_prompt,
    parse_transcription,
    render_prompt,
)
from ming_testdata import EspeakNotFoundError, SpeechOptions, make_lexicon, make_speech

POOL = ["Zorbak", "Quillon", "Marvessa", "Tobrin", "Elsquith", "Pandrel", "Voskin", "Hallow Bay"]


def _utterances(n: int = 6) -> list[TaggedUtterance]:
    return [
        TaggedUtterance(
            audio=np.zeros(1600 + i, dtype=np.float32),
            transcript=f"Ask Zorbak and Marvessa about item {i}.",
            entities=["Zorbak", "Marvessa"],
            language="English",
        )
        for i in range(n)
    ]


def test_true_entities_and_distractors_at_the_ratio():
    samples = build_context_samples(_utterances(), POOL, ContextSampleOptions(distractor_ratio=1.5, seed=3))
    for sample in samples:
        assert set(sample.true_entities) == {"Zorbak", "Marvessa"}
        assert len(sample.distractors) == 3  # 1.5 × 2 listed entities, an integer: no rounding
        assert not set(sample.distractors) & {"Zorbak", "Marvessa"}  # never a term that is said
        assert sorted(sample.hotwords) == sorted(sample.true_entities + sample.distractors)
        assert parse_transcription(sample.target()).text == sample.transcript
        assert parse_prompt(render_prompt(sample.request()).text).hotwords == sample.hotwords
    assert len({s.hotwords for s in samples}) > 1  # shuffled and drawn per sample


@pytest.mark.parametrize("ratio", [0.5, 1.0, 2.5])
def test_distractors_average_the_ratio_per_listed_entity(ratio):
    one_entity = [
        TaggedUtterance(audio=np.zeros(1600), transcript=f"Ask Zorbak about item {i}.", entities=["Zorbak"],
                        language="English")
        for i in range(1000)
    ]  # fmt: skip
    samples = build_context_samples(one_entity, POOL, ContextSampleOptions(distractor_ratio=ratio, seed=1))
    counts = np.array([len(s.distractors) for s in samples])
    assert set(counts) <= {int(ratio), int(ratio) + 1}  # floor or ceil of ratio × 1, never further off
    assert counts.mean() == pytest.approx(ratio, abs=0.06)  # 4 standard errors of a Bernoulli(0.5) mean
    # With two entities each kept at random, the base is the number listed (at least one).
    options = ContextSampleOptions(distractor_ratio=ratio, entity_keep_probability=0.5, seed=2)
    samples = build_context_samples(_utterances(1000), POOL, options)
    bases = np.array([max(1, len(s.true_entities)) for s in samples])
    counts = np.array([len(s.distractors) for s in samples])
    assert np.all((counts == np.floor(ratio * bases)) | (counts == np.ceil(ratio * bases)))
    assert counts.mean() / bases.mean() == pytest.approx(ratio, rel=0.05)


def test_too_few_distractors_is_an_error():
    with pytest.raises(ValueError, match=r"utterances\[0\] needs 5 distractors .* only 2 of the 4 distractor_pool"):
        build_context_samples(_utterances(1), ["Zorbak", "Marvessa", "Tobrin", "Voskin"], ContextSampleOptions(
            distractor_ratio=2.5))  # fmt: skip
    with pytest.raises(ValueError, match="only 0 of the 2 distractor_pool terms are not said"):
        build_context_samples(_utterances(1), ["zorbak", "MARVESSA"])
    with pytest.raises(ValueError, match="only 0 of the 0 distractor_pool"):
        build_context_samples(_utterances(1), [])
    assert build_context_samples(_utterances(1), [], ContextSampleOptions(distractor_ratio=0))[0].distractors == ()


def test_deterministic_per_seed_and_index():
    options = ContextSampleOptions(seed=7, entity_keep_probability=0.5, topic_probability=0.5)
    first = build_context_samples(_utterances(), POOL, options)
    again = build_context_samples(_utterances(), POOL, options)
    assert [(s.hotwords, s.topic) for s in first] == [(s.hotwords, s.topic) for s in again]
    prefix = build_context_samples(_utterances(3), POOL, options)
    assert [s.hotwords for s in prefix] == [s.hotwords for s in first[:3]]  # sample i depends on (seed, i) only
    other = build_context_samples(_utterances(), POOL, options.model_copy(update={"seed": 8}))
    assert [s.hotwords for s in other] != [s.hotwords for s in first]


def test_negatives_topics_and_keep_probability():
    negatives = build_context_samples(_utterances(), POOL, ContextSampleOptions(negative_probability=1.0))
    assert all(s.true_entities == () and len(s.distractors) == 1 for s in negatives)  # ratio 1 × at least one
    topical = build_context_samples(
        _utterances(), POOL, ContextSampleOptions(topic_probability=1.0, topic_templates=("On {terms}.",))
    )
    assert all(s.topic == "On " + ", ".join(s.hotwords) + "." for s in topical)
    none_kept = build_context_samples(_utterances(), POOL, ContextSampleOptions(entity_keep_probability=0.0))
    assert all(s.true_entities == () for s in none_kept)
    assert all(s.topic is None for s in none_kept)  # default topic_probability 0


def test_errors_name_the_problem():
    with pytest.raises(ValidationError, match=r"entities\[1\]"):
        TaggedUtterance(
            audio=np.zeros(10), transcript="hello Zorbak", entities=["Zorbak", "Quillon"], language="English"
        )
    with pytest.raises(ValidationError, match="topic_templates"):
        ContextSampleOptions(topic_templates=("no slot",))


def test_from_ming_testdata_utterances():
    try:
        utterances = make_speech(SpeechOptions(n=2, seed=0, language="en"))
    except EspeakNotFoundError:
        pytest.skip("espeak-ng is not installed")
    lexicon = make_lexicon("en", seed=0, size=32)
    pool = lexicon.persons + lexicon.places + lexicon.products
    tagged = [
        TaggedUtterance(
            audio=u.audio,
            sample_rate=u.sample_rate,
            transcript=u.transcript,
            entities=[e.text for e in u.entities],
            language="English",
        )
        for u in utterances
    ]
    samples = build_context_samples(tagged, pool, ContextSampleOptions(distractor_ratio=2.0))
    for sample, utterance in zip(samples, utterances, strict=True):
        assert set(sample.true_entities) == {e.text for e in utterance.entities}
        assert len(sample.distractors) == 2 * max(1, len(set(sample.true_entities)))
        assert all(d.lower() not in utterance.transcript.lower() for d in sample.distractors)
        assert sample.request().audio.shape == (len(utterance.audio),)
