"""Wall-clock timing for the benchmark scripts: the median of repeated calls after a warm-up."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

__all__ = ["median_seconds"]


def median_seconds(call: Callable[[], object], repeats: int, warmup: bool = True) -> float:
    """Median wall time (``time.perf_counter``) of ``repeats`` calls of ``call``, after one untimed call when
    ``warmup`` (first calls pay for allocation, caches and lazy initialisation)."""
    if repeats < 1:
        raise ValueError(f"repeats: expected at least 1, got {repeats}")
    if warmup:
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
