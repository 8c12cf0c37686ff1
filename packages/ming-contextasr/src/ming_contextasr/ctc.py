"""Auxiliary CTC loss on the audio embeddings (joint CTC-attention training, Watanabe et al. 2017).

Trained from scratch with the decoder's loss alone, a small recogniser's L2-normalised audio embeddings stay
dominated by one shared direction and the decoder long ignores the audio. A CTC head over the embeddings, trained
alongside (and dropped afterwards), gives every audio frame its own gradient towards the tokens said there, so the
embeddings become token-aligned features the decoder can read.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .modeling import AudioEncoderOutput

__all__ = ["AudioCTCHead"]


class AudioCTCHead(nn.Module):
    """A linear CTC classifier over :class:`AudioEncoderOutput` embeddings, for an auxiliary training loss.

    The embeddings are unit vectors, so the head reads them at a fixed ``scale`` (as a cosine classifier does):
    unscaled, its logits stay too flat for CTC to leave the all-blank plateau.

    Args:
        width: the embeddings' width (the audio model's ``llm_hidden_size``).
        num_labels: output classes, the blank included (e.g. the tokenizer's size, with its padding id as blank).
        blank: the blank label, which no target may use.
        scale: factor on the embeddings before the linear layer.
    """

    def __init__(self, width: int, num_labels: int, *, blank: int = 0, scale: float = 30.0) -> None:
        super().__init__()
        if not 0 <= blank < num_labels:
            raise ValueError(f"blank {blank} is outside the {num_labels} labels")
        self.linear = nn.Linear(width, num_labels)
        self.blank = blank
        self.scale = scale

    def forward(self, audio: AudioEncoderOutput) -> torch.Tensor:
        """``(batch, max_tokens, num_labels)`` log-probabilities per embedding (rows past a clip's length are
        meaningless)."""
        return self.linear(self.scale * audio.embeddings.float()).log_softmax(-1)

    def loss(self, audio: AudioEncoderOutput, targets: Sequence[Sequence[int]]) -> torch.Tensor:
        """Mean CTC loss (per target label, averaged over the batch) of ``targets``, one label sequence per clip.

        Raises:
            ValueError: the counts differ, or a target uses the blank or a label outside the head.
        """
        if len(targets) != audio.embeddings.shape[0]:
            raise ValueError(f"{audio.embeddings.shape[0]} clips but {len(targets)} targets")
        flat = torch.tensor([label for target in targets for label in target], dtype=torch.long)
        if ((flat == self.blank) | (flat < 0) | (flat >= self.linear.out_features)).any():
            raise ValueError(f"targets must be labels in [0, {self.linear.out_features}) other than blank {self.blank}")
        log_probs = self(audio).transpose(0, 1)  # (time, batch, labels), as F.ctc_loss takes them
        return F.ctc_loss(
            log_probs,
            flat.to(log_probs.device),
            audio.lengths,
            torch.tensor([len(t) for t in targets], device=log_probs.device),
            blank=self.blank,
            zero_infinity=True,
        )

    @torch.no_grad()
    def greedy(self, audio: AudioEncoderOutput) -> list[list[int]]:
        """Best-path decoding: per clip, the argmax labels with repeats merged and blanks removed."""
        best = self(audio).argmax(-1)
        decoded = []
        for row, length in zip(best, audio.lengths.tolist(), strict=True):
            labels = torch.unique_consecutive(row[:length]).tolist()
            decoded.append([label for label in labels if label != self.blank])
        return decoded
