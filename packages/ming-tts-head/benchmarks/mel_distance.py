"""Log-mel distance between generated speech and a reference recording of the same sentence, which are neither
aligned nor equally long: the mean L1 distance between log-mel frames along the dynamic-time-warping path, as
MCD-DTW compares TTS output with a recording."""

from __future__ import annotations

import torch
import torchaudio

SAMPLE_RATE = 16_000
_MEL = torchaudio.transforms.MelSpectrogram(SAMPLE_RATE, n_fft=1024, hop_length=160, n_mels=80)  # 10 ms frames


def log_mel(audio: torch.Tensor) -> torch.Tensor:
    """``(frames, 80)`` natural-log mel spectrogram of ``(samples,)`` audio at 16 kHz."""
    return _MEL(audio.float()).clamp(min=1e-5).log().T


def dtw_mean_cost(cost: torch.Tensor) -> float:
    """Mean cost along the cheapest monotonic path (steps right, down, diagonal) from the first to the last cell of
    ``cost`` ``(n, m)``. librosa has DTW but is not in the tested set of packages; the recurrence is a few lines."""
    rows = cost.tolist()
    n, m = len(rows), len(rows[0])
    inf = float("inf")
    total = [[inf] * (m + 1) for _ in range(n + 1)]
    length = [[0] * (m + 1) for _ in range(n + 1)]
    total[0][0] = 0.0
    for i in range(1, n + 1):
        above, here, row = total[i - 1], total[i], rows[i - 1]
        above_length, here_length = length[i - 1], length[i]
        for j in range(1, m + 1):
            best, steps = above[j - 1], above_length[j - 1]
            if above[j] < best:
                best, steps = above[j], above_length[j]
            if here[j - 1] < best:
                best, steps = here[j - 1], here_length[j - 1]
            here[j] = best + row[j - 1]
            here_length[j] = steps + 1
    return total[n][m] / length[n][m]


def mel_distance(audio: torch.Tensor, reference: torch.Tensor) -> float:
    """DTW-aligned mean L1 distance per mel bin between the log-mel frames of ``audio`` and ``reference``
    (``(samples,)`` each, 16 kHz)."""
    ours, theirs = log_mel(audio), log_mel(reference)
    return dtw_mean_cost(torch.cdist(ours, theirs, p=1) / ours.shape[1])
