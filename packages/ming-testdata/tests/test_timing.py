"""The benchmark timer: median of the timed calls, the warm-up call left out of it."""

from __future__ import annotations

import itertools

import pytest

from ming_testdata import timing
from ming_testdata.timing import median_seconds


def test_median_of_timed_calls_excludes_the_warm_up(monkeypatch):
    durations = iter([100.0, 3.0, 1.0, 2.0])  # the warm-up is slow; it must not count
    clock = itertools.count()
    now = [0.0]
    calls = []

    def call():
        calls.append(next(clock))
        now[0] += next(durations)

    monkeypatch.setattr(timing.time, "perf_counter", lambda: now[0])
    assert median_seconds(call, repeats=3) == 2.0
    assert len(calls) == 4


def test_without_warm_up_every_call_is_timed(monkeypatch):
    durations = iter([100.0, 3.0, 1.0])
    now = [0.0]

    def call():
        now[0] += next(durations)

    monkeypatch.setattr(timing.time, "perf_counter", lambda: now[0])
    assert median_seconds(call, repeats=3, warmup=False) == 3.0


def test_zero_repeats_is_refused():
    with pytest.raises(ValueError, match="repeats: expected at least 1"):
        median_seconds(lambda: None, repeats=0)
