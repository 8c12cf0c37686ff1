"""Aspect-ratio buckets around 512² and 1024²."""

import math

import pytest

from ming_imagegen import ASPECT_RATIO_BUCKETS_512, aspect_ratio_buckets, nearest_bucket


def test_512_buckets_keep_the_area_and_cover_1_to_4():
    for h, w in ASPECT_RATIO_BUCKETS_512:
        assert h % 32 == 0
        assert w % 32 == 0
        assert abs(h * w / 512**2 - 1) < 0.03
    ratios = [h / w for h, w in ASPECT_RATIO_BUCKETS_512]
    assert min(ratios) == 0.25
    assert max(ratios) == 4.0
    assert set(ASPECT_RATIO_BUCKETS_512) == {(w, h) for h, w in ASPECT_RATIO_BUCKETS_512}


def test_1024_buckets_are_the_512_set_doubled():
    assert aspect_ratio_buckets(1024) == sorted((2 * h, 2 * w) for h, w in ASPECT_RATIO_BUCKETS_512)


def test_nearest_bucket_minimises_the_log_aspect_distance():
    for height, width in [(1080, 1920), (300, 200), (1000, 1000), (100, 700)]:
        chosen = nearest_bucket(height, width)
        best = min(abs(math.log(h / w) - math.log(height / width)) for h, w in ASPECT_RATIO_BUCKETS_512)
        assert abs(math.log(chosen[0] / chosen[1]) - math.log(height / width)) == best
    assert nearest_bucket(1000, 1000) == (512, 512)
    assert nearest_bucket(1000, 2000) == (352, 736)


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="positive"):
        nearest_bucket(0, 10)
