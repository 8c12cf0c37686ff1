"""Streaming encoder and decoder (paper §2.2: the causal tokenizer behind streaming speech generation).

Both sides are causal, so their state is small and exact. The decoder keeps the transformer's sliding-window keys
and values plus the ISTFT head's open overlap-add tail (the last ``latency_frames`` slots); decoder frame ``t``
writes the samples encoder frame ``t`` saw, so at step ``t`` it finishes slot ``t − latency_frames`` (60 ms behind)
and emits ``hop_length`` samples (20 ms) per latent frame after the first ``latency_frames``; :meth:`flush` returns
the unfinished last slots. The encoder keeps the keys and values plus the last ``n_fft − hop_length`` input samples and
emits a latent frame per ``hop_length`` samples. Both equal :class:`SpeechTokenizerModel`'s ``decode`` / ``encode``
of the whole signal (which run through them chunk by chunk).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ._inputs import check_latents, check_positive_int, to_mono
from .encoder import GaussianPosterior
from .transformer import KVState

if TYPE_CHECKING:
    from .modeling import SpeechTokenizerModel

__all__ = ["StreamingDecoder", "StreamingEncoder"]


class StreamingDecoder:
    """Decode latents as they arrive: :meth:`step` returns the samples its frames finished, :meth:`flush` the rest.

    >>> streamer = StreamingDecoder(model)
    >>> pieces = [streamer.step(latents[:, t : t + 1]) for t in range(latents.shape[1])]
    >>> audio = torch.cat(pieces + [streamer.flush()], dim=-1)

    Frame ``t`` finishes slot ``t − config.latency_frames`` (the first 3 steps return no samples, then 320 each);
    ``audio`` equals ``model.decode(latents)`` (up to float rounding). Runs without gradients.
    """

    def __init__(self, model: SpeechTokenizerModel) -> None:
        self.model = model
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next frame is frame 0 of a new signal."""
        self.frames_done = 0
        self._state: KVState | None = None
        self._tail: torch.Tensor | None = None

    def _from_sample_zero(self, signal: torch.Tensor) -> torch.Tensor:
        # ``signal`` starts at slot frames_done − latency_frames: up to latency_frames slots before sample 0 at the
        # start of a stream, which are not part of the signal
        config = self.model.config
        return signal[:, max(0, config.hop_length * (config.latency_frames - self.frames_done)) :]

    @torch.no_grad()
    def step(self, latents: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``(B, k, latent_dim)`` latents (as ``encode`` returns them) → the ``(B, k · hop_length)`` samples they
        finish (fewer during the first ``latency_frames`` frames of a signal)."""
        config = self.model.config
        latents = check_latents(latents, config).to(self.model.device)
        if self._tail is not None and latents.shape[0] != self._tail.shape[0]:
            raise ValueError(f"latents has batch size {latents.shape[0]}, this stream has {self._tail.shape[0]}")
        latents = latents / config.latent_scaling_factor
        hidden, self._state = self.model.decoder(latents, self._state, self.frames_done)
        head = self.model.decoder.head
        signal = head.overlap(head.frames(hidden, latents))
        if self._tail is not None:
            signal[:, : self._tail.shape[1]] += self._tail
        finished = signal.shape[1] - config.latency_frames * config.hop_length
        self._tail = signal[:, finished:]
        emitted = self._from_sample_zero(signal[:, :finished])
        self.frames_done += latents.shape[1]
        return emitted

    def flush(self) -> torch.Tensor:
        """The last ``latency_frames`` slots, unfinished (a fade-out: no later frames overlap them), then
        :meth:`reset`. ``(B, 0)`` if no frame was decoded."""
        if self._tail is None:
            return torch.zeros(1, 0, device=self.model.device)
        tail = self._from_sample_zero(self._tail)
        self.reset()
        return tail


class StreamingEncoder:
    """Encode audio as it arrives at ``sample_rate``, which must be ``config.sampling_rate`` (resample first: a
    resampler run piece by piece is not the resampler of the whole signal): :meth:`push` returns the latents of the
    frames completed so far, :meth:`flush` completes the last partial frame with zeros.

    Pushing a signal in pieces of any sizes and then flushing gives ``model.encode(signal, sample_rate)`` (up to
    float rounding). Runs without gradients.
    """

    def __init__(self, model: SpeechTokenizerModel, sample_rate: int) -> None:
        sample_rate = check_positive_int(sample_rate, "sample_rate")
        if sample_rate != model.config.sampling_rate:
            raise ValueError(
                f"sample_rate is {sample_rate} Hz but the model runs at {model.config.sampling_rate} Hz; resample "
                "the stream first (or use SpeechTokenizerModel.encode, which resamples whole signals)"
            )
        self.model = model
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample is sample 0 of a new signal."""
        self.frames_done = 0
        self._state: KVState | None = None
        self._context: torch.Tensor | None = None
        self._pending: torch.Tensor | None = None

    @torch.no_grad()
    def push_posterior(self, wave: torch.Tensor | np.ndarray) -> GaussianPosterior:
        """Like :meth:`push`, but the posterior (unscaled mean and log-variance) of the completed frames."""
        config = self.model.config
        wave = to_mono(wave).to(self.model.device)
        if self._pending is not None:
            if wave.shape[0] != self._pending.shape[0]:
                raise ValueError(f"wave has batch size {wave.shape[0]}, this stream has {self._pending.shape[0]}")
            wave = torch.cat((self._pending, wave), dim=-1)
        hop = config.hop_length
        complete = wave.shape[-1] // hop * hop
        self._pending = wave[:, complete:]
        wave = wave[:, :complete]
        if complete == 0:
            empty = wave.new_zeros(wave.shape[0], 0, config.latent_dim)
            return GaussianPosterior(empty, empty)
        encoder = self.model.encoder
        if self._context is None:
            self._context = wave.new_zeros(wave.shape[0], encoder.context)
        posterior, self._state = encoder(wave, self._context, self._state, self.frames_done)
        self._context = torch.cat((self._context, wave), dim=-1)[:, -encoder.context :]
        self.frames_done += complete // hop
        return posterior

    def push(self, wave: torch.Tensor | np.ndarray) -> torch.Tensor:
        """The next piece of float audio, laid out as for :meth:`SpeechTokenizerModel.encode` (``(samples,)``,
        ``(batch, samples)`` or ``(batch, channels ≤ 2, samples)``, channels averaged) and of any length → latents
        ``(B, k, latent_dim)`` of the ``k`` frames it completes (``k`` may be 0), scaled by
        ``latent_scaling_factor`` as :meth:`SpeechTokenizerModel.encode` scales them."""
        return self.push_posterior(wave).mean * self.model.config.latent_scaling_factor

    def flush(self) -> torch.Tensor:
        """Latents of the last partial frame completed with zeros (no frame if nothing is pending); then
        :meth:`reset`."""
        pending = self._pending
        if pending is None or pending.shape[-1] == 0:
            batch = 1 if pending is None else pending.shape[0]
            self.reset()
            return torch.zeros(batch, 0, self.model.config.latent_dim, device=self.model.device)
        hop = self.model.config.hop_length
        self._pending = None
        latents = self.push(F.pad(pending, (0, hop - pending.shape[-1])))
        self.reset()
        return latents
