"""This package's defaults for :mod:`ming_testdata.results`: its benchmark commands and its machine line."""

from __future__ import annotations

from pathlib import Path

import torch

from ming_testdata.results import describe_machine, write_results


def write_result(path: Path, title: str, script: str, rows: list[dict[str, str]], notes: str) -> None:
    """Write ``{title, command, machine, columns, rows, notes}`` to ``path``; ``script`` is the benchmark's file
    name, ``rows`` share their keys (the columns)."""
    write_results(
        path,
        title=title,
        command=f"python packages/ming-speech-tokenizer/benchmarks/{script}",
        machine=describe_machine("1 thread", torch=torch.__version__),
        rows=rows,
        notes=notes,
    )
