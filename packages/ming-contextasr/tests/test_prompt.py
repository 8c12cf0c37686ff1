"""Context prompts: validation, render → parse round trips, truncation, answer parsing."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from ming_contextasr import (
    ContextASRRequest,
    ContextTruncatedWarning,
    PromptOptions,
    format_transcription,
    parse_prompt,
    parse_transcription,
    render_prompt,
)

AUDIO = np.zeros(1600, dtype=np.float32)


def test_render_parse_round_trip():
    request = ContextASRRequest(
        audio=AUDIO,
        topic="A meeting about\nthe Zorbak  launch.",
        preceding_text="Last week, Quillon said the budget was fine.",
        hotwords=["Zorbak", "Quillon Ltd", "北京大学"],
        language="English",
    )
    prompt = render_prompt(request)
    assert prompt.text.splitlines()[0] == "Topic: A meeting about the Zorbak launch."
    fields = parse_prompt(prompt.text)
    assert fields == prompt.fields
    assert fields.topic == "A meeting about the Zorbak launch."
    assert fields.preceding_text == request.preceding_text
    assert fields.hotwords == ("Zorbak", "Quillon Ltd", "北京大学")
    assert fields.language == "English"
    assert not prompt.truncated


def test_bare_request_renders_only_the_instruction():
    prompt = render_prompt(ContextASRRequest(audio=AUDIO))
    assert len(prompt.text.splitlines()) == 1
    fields = parse_prompt(prompt.text)
    assert (fields.topic, fields.preceding_text, fields.hotwords, fields.language) == (None, None, (), None)


def test_truncation_follows_the_rule_and_is_reported():
    request = ContextASRRequest(
        audio=AUDIO, topic="abcdefghij", preceding_text="0123456789", hotwords=["a1", "b2", "c3", "d4"]
    )
    options = PromptOptions(max_topic_chars=4, max_context_chars=3, max_hotwords=2)
    with pytest.warns(ContextTruncatedWarning, match="6 topic characters, 7 preceding-text characters and 2 hot"):
        prompt = render_prompt(request, options)
    assert (prompt.fields.topic, prompt.dropped_topic) == ("abcd", "efghij")
    assert (prompt.fields.preceding_text, prompt.dropped_context) == ("789", "0123456")  # the end is kept
    assert (prompt.fields.hotwords, prompt.dropped_hotwords) == (("a1", "b2"), ("c3", "d4"))
    assert parse_prompt(prompt.text) == prompt.fields
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = render_prompt(request, PromptOptions(max_topic_chars=4, warn=False))
    assert quiet.truncated
    assert quiet.dropped_topic == "efghij"


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"hotwords": ["ok", 3]}, "hotwords", "hotwords[1] must be a string"),
        ({"hotwords": "Zorbak"}, "hotwords", "not one string"),
        ({"hotwords": ["a;b"]}, "hotwords", "separator"),
        ({"hotwords": 5}, "hotwords", "must be a list of strings, got int 5"),
        ({"audio": np.zeros(0)}, "audio", "audio is empty"),
        ({"audio": np.zeros((2, 1000))}, "audio", "mono"),
        ({"audio": [0.0, float("nan")] * 300}, "audio", "NaN"),
        ({"audio": np.zeros(399, dtype=np.float32)}, "audio", "399 samples at 16000 Hz, fewer than"),
        ({"audio": np.zeros(1600, dtype=np.int16)}, "audio", "float samples in [-1, 1], got int16"),
        ({"audio": torch.zeros(1600, dtype=torch.int32)}, "audio", "got torch.int32"),
        ({"audio": ["a"] * 1600}, "audio", "array of numbers"),
        ({"audio": [[0.0], [0.0, 1.0]]}, "audio", "array of numbers"),
        ({"sample_rate": 22050}, "sample_rate", "22050 Hz"),
        ({"sample_rate": 32000, "allow_resample": True, "audio": np.zeros(790)}, "audio", "395 samples"),
        ({"language": "en\tx"}, "language", "pattern"),
        ({"language": "English\n"}, "language", "pattern"),
    ],
)
def test_bad_input_names_the_field(kwargs, field, message):
    with pytest.raises(ValidationError, match=re.escape(message)) as info:
        ContextASRRequest(**{"audio": AUDIO, **kwargs})
    assert [error["loc"] for error in info.value.errors()] == [(field,)]


def test_tensors_of_any_float_dtype_and_with_gradients_are_accepted():
    source = torch.linspace(-1, 1, 1600, requires_grad=True)
    for audio in (source, source.detach().to(torch.bfloat16)[None], source.detach().double()):
        request = ContextASRRequest(audio=audio)
        assert request.audio.dtype == torch.float32
        assert request.audio.device.type == "cpu"
        assert not request.audio.requires_grad
        torch.testing.assert_close(request.audio, source.detach(), atol=1e-2, rtol=0)
    assert ContextASRRequest(audio=AUDIO, hotwords=None).hotwords == ()


def test_resampling_when_allowed():
    audio = np.sin(np.arange(22050) / 10).astype(np.float32)
    request = ContextASRRequest(audio=audio, sample_rate=22050, allow_resample=True)
    assert request.sample_rate == 16000
    assert request.audio.shape == (16000,)
    assert request.audio.dtype == torch.float32


def test_answer_round_trip_and_errors():
    for language, transcript in [("English", "meet Zorbak\tat noon"), ("Chinese", "我在北京大学")]:
        parsed = parse_transcription(format_transcription(language, transcript) + "\n")
        assert (parsed.language, parsed.text) == (language, transcript)
    with pytest.raises(ValueError, match="not of the form"):
        parse_transcription("no language here")
    loose = parse_transcription(" no language here ", strict=False)
    assert (loose.language, loose.text) == (None, "no language here")
    for language in ("English\t", "English\n"):
        with pytest.raises(ValueError, match="language"):
            format_transcription(language, "x")
    with pytest.raises(ValueError, match="not of the form"):
        parse_transcription("English\n\tx")
