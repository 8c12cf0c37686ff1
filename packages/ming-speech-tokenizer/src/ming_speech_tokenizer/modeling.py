"""The speech tokenizer model: encoder → Gaussian latent → decoder (paper §2.2: VAE-GAN continuous tokenizer).

The latent contract, public API shared with the TTS head: ``encode`` maps audio of ``N`` samples at
``sampling_rate`` (16 kHz) to ``(B, ceil(N / hop_length), latent_dim)`` = ``(B, frames, 64)`` latents at 50 frames
per second, frame ``t`` covering samples ``[320 t, 320 (t + 1))``; they are the posterior mean (or a draw) times
``latent_scaling_factor``, and the KL term of training pulls the unscaled posterior towards a standard normal.
``decode`` maps ``(B, T, 64)`` back to ``(B, 320 T)`` samples at 16 kHz.
"""

from __future__ import annotations

import math
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
from .istft_head import ISTFTHead
from .streaming import StreamingEncoder
from .transformer import CausalTransformer

__all__ = ["SpeechTokenizerModel", "SpeechTokenizerOutput"]


@dataclass
class SpeechTokenizerOutput(ModelOutput):
    """What :meth:`SpeechTokenizerModel.forward` returns.

    Attributes:
        reconstruction: decoded waveform ``(B, N)``.
        posterior: the encoder's Gaussian over latent frames (unscaled).
        latents: the latents that were decoded (a posterior draw or its mean, unscaled) ``(B, N / hop, latent_dim)``.
    """

    reconstruction: torch.Tensor | None = None
    posterior: GaussianPosterior | None = None
    latents: torch.Tensor | None = None


class SpeechTokenizerModel(PreTrainedModel):
    """Continuous speech tokenizer: causal encoder, diagonal Gaussian latent, causal decoder with ISTFT head.

    ``save_pretrained(dir)`` writes ``config.json`` and safetensors; ``from_pretrained(local_dir)`` reads them.
    Use :meth:`encode` / :meth:`decode` for audio, :class:`~ming_speech_tokenizer.StreamingDecoder` and
    :class:`~ming_speech_tokenizer.StreamingEncoder` for frame-by-frame work, and :meth:`forward` in training.
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
        elif isinstance(module, ISTFTHead):
            module.reset_buffers()

    def forward(self, wave: torch.Tensor, sample: bool = True, generator: torch.Generator | None = None):
        """Training pass on ``(B, N)`` audio at ``sampling_rate`` with ``N`` a multiple of ``hop_length``: encode,
        draw from the posterior (``sample``) or take its mean, decode. Returns :class:`SpeechTokenizerOutput`."""
        if wave.dim() != 2 or wave.shape[-1] % self.config.hop_length or wave.shape[-1] == 0:
            raise ValueError(
                f"wave must be (batch, samples) with samples a positive multiple of {self.config.hop_length}, "
                f"got shape {tuple(wave.shape)}"
            )
        posterior, _ = self.encoder(wave)
        latents = posterior.sample(generator) if sample else posterior.mean
        hidden, _ = self.decoder(latents)
        return SpeechTokenizerOutput(self.decoder.head(hidden), posterior, latents)

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

        Args:
            wave: float audio in [-1, 1]: ``(samples,)``, ``(channels, samples)`` (torchaudio's layout) or
                ``(batch, channels, samples)``. Channels (stereo) are averaged to mono. NaN/inf, integer dtypes,
                empty input or less than one frame raise an error naming ``wave``.
            sample_rate: rate of ``wave``, Hz. Audio at another rate than ``config.sampling_rate`` is resampled
                with ``torchaudio.functional.resample`` before encoding (the latents are always at the model's
                frame rate).
            sample: draw from the posterior (with ``generator``) instead of taking its mean.
            generator: random source of the draw.
            chunk_frames: encode in chunks of this many frames, carrying the causal state across chunks (for long
                audio: bounded memory, and the same latents as one pass — no seams).

        The last frame is completed with zeros when the length is not a multiple of ``hop_length`` (nothing is
        cut). The result is multiplied by ``config.latent_scaling_factor``.
        """
        wave = prepare_wave(wave, sample_rate, self.config)
        if chunk_frames is not None:
            chunk_frames = check_positive_int(chunk_frames, "chunk_frames")
        frames = math.ceil(wave.shape[-1] / self.config.hop_length)
        wave = F.pad(wave, (0, frames * self.config.hop_length - wave.shape[-1])).to(self.device)
        if chunk_frames is None:
            posterior, _ = self.encoder(wave)
        else:
            streamer = StreamingEncoder(self)
            step = chunk_frames * self.config.hop_length
            chunks = [streamer.push_posterior(chunk[:, None]) for chunk in wave.split(step, dim=-1)]
            posterior = GaussianPosterior(
                torch.cat([c.mean for c in chunks], dim=1), torch.cat([c.logvar for c in chunks], dim=1)
            )
        latents = posterior.sample(generator) if sample else posterior.mean
        return latents * self.config.latent_scaling_factor

    def decode(self, latents: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Waveform ``(B, T · hop_length)`` at ``config.sampling_rate`` of ``(B, T, latent_dim)`` latents (as
        :meth:`encode` returns them: divided by ``config.latent_scaling_factor`` first). Sample ``n`` depends
        only on latent frames ``0 … n // hop_length`` (causal)."""
        latents = check_latents(latents, self.config).to(self.device)
        hidden, _ = self.decoder(latents / self.config.latent_scaling_factor)
        return self.decoder.head(hidden)
