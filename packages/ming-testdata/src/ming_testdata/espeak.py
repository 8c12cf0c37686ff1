"""Text to 16 kHz speech with the ``espeak-ng`` command-line synthesiser, cached on disk.

espeak-ng writes 16-bit mono WAV at its own rate (22050 Hz); we read it with the stdlib :mod:`wave` module,
resample it to 16 kHz with :func:`scipy.signal.resample_poly` (polyphase filter, ratio 320/441) and clip it to
[-1, 1].
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import numbers
import os
import shutil
import subprocess
import tempfile
import uuid
import wave
from pathlib import Path

import numpy as np
import scipy
from scipy.signal import resample_poly

SAMPLE_RATE = 16_000
"""Sample rate of all audio made here (Hz)."""

_CACHE_FORMAT = 2  # bump when the stored audio changes for the same inputs (2: clipped to [-1, 1])
_SPEED_RANGE = (80, 450)  # words per minute that espeak-ng accepts
_PITCH_RANGE = (0, 99)
_INSTALL_HINT = "install it with `apt-get install espeak-ng` (Debian/Ubuntu) or `brew install espeak-ng` (macOS)"


class EspeakNotFoundError(RuntimeError):
    """The ``espeak-ng`` executable is not on ``PATH``."""


class EspeakError(RuntimeError):
    """``espeak-ng`` ran but failed (for example: an unknown voice)."""


def default_cache_dir() -> Path:
    """Where made data is cached: ``$MING_TESTDATA_CACHE`` if set, else ``~/.cache/ming-testdata``."""
    env = os.environ.get("MING_TESTDATA_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ming-testdata"


def _executable() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise EspeakNotFoundError(f"espeak-ng was not found on PATH; {_INSTALL_HINT}")
    return path


@functools.cache
def _version(executable: str) -> str:
    # Part of the cache key, so upgrading espeak-ng does not serve audio made by the old one.
    result = subprocess.run([executable, "--version"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise EspeakError(f"`espeak-ng --version` failed (exit {result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip()


def _in_range(name: str, value: int, limits: tuple[int, int]) -> int:
    low, high = limits
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return int(value)  # a plain int for the command line and the JSON cache key


def _synthesise(executable: str, text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        wav_path = Path(tmp) / "speech.wav"
        # Text goes through stdin (-b 1: UTF-8) so text starting with "-" is never read as an option.
        command = [executable, "-b", "1", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav_path)]
        result = subprocess.run([*command, "--stdin"], input=text.encode(), capture_output=True, check=False)
        if result.returncode != 0 or not wav_path.is_file():
            message = result.stderr.decode(errors="replace").strip()
            raise EspeakError(f"espeak-ng failed for voice {voice!r} (exit {result.returncode}): {message}")
        with wave.open(str(wav_path), "rb") as wav:
            if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
                raise EspeakError(f"espeak-ng wrote unexpected WAV parameters: {wav.getparams()}")
            rate = wav.getframerate()
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    audio = pcm.astype(np.float32) / 32768.0
    g = math.gcd(SAMPLE_RATE, rate)
    # The polyphase filter overshoots near-full-scale input by about 1 %, so clip to keep the promised range.
    return np.clip(resample_poly(audio, SAMPLE_RATE // g, rate // g), -1.0, 1.0).astype(np.float32)


def _store(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write a uniquely named file beside the target, then rename, so a concurrent reader never sees half a file;
    # open() (unlike mkstemp, whose files are private) gives it the usual permissions.
    tmp = path.with_name(f"{path.stem}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("xb") as file:
            np.save(file, audio)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def speak(
    text: str,
    voice: str = "en-us",
    *,
    speed: int = 160,
    pitch: int = 50,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
) -> np.ndarray:
    """Synthesise ``text`` with ``espeak-ng`` and return 16 kHz mono float32 audio in [-1, 1].

    espeak-ng's 22050 Hz output is resampled to 16 kHz with :func:`scipy.signal.resample_poly` and clipped to
    [-1, 1] (the filter can overshoot full scale slightly). The same inputs always give the same samples; results are
    cached as ``.npy`` files keyed by the inputs and the espeak-ng and SciPy versions.

    Args:
        text: what to say (UTF-8; Mandarin needs a Mandarin voice).
        voice: an espeak-ng voice, optionally with a variant: ``"en-us"``, ``"en-gb+f3"``, ``"cmn-latn-pinyin"``.
        speed: words per minute, 80–450 (espeak-ng ``-s``).
        pitch: 0–99 (espeak-ng ``-p``).
        cache_dir: cache root; default :func:`default_cache_dir`. Audio is stored under ``<cache_dir>/speech``.
        use_cache: read and write the cache.

    Raises:
        EspeakNotFoundError: ``espeak-ng`` is not installed.
        EspeakError: ``espeak-ng`` failed, e.g. for an unknown voice.
        ValueError: ``text`` is empty, or ``speed`` or ``pitch`` is out of range.
    """
    if not text.strip():
        raise ValueError("text must not be empty")
    speed = _in_range("speed", speed, _SPEED_RANGE)
    pitch = _in_range("pitch", pitch, _PITCH_RANGE)
    executable = _executable()
    if not use_cache:
        return _synthesise(executable, text, voice, speed, pitch)
    key_fields = {"format": _CACHE_FORMAT, "espeak": _version(executable), "rate": SAMPLE_RATE}
    key_fields |= {"resampler": f"scipy.signal.resample_poly {scipy.__version__}"}
    key_fields |= {"text": text, "voice": voice, "speed": speed, "pitch": pitch}
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()
    path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "speech" / key[:2] / f"{key}.npy"
    if path.is_file():
        return np.load(path)
    audio = _synthesise(executable, text, voice, speed, pitch)
    _store(path, audio)
    return audio
