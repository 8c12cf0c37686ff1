"""Checks of what users pass to ``encode`` / ``decode`` / the streaming classes: errors name the argument."""

from __future__ import annotations

import numpy as np
import torch
import torchaudio

from .configuration import SpeechTokenizerConfig


def check_positive_int(value: object, name: str) -> int:
    """``value`` if it is a positive ``int``; a ``TypeError`` (bool, float, ...) or ``ValueError`` (≤ 0) naming
    ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive integer, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def as_float_tensor(value: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    """``value`` as a tensor of finite floating-point values with at least one element."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))  # from_numpy refuses negative strides (x[::-1])
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(
            f"{name} must hold floating-point values (audio in [-1, 1]), got dtype {value.dtype}; "
            "convert integer PCM first, e.g. x / 32768 for int16"
        )
    if value.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(value.shape)})")
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return value


def to_mono(wave: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``(B, N)`` mono clips from ``(N,)`` (one clip), ``(B, N)`` (a batch of mono clips) or ``(B, C, N)`` with
    ``C ≤ 2`` channels (averaged)."""
    wave = as_float_tensor(wave, "wave")
    if wave.dim() == 3 and wave.shape[1] <= 2:
        return wave.mean(dim=1)
    if wave.dim() in (1, 2):
        return wave.reshape(-1, wave.shape[-1])
    raise ValueError(
        "wave must be (samples,), (batch, samples) of mono clips or (batch, channels ≤ 2, samples), "
        f"got shape {tuple(wave.shape)}"
    )


def prepare_wave(wave: torch.Tensor | np.ndarray, sample_rate: int, config: SpeechTokenizerConfig) -> torch.Tensor:
    """``(B, N)`` mono audio at ``config.sampling_rate`` from ``(N,)``, ``(B, N)`` or ``(B, C ≤ 2, N)`` audio at
    ``sample_rate`` (channels averaged, resampled with torchaudio when the rates differ), at least one frame long."""
    sample_rate = check_positive_int(sample_rate, "sample_rate")
    wave = to_mono(wave)
    if sample_rate != config.sampling_rate:
        wave = torchaudio.functional.resample(wave, sample_rate, config.sampling_rate)
    if wave.shape[-1] < config.hop_length:
        milliseconds = 1000 * config.hop_length / config.sampling_rate
        raise ValueError(
            f"wave is too short: {wave.shape[-1]} samples at {config.sampling_rate} Hz (after resampling from "
            f"{sample_rate} Hz) is less than one latent frame ({config.hop_length} samples, {milliseconds:g} ms)"
        )
    return wave


def check_latents(latents: torch.Tensor | np.ndarray, config: SpeechTokenizerConfig) -> torch.Tensor:
    """``latents`` as a ``(B, T, latent_dim)`` float tensor with ``T ≥ 1``."""
    latents = as_float_tensor(latents, "latents")
    if latents.dim() != 3 or latents.shape[-1] != config.latent_dim:
        raise ValueError(f"latents must be (batch, frames, {config.latent_dim}), got shape {tuple(latents.shape)}")
    return latents
