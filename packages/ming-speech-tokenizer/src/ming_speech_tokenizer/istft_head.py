"""Vocos-style ISTFT head of the decoder, laid out causally (paper §2.2: the tokenizer's decoder to waveform).

Each decoder frame is turned into a complex spectrum (log-magnitude and phase, as Vocos does, or with
``parallel_phase`` the phase as ``atan2`` of two outputs, as APNet does) and then into
``n_fft`` samples by an inverse real FFT and a Hann window. Frame ``t``'s window covers the samples encoder frame
``t`` saw, ``[hop · (t + 1) − n_fft, hop · (t + 1))`` (``[320 (t − 3), 320 (t + 1))``), so every output sample is
built from frames whose encoder saw it. The price is latency: slot ``t`` (``[t · hop, (t + 1) · hop)``) is complete
only once frames ``t … t + latency_frames`` are known (``latency_frames = n_fft / hop − 1``: 3 frames, 60 ms), and
the last ``latency_frames`` slots of a finite sequence are a fade-out (fewer windows overlap there).

With ``config.head_subframes = K`` > 1 each decoder frame predicts ``K`` spectra instead, of ``n_fft / K`` samples
placed ``hop / K`` apart: frame ``t``'s subframe ``j`` covers ``[hop · t + (j + 1) · hop / K − n_fft / K,
hop · t + (j + 1) · hop / K)``, inside what encoder frame ``t`` saw. The subframes of all frames form one sequence
with the same layout at the smaller size and hop (``T · K`` spectra), which is what :meth:`ISTFTHead.analyze`,
:meth:`~ISTFTHead.synthesize` and the training losses see; ``n_fft`` and ``hop`` below are then the subframes'.

Written by hand rather than with ``torch.istft``: with this layout (``center=False``) the Hann envelope vanishes at
the first sample, which ``torch.istft`` rejects (its NOLA check), and ``torch.istft`` cannot hand back the finished
part of a signal while keeping the open tail. We divide by the steady-state sum of squared windows (a constant for
Hann at ≥ 3 frames per window) instead of the per-sample envelope, so the unfinished last slots fade out rather
than being amplified where the envelope vanishes.

With ``config.mel_anchor_bands`` > 0 the head's log-magnitudes are a residual on top of a :class:`MelAnchor` base
computed from the decoder's input latents (the frame's own latent, so causality and streaming are unchanged).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchaudio.functional import melscale_fbanks

from .configuration import SpeechTokenizerConfig

__all__ = ["HarmonicComb", "ISTFTHead", "MelAnchor", "overlap_add"]

_PROFILE_TERMS = 4  # cosine harmonics of the comb's periodic profile: sharp peaks and flat valleys, as in log spectra
_PITCH_MAX_HZ = 2000.0  # the pitch teacher reads the harmonics below this
_ENVELOPE_HZ = 312.5  # width of the moving average the pitch teacher removes from log-magnitudes (the formants)
_DEPTH_POINTS = 16  # values the comb's depth is interpolated between, 0 Hz to Nyquist (533 Hz apart at 16 kHz)
# The mel anchor's fixed normalisation: log per-bin levels (floored at 1e-5, as the losses' magnitudes) of espeak-ng
# speech at n_fft 1280 have mean -2.3 and standard deviation 3.2 (200 training clips of train_tiny_espeak.py's v3
# data, all 64 bands and frames pooled), so (log level + 2) / 3 keeps the anchored channels near unit scale.
_ANCHOR_FLOOR = 1e-5
_ANCHOR_OFFSET = -2.0
_ANCHOR_SCALE = 3.0


def overlap_add(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """Overlap-add ``(B, T, n)`` frames placed ``hop`` samples apart: ``(B, (T − 1) · hop + n)``."""
    batch, count, size = frames.shape
    length = (count - 1) * hop + size
    return F.fold(frames.transpose(1, 2), (1, length), kernel_size=(1, size), stride=(1, hop)).reshape(batch, length)


def _per_subframe(values: torch.Tensor, subframes: int) -> torch.Tensor:
    """``(B, T, K · n)`` outputs of ``T`` decoder frames → ``(B, T · K, n)``: the ``K`` subframes of each frame in
    order, frame after frame."""
    *batch, count, size = values.shape
    return values.reshape(*batch, count * subframes, size // subframes)


class HarmonicComb(nn.Module):
    """A log-magnitude term ``depth(f) · Σ_i p_i · g(f / f0_i)`` of decoder states (``harmonic_candidates`` > 0).

    ``p`` is a softmax over ``harmonic_candidates`` fundamentals ``f0_i`` log-spaced over ``harmonic_f0_range``,
    ``g`` a learnt periodic profile (the first ``_PROFILE_TERMS`` cosine harmonics of ``f / f0``, initialised to
    ``cos(2π f / f0)``: maxima on the harmonics ``k · f0``) and ``depth(f) ≥ 0`` the comb's depth, interpolated
    linearly over frequency between ``_DEPTH_POINTS`` evenly spaced values, all from one linear map of the decoder
    state (one set per subframe of the head, over its bins). The depth is smooth so that only the right
    fundamental fits a spectrum's harmonics (a free depth per bin could fit any spectrum with any comb). The comb
    of any fundamental is one softmax away, where a linear head must assemble it from its hidden state (which a
    small network trained briefly does for the voices it knows and smears for others).
    """

    def __init__(self, config: SpeechTokenizerConfig) -> None:
        super().__init__()
        self.candidates = config.harmonic_candidates
        self.subframes = config.head_subframes
        self.bins = config.head_n_fft // 2 + 1
        self.f0_range = tuple(config.harmonic_f0_range)
        self.bin_hz = config.sampling_rate / config.head_n_fft
        self.proj = nn.Linear(config.hidden_size, self.subframes * (self.candidates + _DEPTH_POINTS))
        self.profile = nn.Parameter(torch.zeros(_PROFILE_TERMS))
        self.register_buffer("basis", torch.empty(0), persistent=False)
        self.register_buffer("interpolation", torch.empty(0), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The profile ``cos(2π f / f0)`` and the buffers (non-persistent, empty on ``meta``)."""
        with torch.no_grad():
            self.profile.copy_(torch.eye(_PROFILE_TERMS, device=self.profile.device)[0])
        self.reset_buffers()

    def reset_buffers(self) -> None:
        """``basis[k, i, b] = cos(2π (k + 1) · f_b / f0_i)`` for the head's bin frequencies ``f_b``, and the
        ``(_DEPTH_POINTS, bins)`` linear interpolation of the depth."""
        device = self.profile.device
        f0 = self.f0s.to(device)
        cycles = torch.arange(self.bins, dtype=torch.float64, device=device) * self.bin_hz / f0[:, None]
        terms = torch.arange(1, _PROFILE_TERMS + 1, dtype=torch.float64, device=device)[:, None, None]
        self.basis = torch.cos(2 * math.pi * terms * cycles).float()
        position = torch.linspace(0, _DEPTH_POINTS - 1, self.bins, dtype=torch.float64, device=device)
        points = torch.arange(_DEPTH_POINTS, dtype=torch.float64, device=device)[:, None]
        self.interpolation = (1 - (position - points).abs()).clamp(min=0).float()

    @property
    def f0s(self) -> torch.Tensor:
        """The candidate fundamentals, Hz (``harmonic_candidates``, float64)."""
        low, high = self.f0_range
        return torch.logspace(math.log10(low), math.log10(high), self.candidates, dtype=torch.float64)

    def _outputs(self, hidden: torch.Tensor) -> torch.Tensor:
        return _per_subframe(self.proj(hidden).float(), self.subframes)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``(B, T, hidden)`` → the softmax logits over the candidate fundamentals ``(B, T · K, candidates)`` (fp32,
        ``K = head_subframes``)."""
        return self._outputs(hidden)[..., : self.candidates]

    @torch.no_grad()
    def pitch_targets(self, spectrum: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A teacher for :meth:`logits`: for complex spectra ``(B, T, bins)`` in the head's layout (e.g.
        :meth:`ISTFTHead.analyze` of the input), the candidate whose comb ``cos(2π f / f0)`` correlates best with
        the fine structure of the log-magnitudes below 2 kHz (the log-magnitudes minus their moving average over
        ``_ENVELOPE_HZ``, which removes the formants), and that normalised correlation in [-1, 1] (about 0 for a
        flat spectrum such as silence; voiced speech mostly above 0.45, noise below). Returns ``(index, correlation)``,
        each ``(B, T)``. A harmonic spectrum's comb beats those of its octaves: the comb of ``f0 / 2`` and of
        ``2 f0`` are as high between the harmonics as on them."""
        bins = int(_PITCH_MAX_HZ / self.bin_hz)
        width = 2 * int(_ENVELOPE_HZ / self.bin_hz / 2) + 1
        log_magnitude = spectrum.abs().float().clamp(min=1e-5).log()
        flat = log_magnitude.reshape(-1, 1, log_magnitude.shape[-1])
        envelope = F.avg_pool1d(F.pad(flat, (width // 2, width // 2), mode="replicate"), width, stride=1)
        fine = (flat - envelope).reshape(log_magnitude.shape)[..., :bins]
        templates = self.basis[0, :, :bins]
        # the floor keeps the rounding noise of a flat spectrum (silence) from correlating with anything
        score = fine @ templates.T / (fine.norm(dim=-1, keepdim=True).clamp(min=1e-2) * templates.norm(dim=-1))
        correlation, index = score.max(dim=-1)
        return index, correlation

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``(B, T, hidden)`` → the comb term ``(B, T · K, bins)`` (fp32) added to the log-magnitudes."""
        logits, depth = self._outputs(hidden).split([self.candidates, _DEPTH_POINTS], dim=-1)
        templates = torch.einsum("k,kib->ib", self.profile.float(), self.basis)
        return (F.softplus(depth) @ self.interpolation) * (logits.softmax(-1) @ templates)


class MelAnchor(nn.Module):
    """The mel-anchored latent (``config.mel_anchor_bands = M`` > 0): what the first ``M`` latent channels stand
    for, and the log-magnitudes they imply. No parameters.

    :meth:`target` maps complex spectra of the head's frames (:meth:`ISTFTHead.analyze` of the input: exactly the
    Hann-windowed ``n_fft`` samples each encoder frame saw) to normalised log-mel levels ``(log(E_m / w_m) + 2) / 3``,
    ``E_m`` the magnitude spectrum through torchaudio's ``M``-band mel filterbank (htk, unnormalised triangles, as
    the Griffin-Lim floor's mel) and ``w_m`` the band's weight sum, so that ``E_m / w_m`` is the band's mean magnitude
    per FFT bin; training ties the posterior mean's first ``M`` channels to it
    (:func:`~ming_speech_tokenizer.mel_anchor_loss`). :meth:`forward` inverts the normalisation of those channels of
    the decoder's input and spreads each band's log level over the FFT bins, interpolating linearly between the
    bands' centroids (held flat below the first and above the last): a smooth log-magnitude base with the band
    energies of the latent, which the head's own log-magnitudes (and harmonic comb) refine.
    """

    def __init__(self, config: SpeechTokenizerConfig) -> None:
        super().__init__()
        self.bands = config.mel_anchor_bands
        self.n_fft = config.head_n_fft
        self.sampling_rate = config.sampling_rate
        self.register_buffer("filterbank", torch.empty(0), persistent=False)
        self.register_buffer("spread", torch.empty(0), persistent=False)
        self.reset_buffers()

    def reset_buffers(self) -> None:
        """``filterbank`` ``(bins, M)``: the mel triangles divided by their weight sums; ``spread`` ``(M, bins)``:
        the linear interpolation of band levels between band centroids (non-persistent, rebuilt after loading)."""
        device = self.filterbank.device
        with torch.device("cpu"):  # also when the model is built on `meta`
            filterbank, spread = self._tables()
        self.filterbank, self.spread = filterbank.to(device), spread.to(device)

    def _tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        bins = self.n_fft // 2 + 1
        weights = melscale_fbanks(bins, 0.0, self.sampling_rate / 2, self.bands, self.sampling_rate).double()
        sums = weights.sum(0)
        if not bool((sums > 0).all()):
            raise ValueError(f"n_fft {self.n_fft} is too small for {self.bands} mel bands: some bands hold no FFT bin")
        hz = torch.arange(bins, dtype=torch.float64) * self.sampling_rate / self.n_fft
        centroids = hz @ weights / sums
        right = torch.searchsorted(centroids, hz).clamp(1, self.bands - 1)
        left = right - 1
        fraction = ((hz - centroids[left]) / (centroids[right] - centroids[left])).clamp(0, 1)
        spread = torch.zeros(self.bands, bins, dtype=torch.float64)
        columns = torch.arange(bins)
        spread[left, columns] += 1 - fraction
        spread[right, columns] += fraction
        return (weights / sums).float(), spread.float()

    def target(self, spectrum: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel levels ``(B, T, M)`` (fp32) of complex spectra ``(B, T, n_fft // 2 + 1)``."""
        levels = spectrum.abs().float() @ self.filterbank
        return (levels.clamp(min=_ANCHOR_FLOOR).log() - _ANCHOR_OFFSET) / _ANCHOR_SCALE

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """``(B, T, latent_dim)`` decoder input (unscaled latents) → the base log-magnitudes ``(B, T, n_fft // 2 +
        1)`` (fp32) that its first ``M`` channels imply."""
        return (latents[..., : self.bands].float() * _ANCHOR_SCALE + _ANCHOR_OFFSET) @ self.spread


class ISTFTHead(nn.Module):
    """``(B, T, hidden)`` decoder states → ``(B, T · K, n_fft)`` windowed frames (see :meth:`frames`; ``K`` =
    ``config.head_subframes``, ``n_fft`` and ``hop`` the subframes' ``config.head_n_fft`` and
    ``config.head_hop_length``) → waveform ``(B, T · frame_hop)``."""

    def __init__(self, config: SpeechTokenizerConfig) -> None:
        super().__init__()
        self.n_fft = config.head_n_fft
        self.hop = config.head_hop_length
        self.subframes = config.head_subframes
        self.frame_hop = config.hop_length
        self.latency_frames = config.latency_frames
        # |rfft(hann · x)| ≤ Σ hann = n_fft / 2 for |x| ≤ 1, so no full-scale signal is clipped (Vocos' 1e2 is for
        # n_fft 1024 and would clip a full-scale sine at n_fft 1280, whose peak bin is n_fft / 4 = 320).
        self.max_log_magnitude = math.log(self.n_fft / 2)
        self.bins = self.n_fft // 2 + 1
        self.parallel_phase = config.parallel_phase
        # per subframe, log-magnitude and phase per bin; with parallel_phase the phase's two coordinates
        outputs = self.subframes * self.bins * (3 if config.parallel_phase else 2)
        self.proj = nn.Linear(config.hidden_size, outputs)
        self.harmonic = HarmonicComb(config) if config.harmonic_candidates else None
        self.anchor = MelAnchor(config) if config.mel_anchor_bands else None
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

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

    def log_magnitude_and_phase(
        self, hidden: torch.Tensor, latents: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-magnitudes (before the clip; with the :class:`HarmonicComb` term when the config has one, and the
        :class:`MelAnchor` base of ``latents`` when it has one) and phases (radians; not wrapped, or with
        ``parallel_phase`` ``atan2(y, x)`` in [-π, π]), each ``(B, T · K, n_fft // 2 + 1)`` fp32, of ``(B, T,
        hidden)`` decoder states. ``latents``: the ``(B, T, latent_dim)`` decoder input (unscaled) of those states,
        needed with a mel anchor only."""
        outputs = _per_subframe(self.proj(hidden).float(), self.subframes)
        if self.parallel_phase:
            log_magnitude, y, x = outputs.split(self.bins, dim=-1)
            phase = torch.atan2(y, x)
        else:
            log_magnitude, phase = outputs.chunk(2, dim=-1)
        if self.harmonic is not None:
            log_magnitude = log_magnitude + self.harmonic(hidden)
        if self.anchor is not None:
            if latents is None or latents.shape[:-1] != hidden.shape[:-1]:
                raise ValueError(
                    "this head has a mel anchor (config.mel_anchor_bands > 0): pass the decoder's input latents "
                    f"of the same frames as hidden {tuple(hidden.shape)}, got "
                    f"{None if latents is None else tuple(latents.shape)}"
                )
            log_magnitude = log_magnitude + self.anchor(latents)
        return log_magnitude, phase

    def spectrum(self, hidden: torch.Tensor, latents: torch.Tensor | None = None) -> torch.Tensor:
        """Complex spectra ``(B, T · K, n_fft // 2 + 1)`` (fp32) of ``(B, T, hidden)`` decoder states (and, with a
        mel anchor, their input ``latents``), through :meth:`polar`."""
        return self.polar(*self.log_magnitude_and_phase(hidden, latents))

    def synthesize(self, spectrum: torch.Tensor) -> torch.Tensor:
        """Windowed, normalised time-domain frames ``(B, S, n_fft)`` of complex spectra ``(B, S, n_fft // 2 + 1)``;
        overlap-added ``hop`` apart they give the waveform."""
        return torch.fft.irfft(spectrum, n=self.n_fft) * (self.window / self.normaliser)

    def analyze(self, wave: torch.Tensor) -> torch.Tensor:
        """Complex spectra ``(B, S, n_fft // 2 + 1)`` of ``(B, S · hop)`` audio in this head's layout (``S = T · K``
        for ``T`` latent frames): spectrum ``s`` is the rfft of the Hann-windowed samples ``[hop · (s + 1) − n_fft,
        hop · (s + 1))`` (zeros before the start), inside what encoder frame ``s // K`` saw. :meth:`place` of
        :meth:`synthesize` of them gives ``wave`` back up to the last ``latency_frames`` slots, so they are the
        targets of the spectra the decoder predicts."""
        frames = F.pad(wave.float(), (self.n_fft - self.hop, 0)).unfold(-1, self.n_fft, self.hop)
        return torch.fft.rfft(frames * self.window)

    def frames(self, hidden: torch.Tensor, latents: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`synthesize` of :meth:`spectrum`: the frames the decoder states stand for."""
        return self.synthesize(self.spectrum(hidden, latents))

    def overlap(self, frames: torch.Tensor) -> torch.Tensor:
        """Overlap-add the ``(B, T · K, n_fft)`` frames of decoder frames ``t0 … t0 + T − 1``, frame ``s`` at
        ``[hop · (s + 1) − n_fft, hop · (s + 1))`` from the first one's slot: the ``(B, (latency_frames + T) ·
        frame_hop)`` samples from slot ``t0 − latency_frames`` on (their first ``latency_frames`` slots still need
        the frames before ``t0``, their last ``latency_frames`` slots the frames after; zeros where no window
        reaches, when ``latency_frames · frame_hop > n_fft − hop``)."""
        lead = self.latency_frames * self.frame_hop - (self.n_fft - self.hop)
        return F.pad(overlap_add(frames, self.hop), (lead, 0))

    def place(self, frames: torch.Tensor) -> torch.Tensor:
        """:meth:`overlap` of the ``(B, T · K, n_fft)`` frames of decoder frames ``0 … T − 1`` from slot 0 on: slots
        ``0 … T − 1`` (``(B, T · frame_hop)``); the samples before 0 are dropped and the last ``latency_frames``
        slots are unfinished (the tail :meth:`StreamingDecoder.flush` also returns)."""
        return self.overlap(frames)[:, self.latency_frames * self.frame_hop :]

    def forward(self, hidden: torch.Tensor, latents: torch.Tensor | None = None) -> torch.Tensor:
        """The waveform ``(B, T · frame_hop)`` of decoder states (and, with a mel anchor, their input ``latents``):
        :meth:`place` of :meth:`frames`."""
        return self.place(self.frames(hidden, latents))
