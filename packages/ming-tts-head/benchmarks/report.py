"""This package's defaults for :mod:`ming_testdata.results`: the command that makes its results and its machine line."""

from __future__ import annotations

from pathlib import Path

import torch

from ming_testdata.results import describe_machine, write_results

COMMAND = "nox -s bench-ming-tts-head"


def machine(threads: int) -> str:
    """The CPU, its core count, the torch threads used and the torch version."""
    return describe_machine(f"{threads} torch thread(s)", torch=torch.__version__)


def write_result(
    out: Path, title: str, machine_text: str, rows: list[dict], notes: list[str], command: str = COMMAND
) -> None:
    """Print ``rows`` (dicts with the same keys, in column order) and ``notes``, and write them to ``out`` with the
    ``command`` that makes them."""
    write_results(out, title=title, command=command, machine=machine_text, rows=rows, notes=" ".join(notes))
