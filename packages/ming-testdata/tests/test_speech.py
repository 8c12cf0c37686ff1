import os
import re
import shutil
import subprocess
import wave

import numpy as np
import pytest
import scipy
from pydantic import ValidationError
from scipy.signal import resample_poly

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
from ming_testdata.speech import _trim

CJK = re.compile(r"[\u4e00-\u9fff]")


def rms(audio):
    return float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))


def espeak_output(tmp_path, text, voice="en-us", speed=160, pitch=50):
    """espeak-ng's own WAV for ``text``: float samples in [-1, 1) and the sample rate."""
    wav_path = tmp_path / "raw.wav"
    command = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav_path), text]
    subprocess.run(command, check=True)
    with wave.open(str(wav_path)) as raw:
        pcm = np.frombuffer(raw.readframes(raw.getnframes()), dtype="<i2")
        return pcm.astype(np.float64) / 32768.0, raw.getframerate()


def find(haystack, needle):
    """Offset of ``needle`` as a contiguous run of ``haystack``, or None."""
    for start in np.flatnonzero(haystack[: len(haystack) - len(needle) + 1] == needle[0]):
        if np.array_equal(haystack[start : start + len(needle)], needle):
            return int(start)
    return None


@pytest.mark.usefixtures("espeak")
def test_speak_resamples_espeak_output_to_16khz_float32(tmp_path):
    text = "Resampling keeps the duration."
    raw, rate = espeak_output(tmp_path, text)
    audio = speak(text, "en-us", speed=160, pitch=50)
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert len(audio) / SAMPLE_RATE == pytest.approx(len(raw) / rate, abs=1e-3)
    assert 0.01 < np.abs(audio).max() <= 1.0


@pytest.mark.usefixtures("espeak")
def test_audio_is_clipped_where_resampling_overshoots_full_scale(tmp_path):
    # With espeak-ng 1.51 this sentence peaks near full scale and the resampling filter carries it past 1.
    text, voice = "Drolaixdale is 52 miles from Tafamore.", "en-gb-scotland"
    raw, rate = espeak_output(tmp_path, text, voice, speed=170, pitch=50)
    resampled = resample_poly(raw, SAMPLE_RATE, rate)
    assert np.abs(resampled).max() > 1.0, "this text no longer overshoots; pick one that does"
    audio = speak(text, voice, speed=170, pitch=50)
    np.testing.assert_allclose(audio, np.clip(resampled, -1.0, 1.0), atol=1e-6)
    # The same over many utterances of that loud voice: several reach full scale, none goes past it.
    peaks = [np.abs(u.audio).max() for u in make_speech(SpeechOptions(n=24, seed=0, voices=(voice,)))]
    assert max(peaks) <= 1.0
    assert sum(peak == 1.0 for peak in peaks) >= 2


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
    for a, b in zip(seed0, seed1, strict=True):
        assert a.audio.shape != b.audio.shape or not np.array_equal(a.audio, b.audio)


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
def test_cache_files_are_readable_like_any_other_file(cache_dir):
    speak("Permissions.")
    (path,) = cache_dir.rglob("*.npy")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.usefixtures("espeak")
def test_a_failed_cache_write_leaves_no_file_behind(cache_dir, monkeypatch):
    def failing_save(file, array):
        file.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        speak("Not cached.")
    assert [p for p in cache_dir.rglob("*") if p.is_file()] == []


@pytest.mark.usefixtures("espeak")
def test_a_new_scipy_version_does_not_reuse_cached_audio(cache_dir, monkeypatch):
    speak("Resampled again.")
    monkeypatch.setattr(scipy, "__version__", "0.0.0")
    speak("Resampled again.")
    assert len(list(cache_dir.rglob("*.npy"))) == 2


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
def test_utterances_speak_their_transcript_with_their_voice(language):
    options = SpeechOptions(n=8, seed=2, language=language, use_cache=False)
    lexicon = make_lexicon(language, seed=2, size=options.lexicon_size)
    sentences = make_sentences(8, language=language, seed=2, lexicon=lexicon)
    utterances = make_speech(options)
    for utterance, sentence in zip(utterances, sentences, strict=True):
        assert utterance.transcript == sentence.text
        assert utterance.sample_rate == SAMPLE_RATE
        assert utterance.voice in DEFAULT_VOICES[language]
        assert utterance.speed in options.speeds
        assert utterance.pitch in options.pitches
        alone = speak(utterance.transcript, utterance.voice, speed=utterance.speed, pitch=utterance.pitch)
        np.testing.assert_array_equal(utterance.audio, alone)
        assert utterance.entities
        for entity in utterance.entities:
            assert utterance.transcript[entity.start : entity.end] == entity.text
            assert entity.text in lexicon.names(entity.type)
        assert utterance.words is None
    assert len({(u.voice, u.speed, u.pitch) for u in utterances}) > 1


