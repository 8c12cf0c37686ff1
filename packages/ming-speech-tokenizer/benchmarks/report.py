"""The results JSON every benchmark of this package writes (rendered by docs/hooks/benchmarks.py)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch


def write_result(path: Path, title: str, script: str, rows: list[dict[str, str]], notes: str) -> None:
    """Write ``{title, command, machine, columns, rows, notes}`` to ``path``; ``script`` is the benchmark's file
    name, ``rows`` share their keys (the columns)."""
    result = {
        "title": title,
        "command": f"python packages/ming-speech-tokenizer/benchmarks/{script}",
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores (shared), 1 thread, torch {torch.__version__}",
        "columns": list(rows[0]),
        "rows": rows,
        "notes": notes,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {path}")
