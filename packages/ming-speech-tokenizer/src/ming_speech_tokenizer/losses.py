"""Losses of the VAE-GAN (paper §2.2): multi-scale mel L1, LSGAN adversarial, L1 feature matching (the KL term is
:meth:`GaussianPosterior.kl <ming_speech_tokenizer.GaussianPosterior.kl>`), and two reconstruction terms that see
what the mel loss does not, without a discriminator: a multi-resolution STFT loss on linear magnitudes (Parallel
WaveGAN), a multi-resolution loss on power-law compressed complex spectra (magnitude and phase of the waveform
itself), APNet's anti-wrapping phase loss on the ISTFT head's spectra, and an L1 loss on power-law compressed mel
band magnitudes that, unlike the log-mel loss, weighs loud frames more than quiet ones; and the mel anchor's L1,
which ties the mel-anchored latent channels to the input's normalised log-mel levels."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchaudio.transforms import MelSpectrogram

from .discriminators import DiscriminatorOutput

__all__ = [
    "CompressedComplexSTFTLoss",
    "MelBandEnergyLoss",
    "MultiResolutionSTFTLoss",
    "MultiScaleMelLoss",
    "compressed_complex_distance",
    "feature_matching_loss",
    "log_magnitude_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "mel_anchor_loss",
    "phase_loss",
    "pitch_loss",
]


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


class MelBandEnergyLoss(nn.Module):
    """Mean L1 distance between power-law compressed mel band magnitudes ``M^c`` (``c = compression``, 0.3 by
    default; magnitudes floored at 1e-5) of two waveforms, at one scale: by default 64 bands, window 1280, hop 320,
    the mel from which the issue's Griffin-Lim floor is made.

    The log-mel L1 of :class:`MultiScaleMelLoss` weighs an error of a given ratio equally in a silent frame and in
    a loud one; STOI compares the band envelopes of the loud frames only (it drops those 40 dB under the loudest).
    On compressed magnitudes an error of a given ratio costs in proportion to ``M^c``: the loud frames and bands,
    which carry the band energies over time, dominate, and the loss is sensitive to the level as well.
    """

    def __init__(
        self,
        sample_rate: int,
        window: int = 1280,
        hop: int = 320,
        n_mels: int = 64,
        compression: float = 0.3,
    ) -> None:
        super().__init__()
        if not 0 < compression <= 1:
            raise ValueError(f"compression must be in (0, 1], got {compression}")
        self.compression = compression
        self.mel = MelSpectrogram(sample_rate, n_fft=window, hop_length=hop, n_mels=n_mels, power=1.0)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` waveforms → scalar loss."""
        predicted, wanted = (self.mel(x.float()).clamp(min=1e-5) ** self.compression for x in (prediction, target))
        return (predicted - wanted).abs().mean()


