"""Benchmark results: the table every ``packages/*/benchmarks`` script prints and the JSON it writes.

The JSON holds ``{title, command, machine, columns, rows, notes}`` (plus any extra keys a benchmark keeps), the
layout docs/hooks/benchmarks.py renders into the benchmarks page. Kept here, beside the data makers the benchmarks
already use, so that every package writes the same layout without depending on another component package.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["describe_machine", "format_table", "write_results"]


def describe_machine(threads: str, **versions: str) -> str:
    """``"<arch> CPU, <n> cores, <threads>, <library> <version>, ..."``, e.g.
    ``describe_machine("1 thread", torch=torch.__version__)``."""
    parts = [f"{platform.machine()} CPU", f"{os.cpu_count()} cores", threads]
    return ", ".join(parts + [f"{name} {version}" for name, version in versions.items()])


def format_table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """``rows`` (mappings holding every column) as a markdown table, as the docs render it."""
    missing = sorted({c for row in rows for c in columns if c not in row})
    if missing:
        raise ValueError(f"rows: every row must hold every column; missing {missing}")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_results(
    path: Path,
    *,
    title: str,
    command: str,
    machine: str,
    rows: Sequence[Mapping[str, Any]],
    notes: str,
    columns: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Print the table and ``notes``, then write ``{title, command, machine, columns, rows, notes, **extra}`` to
    ``path`` (its folder is made). ``columns`` defaults to the first row's keys, in order."""
    if not rows:
        raise ValueError("rows: a benchmark result needs at least one row")
    columns = list(rows[0]) if columns is None else list(columns)
    print(format_table(columns, rows))
    print(notes)
    result = {
        "title": title,
        "command": command,
        "machine": machine,
        "columns": columns,
        "rows": [dict(row) for row in rows],
        "notes": notes,
    }
    clash = sorted(set(extra or {}) & set(result))
    if clash:
        raise ValueError(f"extra: keys {clash} are the result's own")
    result.update(extra or {})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {path}")
