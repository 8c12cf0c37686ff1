"""cIoU, gIoU and precision at IoU thresholds on hand-computed cases, including empty masks."""

from __future__ import annotations

import numpy as np
import pytest

from ming_genseg import SegmentationMetrics, mask_iou, score_masks


def _box(shape, y0, y1, x0, x1) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_ciou_and_giou_differ_when_object_sizes_differ():
    # Large object: target 10x10, prediction its top 8 rows → I = 80, U = 100, IoU 0.8.
    big_target, big_pred = _box((20, 20), 0, 10, 0, 10), _box((20, 20), 0, 8, 0, 10)
    # Small object: target 2x2, prediction shifted by one pixel both ways → I = 1, U = 7, IoU 1/7.
    small_target, small_pred = _box((6, 6), 2, 4, 2, 4), _box((6, 6), 3, 5, 3, 5)
    scores = score_masks([big_pred, small_pred], [big_target, small_target])
    assert scores.ciou == pytest.approx(81 / 107)  # the large object dominates the cumulative sums
    assert scores.giou == pytest.approx((0.8 + 1 / 7) / 2)  # every sample weighs the same
    assert scores.precision == {0.5: 0.5, 0.7: 0.5, 0.9: 0.0}
    assert scores.n == 2
    # Segmenting the small object well and the big one badly flips the order.
    flipped = score_masks([_box((20, 20), 0, 2, 0, 10), small_target], [big_target, small_target])
    assert flipped.ciou == pytest.approx((20 + 4) / (100 + 4))
    assert flipped.giou == pytest.approx((0.2 + 1.0) / 2)
    assert flipped.giou > flipped.ciou


def test_equal_sizes_and_equal_ious_make_ciou_equal_giou():
    targets = [_box((10, 10), 0, 4, 0, 4), _box((10, 10), 5, 9, 5, 9)]
    preds = [_box((10, 10), 0, 4, 0, 2), _box((10, 10), 5, 9, 7, 9)]
    scores = score_masks(preds, targets)
    assert scores.ciou == pytest.approx(0.5)
    assert scores.giou == pytest.approx(0.5)


def test_precision_thresholds_are_inclusive():
    target, pred = _box((4, 4), 0, 1, 0, 2), _box((4, 4), 0, 1, 0, 1)  # IoU exactly 0.5
    assert score_masks([pred], [target], thresholds=(0.5, 0.51)).precision == {0.5: 1.0, 0.51: 0.0}


def test_empty_masks_have_defined_scores():
    empty, box = np.zeros((5, 5), bool), _box((5, 5), 1, 3, 1, 3)
    assert mask_iou(empty, empty) == 1.0  # no target, nothing predicted: right
    assert mask_iou(box, empty) == 0.0
    assert mask_iou(empty, box) == 0.0
    assert score_masks([empty, empty], [empty, empty]).ciou == 1.0
    mixed = score_masks([empty, box], [empty, box])
    assert (mixed.ciou, mixed.giou, mixed.precision[0.9]) == (1.0, 1.0, 1.0)
    wrong = score_masks([box, empty], [empty, box])
    assert (wrong.ciou, wrong.giou) == (0.0, 0.0)


def test_precision_counts_only_samples_with_a_target():
    # ReLA's gRefCOCO evaluation: P@τ over the samples whose target is not empty.
    empty, box, half = np.zeros((4, 4), bool), _box((4, 4), 0, 2, 0, 2), _box((4, 4), 0, 1, 0, 2)
    scores = score_masks([empty, box, box, half], [empty, empty, box, box])
    assert scores.giou == pytest.approx((1.0 + 0.0 + 1.0 + 0.5) / 4)  # every sample
    assert dict(scores.precision) == {0.5: 1.0, 0.7: 0.5, 0.9: 0.5}  # the two samples with a target
    no_target = score_masks([empty, box], [empty, empty])
    assert all(np.isnan(p) for p in no_target.precision.values())
    with pytest.raises(TypeError):
        scores.precision[0.5] = 0.0  # read-only


def test_streaming_equals_batch_and_masks_may_differ_in_size_between_samples():
    rng = np.random.default_rng(0)
    preds = [rng.random((h, w)) > 0.5 for h, w in ((5, 7), (12, 3), (9, 9))]
    targets = [rng.random(p.shape) > 0.4 for p in preds]
    metrics = SegmentationMetrics()
    ious = [metrics.update(p, t) for p, t in zip(preds, targets, strict=True)]
    assert ious == [mask_iou(p, t) for p, t in zip(preds, targets, strict=True)]
    assert metrics.compute() == score_masks(preds, targets)
    assert metrics.compute().giou == pytest.approx(np.mean(ious))
    assert score_masks([p.astype(np.uint8) for p in preds], targets) == metrics.compute()  # 0/1 masks are fine


def test_bad_input_is_explained():
    box = _box((4, 4), 0, 2, 0, 2)
    with pytest.raises(ValueError, match=r"sample 1: pred has shape \(4, 5\) but target has shape \(4, 4\)"):
        score_masks([box, np.zeros((4, 5), bool)], [box, box])
    with pytest.raises(ValueError, match="pred must be boolean"):
        mask_iou(box * 255, box)
    with pytest.raises(ValueError, match="target must be a 2-D"):
        mask_iou(box, box[None])
    with pytest.raises(ValueError, match="2 predictions but 1 targets"):
        score_masks([box, box], [box])
    with pytest.raises(ValueError, match="no samples"):
        score_masks([], [])
    with pytest.raises(ValueError, match=r"thresholds must lie in \(0, 1\], got 1.5"):
        SegmentationMetrics(thresholds=(0.5, 1.5))
    with pytest.raises(ValueError, match=r"thresholds must be numbers in \(0, 1\], got 'a'"):
        SegmentationMetrics(thresholds=("a",))
    with pytest.raises(ValueError, match=r"thresholds must be a sequence .* got 0.5"):
        SegmentationMetrics(thresholds=0.5)
