"""Configuration of the continuous speech tokenizer (paper §2.2: a VAE-GAN over 50 Hz continuous latents).

The only place the architecture numbers live. ``flash()`` has the numbers of DESIGN.md (16 kHz, 320-sample frames,
50 latent frames per second, 64 latent dimensions, ISTFT head with n_fft 1280 / hop 320); the widths and depths of
the transformers are not given in the paper and are our choice. ``tiny()`` trains on two CPU cores.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

__all__ = ["SpeechTokenizerConfig"]

_POSITIVE_FIELDS = (
    "sampling_rate",
    "hop_length",
    "n_fft",
    "latent_dim",
    "hidden_size",
    "encoder_layers",
    "decoder_layers",
    "num_attention_heads",
    "intermediate_size",
    "attention_window",
    "rope_theta",
    "rms_norm_eps",
    "latent_scaling_factor",
    "initializer_range",
    "discriminator_channels",
)


@strict
class SpeechTokenizerConfig(PreTrainedConfig):
    r"""Sizes of the encoder, the Gaussian latent, the decoder with its ISTFT head, and the discriminators.

    Attributes:
        sampling_rate: sample rate of the model's audio, Hz.
        hop_length: samples per latent frame (and the ISTFT hop): 320 at 16 kHz is 50 frames per second.
        n_fft: ISTFT size and window length of the decoder head; also the span of samples, ending at a frame's last
            sample, that the encoder's input convolution sees. A multiple (≥ 3) of ``hop_length``.
        latent_dim: channels of a latent frame.
        hidden_size: width of the encoder and decoder transformers.
        encoder_layers: transformer blocks of the encoder.
        decoder_layers: transformer blocks of the decoder.
        num_attention_heads: attention heads per block.
        intermediate_size: MLP width of a block.
        attention_window: frames a frame attends to, itself included (causal sliding window); bounds the streaming
            state and makes encoding of any length exact chunk by chunk.
        rope_theta: rotary base of the attention.
        rms_norm_eps: epsilon of the RMS norms.
        latent_scaling_factor: ``encode`` returns the posterior times this factor and ``decode`` divides by it, so a
            trained tokenizer can hand out latents of unit scale (1.0: the raw posterior).
        initializer_range: standard deviation of the random initialisation.
        discriminator_periods: periods of the multi-period discriminator.
        discriminator_stft_resolutions: ``[n_fft, hop]`` of each multi-resolution STFT discriminator.
        discriminator_channels: base width of the discriminators.
        encoder_log_spectrum: besides the convolution on the waveform, feed the encoder the log-magnitude spectrum
            of the same ``n_fft`` samples (Hann window, through a linear layer, added): a phase-invariant view
            of the pitch harmonics and formants that a small encoder trained briefly does not learn from the
            waveform alone for voices it has not heard (off in ``flash()``).
        harmonic_candidates: with a positive value, the ISTFT head adds a harmonic comb to its log-magnitudes
            (:class:`~ming_speech_tokenizer.HarmonicComb`): a softmax over this many fundamental frequencies,
            log-spaced over ``harmonic_f0_range``, picks a learnt periodic profile of ``frequency / f0`` whose depth
            (smooth over frequency) the head also predicts (0: off, as in ``flash()`` and ``tiny()``). A linear
            head has to build the pitch harmonics of every fundamental out of its hidden state; with the comb it
            only has to say which fundamental and how deep.
        harmonic_f0_range: lowest and highest candidate fundamental, Hz.
        parallel_phase: the ISTFT head predicts each bin's phase as ``atan2(y, x)`` of two outputs (APNet's
            parallel phase estimation) instead of regressing it in radians (Vocos; False, as in ``flash()`` and
            ``tiny()``). A regressed phase must jump by 2π where the target wraps; ``atan2`` wraps by itself.
        head_subframes: spectra the ISTFT head predicts per decoder state, ``K`` (1, as in ``flash()`` and
            ``tiny()``: one frame of ``n_fft`` samples per ``hop_length``). With ``K`` > 1 each state predicts ``K``
            spectra of ``n_fft / K`` samples placed ``hop_length / K`` apart (:attr:`head_n_fft`,
            :attr:`head_hop_length`; K = 2: 640 / 160), the same overlap with shorter windows and a smaller phase
            advance per hop. Must divide ``hop_length``. The encoder and the latent contract are unchanged; the
            latency falls to :attr:`latency_frames`.
        mel_anchor_bands: with a positive value ``M``, the mel-anchored latent (0: off, as in ``flash()`` and
            ``tiny()``): the first ``M`` latent channels stand for the normalised ``M``-band log-mel levels of the
            ``n_fft`` samples their frame saw (:meth:`MelAnchor.target <ming_speech_tokenizer.MelAnchor.target>`;
            training ties the posterior mean to them with ``TrainingRecipe.mel_anchor_weight``), and the ISTFT head
            adds the log-magnitudes those channels imply (:class:`~ming_speech_tokenizer.MelAnchor`: each band's
            level spread smoothly over the FFT bins, no parameters) to its own, which become a residual on top: the
            band energies over time reach the magnitudes by a short path from the first step. At most
            ``latent_dim``; needs ``head_subframes`` 1. The latent contract is unchanged.
    """

    model_type = "ming_speech_tokenizer"

    sampling_rate: int = 16_000
    hop_length: int = 320
    n_fft: int = 1280
    latent_dim: int = 64
    hidden_size: int = 768
    encoder_layers: int = 12
    decoder_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    attention_window: int = 250
    rope_theta: float = 10_000.0
    rms_norm_eps: float = 1e-6
    latent_scaling_factor: float = 1.0
    initializer_range: float = 0.02
    discriminator_periods: list[int] | tuple[int, ...] = (2, 3, 5, 7, 11)
    discriminator_stft_resolutions: list[list[int]] | tuple[tuple[int, int], ...] = ((1024, 256), (512, 128), (256, 64))
    discriminator_channels: int = 32
    encoder_log_spectrum: bool = False
    harmonic_candidates: int = 0
    harmonic_f0_range: list[float] | tuple[float, float] = (50.0, 500.0)
    parallel_phase: bool = False
    head_subframes: int = 1
    mel_anchor_bands: int = 0

    def __post_init__(self, **kwargs):
        self.discriminator_periods = list(self.discriminator_periods)
        self.discriminator_stft_resolutions = [list(r) for r in self.discriminator_stft_resolutions]
        for name in _POSITIVE_FIELDS:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not self.discriminator_periods or any(p < 2 for p in self.discriminator_periods):
            # period 1 would fold nothing (it is the waveform itself)
            raise ValueError(
                f"discriminator_periods must be a non-empty list of integers ≥ 2, got {self.discriminator_periods}"
            )
        if self.n_fft % self.hop_length or self.n_fft // self.hop_length < 3:
            # Hann² windows overlap-add to a constant only from 3 frames per window on (see istft_head.py).
            raise ValueError(f"n_fft ({self.n_fft}) must be a multiple (≥ 3) of hop_length ({self.hop_length})")
        if self.hidden_size % self.num_attention_heads or (self.hidden_size // self.num_attention_heads) % 2:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must split into num_attention_heads ({self.num_attention_heads}) "
                "heads of even size (rotary)"
            )
        self.harmonic_f0_range = [float(f) for f in self.harmonic_f0_range]
        if self.harmonic_candidates < 0:
            raise ValueError(f"harmonic_candidates must be ≥ 0 (0: off), got {self.harmonic_candidates}")
        low_high = self.harmonic_f0_range
        if len(low_high) != 2 or not 0 < low_high[0] < low_high[1] < self.sampling_rate / 2:
            raise ValueError(
                f"harmonic_f0_range must be [low, high] with 0 < low < high < sampling_rate / 2, got {low_high}"
            )
        if self.head_subframes < 1 or self.hop_length % self.head_subframes:
            raise ValueError(
                f"head_subframes must be a positive divisor of hop_length ({self.hop_length}), got "
                f"{self.head_subframes}"
            )
        if not 0 <= self.mel_anchor_bands <= self.latent_dim:
            raise ValueError(
                f"mel_anchor_bands must be in [0, latent_dim ({self.latent_dim})] (0: off), got {self.mel_anchor_bands}"
            )
        if self.mel_anchor_bands and self.head_subframes != 1:
            raise ValueError("mel_anchor_bands needs head_subframes 1 (the anchor's levels are those of n_fft windows)")
        resolutions = self.discriminator_stft_resolutions
        if not resolutions or any(len(r) != 2 or not 0 < r[1] <= r[0] for r in resolutions):
            raise ValueError(
                f"discriminator_stft_resolutions must be a non-empty list of [n_fft, hop] pairs with 0 < hop <= n_fft, "
                f"got {resolutions}"
            )
        super().__post_init__(**kwargs)

    @property
    def head_n_fft(self) -> int:
        """Window and FFT size of the ISTFT head's spectra: ``n_fft / head_subframes`` (1280 for the presets)."""
        return self.n_fft // self.head_subframes

    @property
    def head_hop_length(self) -> int:
        """Hop of the ISTFT head's spectra: ``hop_length / head_subframes`` (320 for the presets)."""
        return self.hop_length // self.head_subframes

    @property
    def latency_frames(self) -> int:
        """Latent frames the decoder needs after a slot before that slot's samples are final:
        ``ceil((n_fft / hop − 1) / head_subframes)`` (3 frames, 60 ms for the presets; 2 with two subframes).
        Decoder frame ``t`` writes the samples encoder frame ``t`` saw, ``[hop · (t + 1) − n_fft, hop · (t + 1))``
        (with subframes, its ``K`` windows of ``n_fft / K`` samples end ``hop / K`` apart, the last at
        ``hop · (t + 1)``), and a sample is final once the last window over it is known."""
        return -(-(self.n_fft // self.hop_length - 1) // self.head_subframes)

    @property
    def frame_rate(self) -> float:
        """Latent frames per second (50.0 for 16 kHz and hop 320)."""
        return self.sampling_rate / self.hop_length

    @classmethod
    def flash(cls, **overrides) -> SpeechTokenizerConfig:
        """Ming-Flash-Omni's tokenizer: 16 kHz, 50 latent frames/s of 64 dims, ISTFT n_fft 1280 / hop 320, causal
        transformers of 12 blocks × 768 (about 86 M parameters each) with a 5 s attention window."""
        return cls(**overrides)

    @classmethod
    def tiny(cls, **overrides) -> SpeechTokenizerConfig:
        """The same frame layout with 2 + 2 blocks of width 128, for tests, examples and short CPU training."""
        values = {
            "hidden_size": 128,
            "encoder_layers": 2,
            "decoder_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 256,
            "attention_window": 64,
            "discriminator_channels": 8,
        }
        values.update(overrides)
        return cls(**values)
