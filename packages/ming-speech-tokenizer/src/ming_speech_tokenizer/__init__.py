"""ming-speech-tokenizer: the continuous VAE-GAN speech tokenizer of Ming-Flash-Omni (paper §2.2).

- :class:`SpeechTokenizerConfig` (``flash()`` / ``tiny()``) and :class:`SpeechTokenizerModel`: causal transformer
  encoder → diagonal Gaussian latent (50 frames/s × 64 dims at 16 kHz) → causal transformer decoder → Vocos-style
  ISTFT head; ``encode(wave, sample_rate)`` / ``decode(latents)``, ``save_pretrained`` / ``from_pretrained``.
- :class:`StreamingDecoder` (20 ms of audio per latent frame, 60 ms behind, equal to full decoding) and
  :class:`StreamingEncoder`; :func:`estimate_latent_scaling_factor` for the latents' unit scale.
- Optional :class:`HarmonicComb` of the ISTFT head (``harmonic_candidates`` > 0): pitch harmonics as a softmax over
  candidate fundamentals; optional :class:`MelAnchor` (``mel_anchor_bands`` > 0): latent channels tied to the
  log-mel levels, from which the head takes a base log-magnitude.
- Training: :class:`SpeechDiscriminator` (multi-period + multi-resolution STFT), the losses (mel, LSGAN, feature
  matching, and the optional multi-resolution STFT, compressed complex STFT, mel band energy, log-magnitude, phase and
  pitch terms), and
  :func:`train_speech_tokenizer` driven by a :class:`TrainingRecipe`.
"""

from .configuration import SpeechTokenizerConfig
from .decoder import SpeechDecoder
from .discriminators import MultiPeriodDiscriminator, MultiResolutionSTFTDiscriminator, SpeechDiscriminator
from .encoder import GaussianPosterior, SpeechEncoder
from .istft_head import HarmonicComb, ISTFTHead, MelAnchor, overlap_add
from .losses import (
    CompressedComplexSTFTLoss,
    MelBandEnergyLoss,
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    compressed_complex_distance,
    feature_matching_loss,
    log_magnitude_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    mel_anchor_loss,
    phase_loss,
    pitch_loss,
)
from .modeling import SpeechTokenizerModel, SpeechTokenizerOutput, estimate_latent_scaling_factor
from .streaming import StreamingDecoder, StreamingEncoder
from .training import TrainingLog, TrainingRecipe, train_speech_tokenizer
from .transformer import CausalTransformer, KVState

__all__ = [
    "CausalTransformer",
    "CompressedComplexSTFTLoss",
    "GaussianPosterior",
    "HarmonicComb",
    "ISTFTHead",
    "KVState",
    "MelAnchor",
    "MelBandEnergyLoss",
    "MultiPeriodDiscriminator",
    "MultiResolutionSTFTDiscriminator",
    "MultiResolutionSTFTLoss",
    "MultiScaleMelLoss",
    "SpeechDecoder",
    "SpeechDiscriminator",
    "SpeechEncoder",
    "SpeechTokenizerConfig",
    "SpeechTokenizerModel",
    "SpeechTokenizerOutput",
    "StreamingDecoder",
    "StreamingEncoder",
    "TrainingLog",
    "TrainingRecipe",
    "compressed_complex_distance",
    "estimate_latent_scaling_factor",
    "feature_matching_loss",
    "log_magnitude_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "mel_anchor_loss",
    "overlap_add",
    "phase_loss",
    "pitch_loss",
    "train_speech_tokenizer",
]
