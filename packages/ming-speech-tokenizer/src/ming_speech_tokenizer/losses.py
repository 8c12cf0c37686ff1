"""Losses of the VAE-GAN (paper §2.2): multi-scale mel L1, LSGAN adversarial, L1 feature matching (the KL term is
:meth:`GaussianPosterior.kl <ming_speech_tokenizer.GaussianPosterior.kl>`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchaudio.transforms import MelSpectrogram

from .discriminators import DiscriminatorOutput

__all__ = ["MultiScaleMelLoss", "feature_matching_loss", "lsgan_discriminator_loss", "lsgan_generator_loss"]


class MultiScaleMelLoss(nn.Module):
    """Sum over scales of the L1 distance between ``log10`` mel magnitudes (floored at 1e-5), as DAC (whose
    weight 15 is for this sum).

    Each scale is a torchaudio ``MelSpectrogram`` with window ``windows[i]``, hop ``windows[i] // 4`` and
    ``n_mels[i]`` bands. Also the multi-scale mel distance reported for evaluation.
    """

    def __init__(
        self,
        sample_rate: int,
        windows: Sequence[int] = (256, 512, 1024, 2048),
        n_mels: Sequence[int] = (20, 40, 80, 160),
    ) -> None:
        super().__init__()
        if len(windows) != len(n_mels) or not windows:
            raise ValueError(f"windows ({list(windows)}) and n_mels ({list(n_mels)}) must be non-empty, same length")
        self.transforms = nn.ModuleList(
            MelSpectrogram(sample_rate, n_fft=w, hop_length=w // 4, n_mels=m, power=1.0)
            for w, m in zip(windows, n_mels, strict=True)
        )

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` waveforms → scalar loss."""
        total = prediction.new_zeros(())
        for mel in self.transforms:
            predicted = mel(prediction.float()).clamp(min=1e-5).log10()
            total = total + (predicted - mel(target.float()).clamp(min=1e-5).log10()).abs().mean()
        return total


def lsgan_discriminator_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> torch.Tensor:
    """Least-squares GAN loss of the discriminators, summed over them: ``mean((1 − D(x))²) + mean(D(x̂)²)``."""
    return sum(((1 - r).pow(2).mean() + f.pow(2).mean() for (r, _), (f, _) in zip(real, fake, strict=True)))


def lsgan_generator_loss(fake: DiscriminatorOutput) -> torch.Tensor:
    """Least-squares GAN loss of the generator, summed over discriminators: ``mean((1 − D(x̂))²)``."""
    return sum((1 - f).pow(2).mean() for f, _ in fake)


def feature_matching_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> torch.Tensor:
    """L1 between the discriminators' feature maps of real (detached) and generated audio, each map's mean absolute
    difference summed over maps and discriminators."""
    return sum(
        (r.detach() - f).abs().mean()
        for (_, real_maps), (_, fake_maps) in zip(real, fake, strict=True)
        for r, f in zip(real_maps, fake_maps, strict=True)
    )