@pytest.mark.usefixtures("espeak")
def test_custom_voices_are_the_only_ones_used():
    voices = ("en-gb+f3", "en-us+m3")
    utterances = make_speech(SpeechOptions(n=8, seed=4, voices=voices))
    assert {u.voice for u in utterances} == set(voices)
    for utterance in utterances[:2]:
        alone = speak(utterance.transcript, utterance.voice, speed=utterance.speed, pitch=utterance.pitch)
        np.testing.assert_array_equal(utterance.audio, alone)


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
            # The word's audio is the word spoken alone with only its quiet ends cut off.
            segment = utterance.audio[start:end]
            alone = speak(word.text, utterance.voice, speed=utterance.speed, pitch=utterance.pitch)
            offset = find(alone, segment)
            assert offset is not None
            peak = np.abs(alone).max()
            cut = np.concatenate([alone[:offset], alone[offset + len(segment) :]])
            assert len(cut) > 0
            assert np.abs(cut).max() < 0.05 * peak
            assert min(abs(segment[0]), abs(segment[-1])) > 0.01 * peak
            previous_end = word.end_s
        assert len(utterance.audio) == round(previous_end * SAMPLE_RATE) + gap


def test_trimming_empty_or_silent_audio_gives_nothing():
    assert _trim(np.zeros(0, dtype=np.float32)).size == 0
    assert _trim(np.zeros(100, dtype=np.float32)).size == 0


def test_missing_espeak_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without espeak-ng
    assert shutil.which("espeak-ng") is None
    with pytest.raises(EspeakNotFoundError, match=r"espeak-ng.*apt-get install espeak-ng"):
        speak("Hello.")
    with pytest.raises(EspeakNotFoundError, match="apt-get install espeak-ng"):
        make_speech(SpeechOptions(n=1))


def test_a_broken_espeak_gives_an_espeak_error(monkeypatch, tmp_path):
    fake = tmp_path / "espeak-ng"
    fake.write_text("#!/bin/sh\necho 'broken install' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EspeakError, match="broken install"):
        speak("Hello.")


@pytest.mark.usefixtures("espeak")
def test_unknown_voice_raises_espeak_error():
    with pytest.raises(EspeakError, match="nosuchvoice"):
        speak("Hello.", "nosuchvoice")


def test_empty_text_is_rejected():
    with pytest.raises(ValueError, match="empty"):
        speak("   ")


@pytest.mark.parametrize(("argument", "value"), [("speed", 79), ("speed", 451), ("speed", 160.5), ("pitch", -1)])
def test_speak_rejects_out_of_range_speed_and_pitch(argument, value):
    with pytest.raises(ValueError, match=rf"^{argument} must be an integer from"):
        speak("Hello.", **{argument: value})
    # SpeechOptions has the same limits.
    with pytest.raises(ValidationError):
        SpeechOptions(**{f"{argument}s": (value,)})


@pytest.mark.usefixtures("espeak")
def test_speak_accepts_the_limits_of_speech_options():
    for speed in (80, 450):
        assert len(speak("Limits.", speed=speed)) > 0
    for pitch in (0, 99):
        assert len(speak("Limits.", pitch=pitch)) > 0
    SpeechOptions(speeds=(80, 450), pitches=(0, 99))


@pytest.mark.parametrize(
    ("field", "value"),
    [("n", 0), ("pitches", (120,)), ("speeds", (20,)), ("voices", ("en us",)), ("voices", ()), ("language", "fr")],
)
def test_bad_speech_options_name_the_field(field, value):
    with pytest.raises(ValidationError) as error:
        SpeechOptions(**{field: value})
    assert error.value.errors()[0]["loc"][0] == field


def test_unknown_speech_option_is_rejected():
    with pytest.raises(ValidationError) as error:
        SpeechOptions(voice_list_typo=("en-us",))
    assert error.value.errors()[0]["loc"] == ("voice_list_typo",)


def test_default_voices_are_read_only():
    with pytest.raises(TypeError):
        DEFAULT_VOICES["en"] = ("en-us",)  # type: ignore[index]
