import re
import shutil
import subprocess
import wave

import numpy as np
import pytest
from pydantic import ValidationError

from ming_testdata import (
    DEFAULT_VOICES,
    SAMPLE_RATE,
    EspeakError,
    EspeakNotFoundError,
    SpeechOptions,
    make_lexicon,
    make_sentences,
    make_speech,
    speak,
)

CJK = re.compile(r"[\u4e00-\u9fff]")


def rms(audio):
    return float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))


@pytest.mark.usefixtures("espeak")
def test_speak_resamples_espeak_output_to_16khz_float32(tmp_path):
    text = "Resampling keeps the duration."
    wav_path = tmp_path / "raw.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-p", "50", "-w", str(wav_path), text], check=True)
    with wave.open(str(wav_path)) as raw:
        raw_seconds = raw.getnframes() / raw.getframerate()
    audio = speak(text, "en-us", speed=160, pitch=50)
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert len(audio) / SAMPLE_RATE == pytest.approx(raw_seconds, abs=1e-3)
    assert 0.01 < np.abs(audio).max() <= 1.0


@pytest.mark.usefixtures("espeak")
def test_longer_text_gives_longer_audio():
    short = speak("Hello.")
    medium = speak("Hello there, how are you?")
    long = speak("Hello there, how are you? I hope the weather in your town is pleasant this week.")
    assert len(short) < len(medium) < len(long)


@pytest.mark.usefixtures("espeak")
def test_faster_speech_is_shorter():
    text = "The quick brown fox jumps over the lazy dog."
    assert len(speak(text, speed=250)) < len(speak(text, speed=120))


@pytest.mark.usefixtures("espeak")
def test_voices_pitches_and_seeds_change_the_audio():
    text = "Different voices sound different."
    us, gb = speak(text, "en-us"), speak(text, "en-gb+f3")
    assert us.shape != gb.shape or not np.array_equal(us, gb)
    low, high = speak(text, pitch=20), speak(text, pitch=80)
    assert low.shape != high.shape or not np.array_equal(low, high)
    seed0 = make_speech(SpeechOptions(n=2, seed=0))
    seed1 = make_speech(SpeechOptions(n=2, seed=1))
    assert [u.transcript for u in seed0] != [u.transcript for u in seed1]


@pytest.mark.usefixtures("espeak")
def test_same_seed_gives_identical_audio(cache_dir):
    options = SpeechOptions(n=3, seed=7, use_cache=False)
    first, second = make_speech(options), make_speech(options)
    for a, b in zip(first, second, strict=True):
        assert (a.transcript, a.voice, a.speed, a.pitch) == (b.transcript, b.voice, b.speed, b.pitch)
        np.testing.assert_array_equal(a.audio, b.audio)
    assert not cache_dir.exists()  # use_cache=False writes nothing
    cached = make_speech(options.model_copy(update={"use_cache": True}))
    for a, b in zip(first, cached, strict=True):
        np.testing.assert_array_equal(a.audio, b.audio)


@pytest.mark.usefixtures("espeak")
def test_second_call_is_served_from_the_cache(cache_dir, monkeypatch):
    calls = []
    real_run = subprocess.run

    def counting_run(command, *args, **kwargs):
        if "--stdin" in command:
            calls.append(command)
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", counting_run)
    options = SpeechOptions(n=3, seed=11)
    first = make_speech(options)
    assert len(calls) == 3
    files = sorted(cache_dir.rglob("*.npy"))
    mtimes = [f.stat().st_mtime_ns for f in files]
    assert len(files) == 3
    second = make_speech(options)
    assert len(calls) == 3  # no new synthesis
    assert [f.stat().st_mtime_ns for f in sorted(cache_dir.rglob("*.npy"))] == mtimes
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.audio, b.audio)


@pytest.mark.usefixtures("espeak")
def test_cache_dir_option_overrides_the_environment(tmp_path, cache_dir):
    own = tmp_path / "own"
    speak("Cached elsewhere.", cache_dir=own)
    assert len(list(own.rglob("*.npy"))) == 1
    assert not cache_dir.exists()
    speak("Cached by default.")
    assert len(list(cache_dir.rglob("*.npy"))) == 1


