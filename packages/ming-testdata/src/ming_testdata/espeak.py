"""Text to 16 kHz speech with the ``espeak-ng`` command-line synthesiser, cached on disk.

espeak-ng writes 16-bit mono WAV at its own rate (22050 Hz); we read it with the stdlib :mod:`wave` module and
resample it to 16 kHz with :func:`scipy.signal.resample_poly` (polyphase filter, ratio 320/441).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

SAMPLE_RATE = 16_000
"""Sample rate of all audio made here (Hz)."""

_CACHE_FORMAT = 1  # bump when the stored audio changes for the same inputs
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
    return subprocess.run([executable, "--version"], capture_output=True, text=True, check=True).stdout.strip()


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
    return resample_poly(audio, SAMPLE_RATE // g, rate // g).astype(np.float32)


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

    espeak-ng's 22050 Hz output is resampled to 16 kHz with :func:`scipy.signal.resample_poly`. The same inputs
    always give the same samples; results are cached as ``.npy`` files keyed by the inputs and the espeak-ng version.

    Args:
        text: what to say (UTF-8; Mandarin needs a Mandarin voice).
        voice: an espeak-ng voice, optionally with a variant: ``"en-us"``, ``"en-gb+f3"``, ``"cmn-latn-pinyin"``.
        speed: words per minute (espeak-ng ``-s``).
        pitch: 0–99 (espeak-ng ``-p``).
        cache_dir: cache root; default :func:`default_cache_dir`. Audio is stored under ``<cache_dir>/speech``.
        use_cache: read and write the cache.

    Raises:
        EspeakNotFoundError: ``espeak-ng`` is not installed.
        EspeakError: ``espeak-ng`` failed, e.g. for an unknown voice.
    """
    if not text.strip():
        raise ValueError("text must not be empty")
    executable = _executable()
    if not use_cache:
        return _synthesise(executable, text, voice, speed, pitch)
    key_fields = {"format": _CACHE_FORMAT, "espeak": _version(executable), "rate": SAMPLE_RATE}
    key_fields |= {"text": text, "voice": voice, "speed": speed, "pitch": pitch}
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()
    path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "speech" / key[:2] / f"{key}.npy"
    if path.is_file():
        return np.load(path)
    audio = _synthesise(executable, text, voice, speed, pitch)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a concurrent reader never sees half a file.
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
        np.save(tmp, audio)
    os.replace(tmp.name, path)
    return audio
