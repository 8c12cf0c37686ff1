"""Aspect-ratio buckets around 512² (and ×2 for 1024²) (DESIGN "Image generator")."""

from __future__ import annotations

__all__ = ["ASPECT_RATIO_BUCKETS_512", "aspect_ratio_buckets", "nearest_bucket"]

#: ``(height, width)`` buckets of about 512² pixels, multiples of 32, aspect 1:4 to 4:1.
ASPECT_RATIO_BUCKETS_512: tuple[tuple[int, int], ...] = tuple(
    sorted(
        {
            (h, w)
            for h, w in [
                (512, 512),
                (480, 544),
                (448, 576),
                (416, 640),
                (384, 672),
                (352, 736),
                (320, 800),
                (288, 896),
                (256, 1024),
            ]
            for h, w in ((h, w), (w, h))
        }
    )
)


def aspect_ratio_buckets(resolution: int = 512, multiple: int = 32) -> list[tuple[int, int]]:
    """The 512² bucket set scaled to ``resolution²`` (1024 gives exactly the ×2 set), sides rounded to ``multiple``."""
    if resolution <= 0 or multiple <= 0:
        raise ValueError(f"resolution and multiple must be positive, got {resolution} and {multiple}")
    scale = resolution / 512

    def side(x: int) -> int:
        return max(multiple, round(x * scale / multiple) * multiple)

    rounded = {(side(h), side(w)) for h, w in ASPECT_RATIO_BUCKETS_512}
    return sorted(rounded)


def nearest_bucket(height: int, width: int, resolution: int = 512, multiple: int = 32) -> tuple[int, int]:
    """The bucket whose aspect ratio is closest (in log ratio) to ``height / width``."""
    import math

    if height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive, got {height}×{width}")
    target = math.log(height / width)
    return min(aspect_ratio_buckets(resolution, multiple), key=lambda hw: (abs(math.log(hw[0] / hw[1]) - target), hw))