@pytest.mark.usefixtures("espeak")
@pytest.mark.parametrize("language", ["en", "cmn"])
def test_utterances_carry_transcripts_and_entity_spans(language):
    options = SpeechOptions(n=4, seed=2, language=language)
    lexicon = make_lexicon(language, seed=2, size=options.lexicon_size)
    sentences = make_sentences(4, language=language, seed=2, lexicon=lexicon)
    for utterance, sentence in zip(make_speech(options), sentences, strict=True):
        assert utterance.transcript == sentence.text
        assert utterance.sample_rate == SAMPLE_RATE
        assert utterance.audio.dtype == np.float32
        assert utterance.voice in DEFAULT_VOICES[language]
        assert utterance.entities
        for entity in utterance.entities:
            assert utterance.transcript[entity.start : entity.end] == entity.text
            assert entity.text in lexicon.names(entity.type)
        assert utterance.words is None


@pytest.mark.usefixtures("espeak")
def test_mandarin_sentences_are_spoken():
    utterances = make_speech(SpeechOptions(n=3, seed=0, language="cmn"))
    for utterance in utterances:
        assert CJK.search(utterance.transcript)
        characters = len(CJK.findall(utterance.transcript))
        # Roughly a syllable per character: neither silence nor a few letters read out.
        assert 0.1 < utterance.duration_s / characters < 0.6
        assert rms(utterance.audio) > 0.01


@pytest.mark.usefixtures("espeak")
@pytest.mark.parametrize("language", ["en", "cmn"])
def test_word_timings_locate_each_word_in_the_audio(language):
    options = SpeechOptions(n=2, seed=3, language=language, word_timings=True, word_gap_s=0.05)
    gap = round(0.05 * SAMPLE_RATE)
    for utterance in make_speech(options):
        words = utterance.words
        assert words is not None
        separator = " " if language == "en" else ""
        assert separator.join(w.text for w in words) == utterance.transcript
        previous_end = 0.0
        for word in words:
            assert utterance.transcript[word.char_start : word.char_end] == word.text
            start, end = round(word.start_s * SAMPLE_RATE), round(word.end_s * SAMPLE_RATE)
            assert start - round(previous_end * SAMPLE_RATE) == gap
            assert not utterance.audio[start - gap : start].any()  # silence before each word
            segment = utterance.audio[start:end]
            alone = speak(word.text, utterance.voice, speed=utterance.speed, pitch=utterance.pitch)
            threshold = 0.02 * np.abs(alone).max()
            loud = np.flatnonzero(np.abs(alone) > threshold)
            np.testing.assert_array_equal(segment, alone[loud[0] : loud[-1] + 1])
            previous_end = word.end_s
        assert len(utterance.audio) == round(previous_end * SAMPLE_RATE) + gap


def test_missing_espeak_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without espeak-ng
    assert shutil.which("espeak-ng") is None
    with pytest.raises(EspeakNotFoundError, match=r"espeak-ng.*apt-get install espeak-ng"):
        speak("Hello.")
    with pytest.raises(EspeakNotFoundError, match="apt-get install espeak-ng"):
        make_speech(SpeechOptions(n=1))


@pytest.mark.usefixtures("espeak")
def test_unknown_voice_raises_espeak_error():
    with pytest.raises(EspeakError, match="nosuchvoice"):
        speak("Hello.", "nosuchvoice")


def test_empty_text_is_rejected():
    with pytest.raises(ValueError, match="empty"):
        speak("   ")


@pytest.mark.parametrize(
    ("field", "value"),
    [("n", 0), ("pitches", (120,)), ("speeds", (20,)), ("voices", ("en us",)), ("voices", ()), ("language", "fr")],
)
def test_bad_speech_options_name_the_field(field, value):
    with pytest.raises(ValidationError, match=field):
        SpeechOptions(**{field: value})


def test_unknown_speech_option_is_rejected():
    with pytest.raises(ValidationError, match="voice_list_typo"):
        SpeechOptions(voice_list_typo=("en-us",))
