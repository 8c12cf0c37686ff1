"""Shared by the benchmark scripts: print a result table and write it as the JSON that docs/hooks/benchmarks.py
renders (``{title, command, machine, columns, rows, notes}``)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

COMMAND = "nox -s bench-ming-tts-head"


def machine(threads: int) -> str:
    """The CPU, its core count, the torch threads used and the torch version."""
    return f"{platform.machine()} CPU, {os.cpu_count()} cores, {threads} torch thread(s), torch {torch.__version__}"


def write_result(
    out: Path, title: str, machine_text: str, rows: list[dict], notes: list[str], command: str = COMMAND
) -> None:
    """Print ``rows`` (dicts with the same keys, in column order) and ``notes``, and write them to ``out`` with the
    ``command`` that makes them."""
    columns = list(rows[0])
    print(f"| {' | '.join(columns)} |")  # a markdown table, as the docs render it
    print("|" + "---|" * len(columns))
    print("\n".join(f"| {' | '.join(str(row[c]) for c in columns)} |" for row in rows))
    print("\n".join(notes))
    result = {
        "title": title,
        "command": command,
        "machine": machine_text,
        "columns": columns,
        "rows": rows,
        "notes": " ".join(notes),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")
