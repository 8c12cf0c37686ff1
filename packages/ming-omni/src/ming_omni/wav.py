"""16-bit PCM WAV files for the CLI and examples (stdlib :mod:`wave`; no resampling: the rate must match)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import torch

__all__ = ["read_wav", "write_wav"]


def read_wav(path: str | Path, sample_rate: int = 16_000) -> torch.Tensor:
    """Mono 16-bit WAV at ``sample_rate`` → float32 ``(samples,)`` in [-1, 1].

    Raises:
        ValueError: the file is not 16-bit PCM, not mono, or at another rate (resample it first).
    """
    with wave.open(str(path), "rb") as handle:
        channels, width, rate = handle.getnchannels(), handle.getsampwidth(), handle.getframerate()
        frames = handle.readframes(handle.getnframes())
    if width != 2 or channels != 1:
        raise ValueError(f"{path}: need mono 16-bit PCM, got {channels} channel(s) of {8 * width} bits")
    if rate != sample_rate:
        raise ValueError(f"{path}: sample rate is {rate} Hz, expected {sample_rate} Hz (resample it first)")
    return torch.from_numpy(np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0)


def write_wav(path: str | Path, audio: torch.Tensor | np.ndarray, sample_rate: int = 16_000) -> None:
    """Write mono float audio in [-1, 1] as 16-bit PCM (values outside are clipped)."""
    samples = audio.detach().float().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
    if samples.ndim != 1:
        raise ValueError(f"audio must be mono (samples,), got shape {samples.shape}")
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(pcm.tobytes())