class _MultiResolutionSpectra(nn.Module):
    """Holds ``[n_fft, hop]`` resolutions with their Hann windows and yields the complex STFTs of two waveforms at
    each; the multi-resolution losses below differ only in what they compare."""

    def __init__(self, resolutions: Sequence[Sequence[int]]):
        super().__init__()
        if not resolutions or any(len(r) != 2 or not 0 < r[1] <= r[0] for r in resolutions):
            raise ValueError(
                f"resolutions must be non-empty [n_fft, hop] pairs with 0 < hop <= n_fft, got {resolutions}"
            )
        self.resolutions = [tuple(int(v) for v in r) for r in resolutions]
        for n_fft, _ in self.resolutions:
            self.register_buffer(f"window_{n_fft}", torch.hann_window(n_fft), persistent=False)

    def _spectra(self, prediction: torch.Tensor, target: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for n_fft, hop in self.resolutions:
            window = getattr(self, f"window_{n_fft}")
            yield tuple(
                torch.stft(x.float(), n_fft, hop, window=window, return_complex=True) for x in (prediction, target)
            )


class MultiResolutionSTFTLoss(_MultiResolutionSpectra):
    """Parallel WaveGAN's multi-resolution STFT loss: per ``[n_fft, hop]`` resolution, spectral convergence
    ``‖|S| − |Ŝ|‖_F / ‖|S|‖_F`` plus the L1 distance of log magnitudes (floored at 1e-5), averaged over resolutions.

    Linear-frequency magnitudes resolve the pitch harmonics that the mel bands merge at high frequencies, and the
    magnitude of the synthesised waveform drops where the decoder's overlapping frames disagree in phase, so this
    loss also penalises incoherent phases (not phase itself: see :func:`phase_loss`).
    """

    def __init__(self, resolutions: Sequence[Sequence[int]] = ((2048, 512), (1024, 256), (512, 128), (256, 64))):
        super().__init__(resolutions)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` waveforms → scalar loss."""
        total = prediction.new_zeros((), dtype=torch.float32)
        for predicted, wanted in self._spectra(prediction, target):
            predicted, wanted = predicted.abs(), wanted.abs()
            convergence = (wanted - predicted).norm() / wanted.norm().clamp(min=1e-5)
            log_distance = (predicted.clamp(min=1e-5).log() - wanted.clamp(min=1e-5).log()).abs().mean()
            total = total + convergence + log_distance
        return total / len(self.resolutions)


class CompressedComplexSTFTLoss(_MultiResolutionSpectra):
    """Mean over ``[n_fft, hop]`` resolutions of the mean distance in the complex plane between power-law compressed
    spectra ``|S|^c · e^{iφ}`` (``c = compression``, 0.3 as in speech enhancement's compressed complex losses) of
    two waveforms.

    Unlike :class:`MultiResolutionSTFTLoss` it sees the phase of the waveform itself, each bin in proportion to
    its compressed magnitude; unlike :func:`phase_loss` on the ISTFT head's spectra it sees the overlap-added
    result, so phases that are each near their frame's target but disagree between the overlapping frames (and
    cancel) are penalised too. The compression keeps the weak high bands in the loss.
    """

    def __init__(
        self, resolutions: Sequence[Sequence[int]] = ((2048, 512), (1024, 256), (512, 128)), compression: float = 0.3
    ):
        super().__init__(resolutions)
        if not 0 < compression <= 1:
            raise ValueError(f"compression must be in (0, 1], got {compression}")
        self.compression = compression

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` waveforms → scalar loss."""
        total = prediction.new_zeros((), dtype=torch.float32)
        for predicted, wanted in self._spectra(prediction, target):
            total = total + compressed_complex_distance(predicted, wanted, self.compression)
        return total / len(self.resolutions)


def compressed_complex_distance(
    predicted: torch.Tensor, target: torch.Tensor, compression: float = 0.3
) -> torch.Tensor:
    """Mean ``|P − T|`` over complex spectra of any (equal) shape after power-law compression
    ``S ↦ |S|^c · e^{iφ}``: magnitude and phase error together, each bin in proportion to its compressed magnitude.

    Also the ISTFT head's consistency loss (``TrainingRecipe.consistency_weight``): its predicted spectra against
    :meth:`ISTFTHead.analyze <ming_speech_tokenizer.ISTFTHead.analyze>` of the waveform they overlap-add to, which
    differ where overlapping frames disagree in phase and cancel, needing no target phase (Griffin-Lim's condition).
    """

    def compress(spectrum: torch.Tensor) -> torch.Tensor:
        # the 1e-8 keeps the gradient of |S|^c finite in silent bins
        magnitude = (spectrum.real.square() + spectrum.imag.square() + 1e-8).sqrt()
        return spectrum * magnitude ** (compression - 1)

    difference = compress(predicted) - compress(target)
    return (difference.real.square() + difference.imag.square() + 1e-12).sqrt().mean()


def log_magnitude_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance between log-magnitude spectra ``(B, T, F)``: ``predicted`` natural-log magnitudes (the
    ISTFT head's, before its exponential) and ``target`` complex spectra, both floored at 1e-5 (as the mel loss).

    APNet's amplitude loss (L1 here, as the other reconstruction terms): every one of the head's ``n_fft // 2 + 1``
    bins gets its own target, including the pitch harmonics that the mel bands merge, rather than only the mel
    bands of the overlap-added waveform.
    """
    floor = math.log(1e-5)
    return (predicted.clamp(min=floor) - target.abs().clamp(min=1e-5).log()).abs().mean()


def mel_anchor_loss(latents: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance between the first ``M`` channels of latents ``(B, T, latent_dim)`` (training: the posterior
    mean) and ``target`` ``(B, T, M)``, the normalised log-mel levels of the same frames
    (:meth:`MelAnchor.target <ming_speech_tokenizer.MelAnchor.target>` of the input's spectra): ties the mel-anchored
    channels to what the ISTFT head's base reads from them."""
    return (latents[..., : target.shape[-1]].float() - target).abs().mean()


def _anti_wrapped(difference: torch.Tensor) -> torch.Tensor:
    """``|x − 2π · round(x / 2π)|``: the distance between two phases on the circle (APNet's anti-wrapping)."""
    return (difference - 2 * math.pi * torch.round(difference / (2 * math.pi))).abs()


def phase_loss(
    predicted: torch.Tensor,
    target: torch.Tensor,
    magnitude: torch.Tensor | None = None,
    instantaneous: bool = True,
) -> torch.Tensor:
    """APNet's anti-wrapping phase loss between phase spectra ``(B, T, F)`` (radians) of the same frames:
    instantaneous phase + group delay (phase differences between neighbouring bins) + instantaneous angular frequency
    (phase differences between neighbouring frames), each the mean anti-wrapped distance, summed (without
    ``instantaneous``, the last two only: phase relations between bins and frames, not the phases themselves).

    With ``magnitude`` (the target's magnitudes, ``(B, T, F)``) each term is a mean weighted by the magnitude of
    its bin (of the weaker of the two bins for a difference): the phase of a near-silent bin is noise that no model
    can predict, and in speech those bins are most of them, so the unweighted mean mostly measures noise.

    Used on the ISTFT head's phases against :meth:`ISTFTHead.analyze <ming_speech_tokenizer.ISTFTHead.analyze>` of
    the input: the phase the head predicts gets a direct target, which the magnitude-only losses never give it.
    """
    if magnitude is None:
        magnitude = torch.ones_like(target)

    def mean(error: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return (error * weight).sum() / weight.sum().clamp(min=1e-8)

    total = mean(_anti_wrapped(predicted - target), magnitude) if instantaneous else predicted.new_zeros(())
    group_delay = mean(
        _anti_wrapped(predicted.diff(dim=-1) - target.diff(dim=-1)),
        torch.minimum(magnitude[..., 1:], magnitude[..., :-1]),
    )
    frequency = mean(
        _anti_wrapped(predicted.diff(dim=-2) - target.diff(dim=-2)),
        torch.minimum(magnitude[..., 1:, :], magnitude[..., :-1, :]),
    )
    return total + group_delay + frequency


def pitch_loss(
    logits: torch.Tensor, target: torch.Tensor, correlation: torch.Tensor, threshold: float = 0.45
) -> torch.Tensor:
    """Cross-entropy of the harmonic comb's fundamental logits ``(B, T, candidates)`` against the teacher's
    candidates ``target`` ``(B, T)``, averaged over the frames whose teacher ``correlation`` ``(B, T)`` exceeds
    ``threshold`` (voiced ones; 0 when there are none). See :meth:`HarmonicComb.pitch_targets
    <ming_speech_tokenizer.HarmonicComb.pitch_targets>`: without this teacher the comb's softmax, trained only
    through the magnitudes, settles on fundamentals that are not the voice's."""
    voiced = (correlation > threshold).float()
    losses = F.cross_entropy(logits.flatten(0, -2), target.flatten(), reduction="none")
    return (losses * voiced.flatten()).sum() / voiced.sum().clamp(min=1)


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
