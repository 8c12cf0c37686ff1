"""Discriminators of the VAE-GAN (paper §2.2: the discriminator trained with the adversarial loss).

Multi-period (HiFi-GAN, periods 2, 3, 5, 7, 11: the waveform folded into ``period`` columns) and multi-resolution
STFT (UnivNet / Vocos: 2D convolutions over magnitude spectrograms at several resolutions). Every sub-discriminator
returns its logits and the feature maps used by the feature-matching loss.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from .configuration import SpeechTokenizerConfig

__all__ = ["MultiPeriodDiscriminator", "MultiResolutionSTFTDiscriminator", "SpeechDiscriminator"]

DiscriminatorOutput = list[tuple[torch.Tensor, list[torch.Tensor]]]
"""Per sub-discriminator, its flattened logits and its feature maps (the last one is the logits' map)."""
_SLOPE = 0.1  # LeakyReLU slope of HiFi-GAN and Vocos


def _run(layers: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    features = []
    for layer in layers:
        x = F.leaky_relu(layer(x), _SLOPE)
        features.append(x)
    x = post(x)
    features.append(x)
    return x.flatten(1), features


class _PeriodDiscriminator(nn.Module):
    def __init__(self, period: int, channels: int) -> None:
        super().__init__()
        self.period = period
        widths = [1, channels, 4 * channels, 16 * channels, 32 * channels, 32 * channels]
        self.layers = nn.ModuleList(
            weight_norm(nn.Conv2d(c_in, c_out, (5, 1), (3 if i < 4 else 1, 1), padding=(2, 0)))
            for i, (c_in, c_out) in enumerate(pairwise(widths))
        )
        self.post = weight_norm(nn.Conv2d(widths[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        padding = -wave.shape[-1] % self.period
        wave = F.pad(wave, (0, padding), mode="reflect")
        return _run(self.layers, self.post, wave.view(wave.shape[0], 1, -1, self.period))


class MultiPeriodDiscriminator(nn.Module):
    """One period discriminator per entry of ``config.discriminator_periods``; ``(B, N)`` → list of
    ``(logits, features)``."""

    def __init__(self, config: SpeechTokenizerConfig) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            _PeriodDiscriminator(p, config.discriminator_channels) for p in config.discriminator_periods
        )

    def forward(self, wave: torch.Tensor) -> DiscriminatorOutput:
        return [d(wave) for d in self.discriminators]


class _SpectrogramDiscriminator(nn.Module):
    def __init__(self, n_fft: int, hop: int, channels: int) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.layers = nn.ModuleList(
            [weight_norm(nn.Conv2d(1, channels, (3, 9), padding=(1, 4)))]
            + [weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), padding=(1, 4))) for _ in range(3)]
            + [weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1)))]
        )
        self.post = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spectrum = torch.stft(
            wave.float(), self.n_fft, self.hop, window=self.window, center=True, return_complex=True
        ).abs()
        return _run(self.layers, self.post, spectrum.transpose(1, 2).unsqueeze(1).to(wave.dtype))


class MultiResolutionSTFTDiscriminator(nn.Module):
    """One spectrogram discriminator per ``[n_fft, hop]`` of ``config.discriminator_stft_resolutions``; ``(B, N)`` →
    list of ``(logits, features)``."""

    def __init__(self, config: SpeechTokenizerConfig) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            _SpectrogramDiscriminator(n_fft, hop, config.discriminator_channels)
            for n_fft, hop in config.discriminator_stft_resolutions
        )

    def forward(self, wave: torch.Tensor) -> DiscriminatorOutput:
        return [d(wave) for d in self.discriminators]


class SpeechDiscriminator(nn.Module):
    """Both discriminator families; ``(B, N)`` → the multi-period outputs followed by the STFT ones."""

    def __init__(self, config: SpeechTokenizerConfig) -> None:
        super().__init__()
        self.multi_period = MultiPeriodDiscriminator(config)
        self.multi_resolution = MultiResolutionSTFTDiscriminator(config)

    def forward(self, wave: torch.Tensor) -> DiscriminatorOutput:
        return self.multi_period(wave) + self.multi_resolution(wave)
