"""Referring-segmentation metrics, RefCOCO protocol (the paper's Table 4 reports RefCOCO/+/g val).

For samples ``i`` with intersection ``I_i = |P_i ∩ T_i|`` and union ``U_i = |P_i ∪ T_i|``:

- **cIoU** (cumulative or "overall" IoU) ``= Σ I_i / Σ U_i``: large objects weigh more.
- **gIoU** (generalised or "mean" IoU) ``= mean_i I_i / U_i``: every sample weighs the same.
- **P@τ** ``= fraction of the samples with a non-empty target whose IoU ≥ τ``, for τ = 0.5, 0.7, 0.9 (``≥``, as in
  LAVT's evaluation code).

**Empty masks.** RefCOCO targets are never empty; for the no-target samples of generalised referring segmentation
(gRefCOCO) a sample whose prediction and target are both empty is right, so its IoU is 1.0 (it adds 0 to both cIoU
sums); an empty target with a non-empty prediction, or the reverse, has IoU 0. If every sample is empty on both sides
the cIoU is 1.0. P@τ follows ReLA's gRefCOCO evaluation: it measures how well present objects are segmented, so
samples with an empty target are left out of it (numerator and denominator); with no such sample it is NaN. With no
samples at all the scores are undefined and :meth:`SegmentationMetrics.compute` raises.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ._validation import as_mask

__all__ = ["PRECISION_THRESHOLDS", "SegmentationMetrics", "SegmentationScores", "mask_iou", "score_masks"]

PRECISION_THRESHOLDS: tuple[float, ...] = (0.5, 0.7, 0.9)
"""IoU thresholds of the precision scores reported for RefCOCO."""


def _counts(pred: np.ndarray, target: np.ndarray) -> tuple[int, int]:
    pred, target = as_mask(pred, "pred"), as_mask(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred has shape {pred.shape} but target has shape {target.shape}")
    return int(np.count_nonzero(pred & target)), int(np.count_nonzero(pred | target))


def _iou(intersection: int, union: int) -> float:
    return intersection / union if union else 1.0


def mask_iou(pred: np.ndarray, target: np.ndarray) -> float:
    """IoU of two ``(H, W)`` boolean masks; 1.0 when both are empty (module docstring)."""
    return _iou(*_counts(pred, target))


@dataclass(frozen=True)
class SegmentationScores:
    """Scores of a set of samples (definitions in :mod:`ming_genseg.metrics`).

    Attributes:
        ciou: cumulative intersection over cumulative union.
        giou: mean per-sample IoU.
        precision: read-only ``{τ: fraction of the samples with a non-empty target whose IoU ≥ τ}`` (NaN if none).
        n: number of samples.
    """

    ciou: float
    giou: float
    precision: Mapping[float, float]
    n: int


class SegmentationMetrics:
    """Accumulates cIoU, gIoU and P@τ one sample at a time (masks may differ in size between samples).

    >>> metrics = SegmentationMetrics()
    >>> metrics.update(np.ones((2, 2), bool), np.ones((2, 2), bool))
    1.0
    >>> metrics.compute().giou
    1.0
    """

    def __init__(self, thresholds: Sequence[float] = PRECISION_THRESHOLDS) -> None:
        """Start empty; ``thresholds`` are the IoU levels of the precision scores, each a number in (0, 1].

        Raises:
            ValueError: ``thresholds`` is not a sequence of numbers in (0, 1].
        """
        if not isinstance(thresholds, Sequence) or isinstance(thresholds, str):
            raise ValueError(f"thresholds must be a sequence of numbers in (0, 1], e.g. (0.5,), got {thresholds!r}")
        for threshold in thresholds:
            if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
                raise ValueError(f"thresholds must be numbers in (0, 1], got {threshold!r}")
            if not 0.0 < threshold <= 1.0:
                raise ValueError(f"thresholds must lie in (0, 1], got {threshold}")
        self.thresholds = tuple(float(threshold) for threshold in thresholds)
        self._intersection = 0
        self._union = 0
        self._ious: list[float] = []
        self._has_target: list[bool] = []

    def update(self, pred: np.ndarray, target: np.ndarray) -> float:
        """Add one sample (``(H, W)`` boolean masks of the same shape); returns its IoU.

        Raises:
            ValueError: a mask is not 2-D or not boolean (0/1), or the shapes differ.
        """
        intersection, union = _counts(pred, target)
        self._intersection += intersection
        self._union += union
        self._ious.append(_iou(intersection, union))
        self._has_target.append(bool(np.any(target)))
        return self._ious[-1]

    def compute(self) -> SegmentationScores:
        """The scores of the samples added so far.

        Raises:
            ValueError: no sample was added.
        """
        if not self._ious:
            raise ValueError("no samples: call update(pred, target) at least once")
        ious = np.asarray(self._ious)
        present = ious[np.asarray(self._has_target)]
        precision = {
            threshold: float(np.mean(present >= threshold)) if present.size else float("nan")
            for threshold in self.thresholds
        }
        ciou = _iou(self._intersection, self._union)
        return SegmentationScores(ciou, float(ious.mean()), MappingProxyType(precision), len(ious))


def score_masks(
    preds: Iterable[np.ndarray], targets: Iterable[np.ndarray], thresholds: Sequence[float] = PRECISION_THRESHOLDS
) -> SegmentationScores:
    """cIoU, gIoU and P@τ of paired predictions and targets.

    Raises:
        ValueError: the two sequences differ in length, a pair differs in shape, a mask is not boolean, or there are
            no samples.
    """
    metrics = SegmentationMetrics(thresholds)
    preds, targets = list(preds), list(targets)
    if len(preds) != len(targets):
        raise ValueError(f"{len(preds)} predictions but {len(targets)} targets")
    for i, (pred, target) in enumerate(zip(preds, targets, strict=True)):
        try:
            metrics.update(pred, target)
        except ValueError as error:
            raise ValueError(f"sample {i}: {error}") from None
    return metrics.compute()
