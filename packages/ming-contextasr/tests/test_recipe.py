"""The tiny recogniser's training recipe (benchmarks/train_recognizer.py): its tokenizer, warm-up samples and loss."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from ming_contextasr import ContextASRRequest, TaggedUtterance, render_prompt

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
recipe = pytest.importorskip("train_recognizer")

NAMES = ["Liza Dakadron", "Gaigurmore", "Stoza Plus", "Tease Kluzegor"]
SENTENCES = [
    "Liza Dakadron flew to Gaigurmore on Friday.",
    "Tease Kluzegor paid 48 dollars for a Stoza Plus.",
    "Gaigurmore is 98 miles from Gaigurmore.",
]


def _utterances() -> list[TaggedUtterance]:
    generator = torch.Generator().manual_seed(0)
    return [
        TaggedUtterance(
            audio=0.1 * torch.randn(8000, generator=generator),
            transcript=text,
            entities=[n for n in NAMES if n in text],
            language="English",
        )
        for text in SENTENCES * 20
    ]


@pytest.fixture(scope="module")
def tokenizer():
    return recipe.build_tokenizer(SENTENCES * 50 + ["Hotwords: Transcribe the speech (language: English)."], 400)


def test_a_name_has_one_spelling_after_a_space(tokenizer):
    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    for name in ["Dakadron", "Zorbakville", "Gaigurmore", "Liza Dakadron"]:
        spaced = ids(" " + name)
        assert spaced == [i for word in name.split() for i in ids(" " + word)]
        # the hotword list (after ": " and "; ") and running text spell it alike
        for before in [":", ";", "Hotwords: Borvale;", "English\tWe met"]:
            assert ids(before + " " + name) == ids(before) + spaced
        # after a tab or newline (a sentence that starts with the name) only the first word lacks its space
        for before in ["\t", "\n", "English\t"]:
            assert ids(before + name) == ids(before) + ids(name)


def test_frequent_words_are_one_token_and_any_text_round_trips(tokenizer):
    assert len(tokenizer(" dollars", add_special_tokens=False)["input_ids"]) == 1
    assert len(tokenizer("Qxzvolt", add_special_tokens=False)["input_ids"]) > 2
    text = "English\tÅsa Ørn paid 1234 dollars — 北京 (ok)."
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
    special = {tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(recipe.AUDIO_TOKEN)}
    assert len(special) == 3
    assert special.isdisjoint(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_warm_up_samples_list_every_name_and_half_copy_the_transcript():
    utterances = _utterances()
    pairs = recipe.epoch_samples(utterances, [*NAMES, "Borvale", "Kalai X7"], seed=0, epoch=0, text_only=True)
    drills = 0
    for (request, answer), utterance in zip(pairs, utterances, strict=True):
        assert set(utterance.entities) <= set(request.hotwords)
        assert answer == f"English\t{utterance.transcript}"
        drills += request.preceding_text == utterance.transcript
    assert 0.3 < drills / len(pairs) < 0.7
    audio_pairs = recipe.epoch_samples(utterances, [*NAMES, "Borvale", "Kalai X7"], seed=0, epoch=0)
    assert all(r.preceding_text is None for r, _ in audio_pairs)
    assert any(not r.hotwords for r, _ in audio_pairs)


def test_text_only_loss_covers_the_answer_only(tokenizer):
    model = recipe.build_recognizer(0, tokenizer)
    request = ContextASRRequest(audio=torch.zeros(800), hotwords=["Gaigurmore"], language="English")
    answer = "English\tGaigurmore is 98 miles from Gaigurmore."
    loss = recipe.text_only_loss(model, [(request, answer), (request.model_copy(update={"hotwords": ()}), answer)])

    prompts = [render_prompt(r).text + "\n" for r in (request, request.model_copy(update={"hotwords": ()}))]
    target = [*tokenizer(answer, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    total, count = 0.0, 0
    for prompt in prompts:
        head = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model.language_model(input_ids=torch.tensor([head + target])).logits[0]
        log_probs = torch.log_softmax(logits[len(head) - 1 : -1], -1)
        total -= log_probs[torch.arange(len(target)), torch.tensor(target)].sum().item()
        count += len(target)
    assert loss.item() == pytest.approx(total / count, rel=1e-4)


def test_stand_in_names_replace_every_name_consistently_and_are_neither_training_nor_test_names():
    data = pytest.importorskip("recognizer_data")
    mapping = data.renaming(2, [0, 3])
    assert mapping == data.renaming(2, [0, 3])
    assert mapping != data.renaming(2, [0, 4])
    trained = set(data.training_names(2))
    test_names = {name for name, _ in data.make_lexicon("en", seed=data.TEST_SEED, size=data.LEXICON_SIZE).entries()}
    assert set(mapping) == trained
    assert not set(mapping.values()) & (trained | test_names)
    lexicon = data.make_lexicon("en", seed=1, size=data.LEXICON_SIZE)
    person, place = lexicon.names("person")[0], lexicon.names("place")[0]
    assert mapping[person] in {
        n for s in data.STAND_IN_SEEDS for n in data.make_lexicon("en", seed=s, size=200).names("person")
    }
    utterance = TaggedUtterance(
        audio=torch.zeros(800),
        transcript=f"{person} flew to {place}; {place} was far.",
        entities=[person, place, place],
        language="English",
    )
    renamed = data.rename(utterance, mapping)
    assert renamed.transcript == f"{mapping[person]} flew to {mapping[place]}; {mapping[place]} was far."
    assert renamed.entities == (mapping[person], mapping[place], mapping[place])
    pairs = recipe.epoch_samples([utterance] * 4, sorted(trained), seed=0, epoch=0, text_only=True, stand_ins=mapping)
    for request, answer in pairs:
        assert answer == f"English\t{renamed.transcript}"
        assert set(request.hotwords) <= set(mapping.values())
