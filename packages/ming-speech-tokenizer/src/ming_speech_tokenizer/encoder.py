"""Causal encoder and Gaussian posterior of the speech tokenizer (paper §2.2: the VAE's encoder).

Waveform → strided convolution (one output per ``hop_length`` samples, each seeing the ``n_fft`` samples that end at
its frame's last sample; with ``encoder_log_spectrum`` plus a linear map of the log-magnitude spectrum of the same
Hann-windowed samples) → causal transformer → mean and log-variance of a diagonal Gaussian per latent frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .configuration import SpeechTokenizerConfig
from .transformer import CausalTransformer, KVState

__all__ = ["GaussianPosterior", "SpeechEncoder"]

_LOGVAR_RANGE = (-30.0, 20.0)  # as diffusers' DiagonalGaussianDistribution: keeps exp(logvar) finite
_LOG_FLOOR = 1e-5  # magnitude floor of the log spectrum, as the mel loss's


@dataclass
class GaussianPosterior:
    """Diagonal Gaussian over latent frames; ``mean`` and ``logvar`` are ``(B, T, latent_dim)``."""

    mean: torch.Tensor
    logvar: torch.Tensor

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """A reparameterised draw ``mean + exp(logvar / 2) · ε`` (differentiable in mean and logvar)."""
        noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + (0.5 * self.logvar).exp() * noise

    def kl(self) -> torch.Tensor:
        """KL divergence to a standard normal, summed over latent channels, averaged over batch and frames."""
        return 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar).sum(-1).mean()


class SpeechEncoder(nn.Module):
    """``(B, T · hop)`` waveform → :class:`GaussianPosterior` over ``T`` frames (causal)."""

    def __init__(self, config: SpeechTokenizerConfig) -> None:
        super().__init__()
        self.hop = config.hop_length
        self.context = config.n_fft - config.hop_length
        self.n_fft = config.n_fft
        self.conv = nn.Conv1d(1, config.hidden_size, kernel_size=config.n_fft, stride=config.hop_length)
        self.spectrum = nn.Linear(config.n_fft // 2 + 1, config.hidden_size) if config.encoder_log_spectrum else None
        self.transformer = CausalTransformer(config, config.encoder_layers)
        self.to_posterior = nn.Linear(config.hidden_size, 2 * config.latent_dim)

    def forward(
        self,
        wave: torch.Tensor,
        context: torch.Tensor | None = None,
        state: KVState | None = None,
        start: int = 0,
    ) -> tuple[GaussianPosterior, KVState]:
        """Encode ``wave`` (a multiple of ``hop`` samples). ``context`` holds the ``n_fft − hop`` samples before it
        (zeros at the start of a signal); ``state`` and ``start`` continue a previous chunk (see
        :class:`~ming_speech_tokenizer.CausalTransformer`)."""
        wave = F.pad(wave, (self.context, 0)) if context is None else torch.cat((context, wave), dim=-1)
        wave = wave.to(self.conv.weight.dtype)
        hidden = self.conv(wave.unsqueeze(1)).transpose(1, 2)
        if self.spectrum is not None:
            # the same n_fft samples per frame as the convolution sees
            frames = wave.float().unfold(-1, self.n_fft, self.hop) * torch.hann_window(self.n_fft, device=wave.device)
            log_magnitude = torch.fft.rfft(frames).abs().clamp(min=_LOG_FLOOR).log()
            hidden = hidden + self.spectrum(log_magnitude.to(hidden.dtype))
        hidden, state = self.transformer(hidden, state, start)
        mean, logvar = self.to_posterior(hidden).chunk(2, dim=-1)
        return GaussianPosterior(mean, logvar.clamp(*_LOGVAR_RANGE)), state
