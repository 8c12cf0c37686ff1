"""Vocos-style ISTFT head of the decoder, laid out causally (paper §2.2: the tokenizer's decoder to waveform).

Each decoder frame is turned into a complex spectrum (log-magnitude and phase, as Vocos does) and then into
``n_fft`` samples by an inverse real FFT and a Hann window. Frame ``t``'s window covers the samples encoder frame
``t`` saw, ``[hop · (t + 1) − n_fft, hop · (t + 1))`` (``[320 (t − 3), 320 (t + 1))``), so every output sample is
built from frames whose encoder saw it. The price is latency: slot ``t`` (``[t · hop, (t + 1) · hop)``) is complete
only once frames ``t … t + latency_frames`` are known (``latency_frames = n_fft / hop − 1``: 3 frames, 60 ms), and
the last ``latency_frames`` slots of a finite sequence are a fade-out (fewer windows overlap there).

Written by hand rather than with ``torch.istft``: with this layout (``center=False``) the Hann envelope vanishes at
the first sample, which ``torch.istft`` rejects (its NOLA check), and ``torch.istft`` cannot hand back the finished
part of a signal while keeping the open tail. We divide by the steady-state sum of squared windows (a constant for
Hann at ≥ 3 frames per window) instead of the per-sample envelope, so the unfinished last slots fade out rather
than being amplified where the envelope vanishes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .configuration import SpeechTokenizerConfig

__all__ = ["ISTFTHead", "overlap_add"]


def overlap_add(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """Overlap-add ``(B, T, n)`` frames placed ``hop`` samples apart: ``(B, (T − 1) · hop + n)``."""
    batch, count, size = frames.shape
    length = (count - 1) * hop + size
    return F.fold(frames.transpose(1, 2), (1, length), kernel_size=(1, size), stride=(1, hop)).reshape(batch, length)


class ISTFTHead(nn.Module):
    """``(B, T, hidden)`` decoder states → ``(B, T, n_fft)`` windowed frames (see :meth:`frames`) → waveform."""

    def __init__(self, config: SpeechTokenizerConfig) -> None:
        super().__init__()
        self.n_fft = config.n_fft
        self.hop = config.hop_length
        self.latency_frames = config.latency_frames
        # |rfft(hann · x)| ≤ Σ hann = n_fft / 2 for |x| ≤ 1, so no full-scale signal is clipped (Vocos' 1e2 is for
        # n_fft 1024 and would clip a full-scale sine at n_fft 1280, whose peak bin is n_fft / 4 = 320).
        self.max_log_magnitude = math.log(config.n_fft / 2)
        self.proj = nn.Linear(config.hidden_size, config.n_fft + 2)
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)

    def reset_buffers(self) -> None:
        """Recompute the window (a non-persistent buffer, left empty when built on ``meta``)."""
        self.window = torch.hann_window(self.n_fft, device=self.window.device)

    @property
    def normaliser(self) -> float:
        """Steady-state sum of squared windows over the frames covering one sample (1.5 for Hann at 4 frames)."""
        return self.n_fft * 3 / 8 / self.hop  # Σ hann² = 3n/8 for a periodic Hann window of n ≥ 3

    def polar(self, log_magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """Complex spectrum of a log-magnitude (clipped at ``n_fft / 2``, the largest of any signal in [-1, 1]) and
        a phase."""
        return torch.polar(log_magnitude.clamp(max=self.max_log_magnitude).exp(), phase)

    def log_magnitude_and_phase(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-magnitudes (before the clip) and phases (radians, not wrapped), each ``(B, T, n_fft // 2 + 1)``
        fp32, of decoder states."""
        log_magnitude, phase = self.proj(hidden).float().chunk(2, dim=-1)
        return log_magnitude, phase

    def spectrum(self, hidden: torch.Tensor) -> torch.Tensor:
        """Complex spectra ``(B, T, n_fft // 2 + 1)`` (fp32) of decoder states, through :meth:`polar`."""
        return self.polar(*self.log_magnitude_and_phase(hidden))

    def synthesize(self, spectrum: torch.Tensor) -> torch.Tensor:
        """Windowed, normalised time-domain frames ``(B, T, n_fft)`` of complex spectra ``(B, T, n_fft // 2 + 1)``;
        overlap-added ``hop`` apart they give the waveform."""
        return torch.fft.irfft(spectrum, n=self.n_fft) * (self.window / self.normaliser)

    def analyze(self, wave: torch.Tensor) -> torch.Tensor:
        """Complex spectra ``(B, T, n_fft // 2 + 1)`` of ``(B, T · hop)`` audio in this head's layout: frame ``t`` is
        the rfft of the Hann-windowed samples ``[hop · (t + 1) − n_fft, hop · (t + 1))`` (zeros before the start),
        the frames encoder frame ``t`` saw. :meth:`place` of :meth:`synthesize` of them gives ``wave`` back up to
        the last ``latency_frames`` slots, so they are the targets of the spectrum the decoder predicts."""
        frames = F.pad(wave.float(), (self.n_fft - self.hop, 0)).unfold(-1, self.n_fft, self.hop)
        return torch.fft.rfft(frames * self.window)

    def frames(self, hidden: torch.Tensor) -> torch.Tensor:
        """:meth:`synthesize` of :meth:`spectrum`: the frames the decoder states stand for."""
        return self.synthesize(self.spectrum(hidden))

    def place(self, frames: torch.Tensor) -> torch.Tensor:
        """Overlap-add ``(B, T, n_fft)`` frames, frame ``t`` at ``[hop · (t + 1) − n_fft, hop · (t + 1))``, and
        return slots ``0 … T − 1`` (``(B, T · hop)``); the samples before 0 are dropped and the last
        ``latency_frames`` slots are unfinished (the tail :meth:`StreamingDecoder.flush` also returns)."""
        return overlap_add(frames, self.hop)[:, self.n_fft - self.hop :]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """The waveform ``(B, T · hop)`` of decoder states: :meth:`place` of :meth:`frames`."""
        return self.place(self.frames(hidden))
