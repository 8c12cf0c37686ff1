"""The speech tokenizer model: encoder → Gaussian latent → decoder (paper §2.2: VAE-GAN continuous tokenizer).

The latent contract, public API shared with the TTS head: ``encode`` maps audio of ``N`` samples at
``sampling_rate`` (16 kHz) to ``(B, ceil(N / hop_length), latent_dim)`` = ``(B, frames, 64)`` latents at 50 frames
per second; frame ``t`` summarises slot ``[320 t, 320 (t + 1))`` and sees the samples ``[320 (t − 3), 320 (t + 1))``
(``n_fft`` samples ending with its slot). They are the posterior mean (or a draw) times ``latent_scaling_factor``
(see :func:`estimate_latent_scaling_factor`); the KL term of training pulls the unscaled posterior towards a
standard normal. ``decode`` maps ``(B, T, 64)`` back to ``(B, 320 T)`` samples at 16 kHz aligned with the input;
sample ``n`` is final once latent ``n // 320 + latency_frames`` (3 frames, 60 ms later) is known, so the last 60 ms
of a finite sequence are a fade-out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from ._inputs import check_latents, check_positive_int, prepare_wave
from .configuration import SpeechTokenizerConfig
from .decoder import SpeechDecoder
from .encoder import GaussianPosterior, SpeechEncoder
from .istft_head import HarmonicComb, ISTFTHead, MelAnchor
from .streaming import StreamingDecoder, StreamingEncoder
from .transformer import CausalTransformer

__all__ = ["SpeechTokenizerModel", "SpeechTokenizerOutput", "estimate_latent_scaling_factor"]


@dataclass
class SpeechTokenizerOutput(ModelOutput):
    """What :meth:`SpeechTokenizerModel.forward` returns.

    Attributes:
        reconstruction: decoded waveform ``(B, N)``.
        posterior: the encoder's Gaussian over latent frames (unscaled).
        latents: the latents that were decoded (a posterior draw or its mean, unscaled) ``(B, N / hop, latent_dim)``.
        log_magnitude: the natural-log magnitudes (before the head's clip) of the ISTFT head's spectra
            ``(B, K · N / hop, head_n_fft // 2 + 1)`` (fp32, ``K = head_subframes``) that ``reconstruction`` is
            synthesised from.
        phase: the phases (radians, not wrapped) of the ISTFT head's spectra ``(B, K · N / hop, head_n_fft // 2 +
            1)`` (fp32) that ``reconstruction`` is synthesised from, comparable with the angle of
            :meth:`ISTFTHead.analyze <ming_speech_tokenizer.ISTFTHead.analyze>` of the input (training's phase loss).

        harmonic_logits: the logits over the harmonic comb's candidate fundamentals ``(B, K · N / hop,
            candidates)`` (fp32; ``None`` without a comb), for training's pitch loss.

    ``reconstruction`` is aligned with the input; its last ``config.latency_frames`` slots are unfinished (see
    :class:`~ming_speech_tokenizer.ISTFTHead`), so training leaves them out of the losses.
    """

    reconstruction: torch.Tensor | None = None
    posterior: GaussianPosterior | None = None
    latents: torch.Tensor | None = None
    log_magnitude: torch.Tensor | None = None
    phase: torch.Tensor | None = None
    harmonic_logits: torch.Tensor | None = None


class SpeechTokenizerModel(PreTrainedModel):
    """Continuous speech tokenizer: causal encoder, diagonal Gaussian latent, causal decoder with ISTFT head.

    ``save_pretrained(dir)`` writes ``config.json`` and safetensors; ``from_pretrained(local_dir)`` reads them.
    Use :meth:`encode` / :meth:`decode` for audio (inference: no gradients),
    :class:`~ming_speech_tokenizer.StreamingDecoder` and :class:`~ming_speech_tokenizer.StreamingEncoder` for
    frame-by-frame work, and :meth:`forward` in training (with gradients, one pass).
    """

    config_class = SpeechTokenizerConfig
    config: SpeechTokenizerConfig
    base_model_prefix = "tokenizer"
    main_input_name = "wave"

    def __init__(self, config: SpeechTokenizerConfig) -> None:
        super().__init__(config)
        self.encoder = SpeechEncoder(config)
        self.decoder = SpeechDecoder(config)
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """transformers' ``from_pretrained`` (local directories, safetensors), but strict: missing, unexpected or
        mismatched weights raise a ``ValueError`` listing them instead of leaving random weights in place."""
        want_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs)
        problems = {kind: sorted(map(str, info.get(kind) or ())) for kind in ("missing_keys", "unexpected_keys")}
        problems["mismatched_keys"] = sorted(str(m[0]) for m in info.get("mismatched_keys") or ())
        listed = "; ".join(f"{kind}: {keys}" for kind, keys in problems.items() if keys)
        if listed:
            raise ValueError(f"checkpoint {pretrained_model_name_or_path} does not match {cls.__name__}: {listed}")
        return (model, info) if want_info else model

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.RMSNorm):
            init.ones_(module.weight)
        elif isinstance(module, CausalTransformer):
            module.reset_buffers(self.config.rope_theta)  # non-persistent: rebuilt after loading onto `meta`
        elif isinstance(module, (ISTFTHead, MelAnchor)):
            module.reset_buffers()
        elif isinstance(module, HarmonicComb):
            init.copy_(module.profile, torch.eye(len(module.profile))[0])
            module.reset_buffers()

    def forward(
        self, wave: torch.Tensor, sample: bool = True, generator: torch.Generator | None = None
    ) -> SpeechTokenizerOutput:
        """Training pass on ``(B, N)`` audio at ``sampling_rate`` with ``N`` a multiple of ``hop_length``: encode,
        draw from the posterior (``sample``) or take its mean, decode. One pass over all frames (memory grows with
        frames², fine for training segments). Returns :class:`SpeechTokenizerOutput`."""
        if wave.dim() != 2 or wave.shape[-1] % self.config.hop_length or wave.shape[-1] == 0:
            raise ValueError(
                f"wave must be (batch, samples) with samples a positive multiple of {self.config.hop_length}, "
                f"got shape {tuple(wave.shape)}"
            )
        posterior, _ = self.encoder(wave)
        latents = posterior.sample(generator) if sample else posterior.mean
        hidden, _ = self.decoder(latents)
        head = self.decoder.head
        log_magnitude, phase = head.log_magnitude_and_phase(hidden, latents)
        reconstruction = head.place(head.synthesize(head.polar(log_magnitude, phase)))
        harmonic_logits = head.harmonic.logits(hidden) if head.harmonic is not None else None
        return SpeechTokenizerOutput(reconstruction, posterior, latents, log_magnitude, phase, harmonic_logits)

    @torch.no_grad()
    def encode(
        self,
        wave: torch.Tensor | np.ndarray,
        sample_rate: int,
        *,
        sample: bool = False,
        generator: torch.Generator | None = None,
        chunk_frames: int | None = None,
    ) -> torch.Tensor:
        """Latents ``(B, ceil(N / hop_length), latent_dim)`` of ``wave``, 50 frames per second for the presets.

        Inference API: runs without gradients (train through :meth:`forward`).

        Args:
            wave: float audio in [-1, 1]: ``(samples,)`` (one clip), ``(batch, samples)`` (mono clips, as
                :meth:`decode` returns them) or ``(batch, channels, samples)`` with 1 or 2 channels, averaged to
                mono. NaN/inf, integer dtypes, empty input, more than 2 channels or less than one frame raise an
                error naming ``wave``.
            sample_rate: rate of ``wave``, Hz. Audio at another rate than ``config.sampling_rate`` is resampled
                with ``torchaudio.functional.resample`` before encoding (the latents are always at the model's
                frame rate).
            sample: draw from the posterior (with ``generator``) instead of taking its mean.
            generator: random source of the draw.
            chunk_frames: frames per chunk (default ``config.attention_window``); the causal state is carried
                across chunks, so memory is bounded and the latents equal one pass over everything (no seams).

        The last frame is completed with zeros when the length is not a multiple of ``hop_length`` (nothing is
        cut). The result is multiplied by ``config.latent_scaling_factor``.
        """
        wave = prepare_wave(wave, sample_rate, self.config)
        chunk_frames = self._chunk_frames(chunk_frames)
        frames = math.ceil(wave.shape[-1] / self.config.hop_length)
        wave = F.pad(wave, (0, frames * self.config.hop_length - wave.shape[-1])).to(self.device)
        streamer = StreamingEncoder(self, self.config.sampling_rate)
        chunks = [streamer.push_posterior(chunk) for chunk in wave.split(chunk_frames * self.config.hop_length, -1)]
        posterior = GaussianPosterior(
            torch.cat([c.mean for c in chunks], dim=1), torch.cat([c.logvar for c in chunks], dim=1)
        )
        latents = posterior.sample(generator) if sample else posterior.mean
        return latents * self.config.latent_scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor | np.ndarray, *, chunk_frames: int | None = None) -> torch.Tensor:
        """Waveform ``(B, T · hop_length)`` at ``config.sampling_rate`` of ``(B, T, latent_dim)`` latents (as
        :meth:`encode` returns them: divided by ``config.latent_scaling_factor`` first), aligned with the encoded
        audio. Sample ``n`` depends only on latent frames ``0 … n // hop_length + config.latency_frames``; the last
        ``latency_frames`` slots (60 ms) are a fade-out, as :meth:`StreamingDecoder.flush` returns them.

        Inference API: runs without gradients, in chunks of ``chunk_frames`` (default ``config.attention_window``)
        through a :class:`~ming_speech_tokenizer.StreamingDecoder` (bounded memory, the same result as one pass).
        """
        latents = check_latents(latents, self.config)
        streamer = StreamingDecoder(self)
        pieces = [streamer.step(chunk) for chunk in latents.split(self._chunk_frames(chunk_frames), dim=1)]
        return torch.cat([*pieces, streamer.flush()], dim=-1)

    def _chunk_frames(self, chunk_frames: int | None) -> int:
        return (
            self.config.attention_window if chunk_frames is None else check_positive_int(chunk_frames, "chunk_frames")
        )


@torch.no_grad()
def estimate_latent_scaling_factor(
    model: SpeechTokenizerModel, clips: Sequence[torch.Tensor | np.ndarray], sample_rate: int
) -> float:
    """Set ``model.config.latent_scaling_factor`` to ``1 / std`` of the unscaled posterior means of ``clips`` (all
    frames and channels pooled), as diffusers' VAEs are given a ``scaling_factor``, so
    :meth:`~SpeechTokenizerModel.encode` then hands out latents of unit standard deviation; returns the factor
    (``save_pretrained`` stores it with the config)."""
    if not clips:
        raise ValueError("clips is empty")
    means = [model.encode(clip, sample_rate).flatten() / model.config.latent_scaling_factor for clip in clips]
    std = torch.cat(means).double().std().item()
    if not std > 0:
        raise ValueError(f"clips give posterior means of standard deviation {std}; cannot scale them to unit std")
    model.config.latent_scaling_factor = 1.0 / std
    return model.config.latent_scaling_factor
