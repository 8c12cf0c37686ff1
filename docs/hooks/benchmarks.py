"""mkdocs hook: replace ``<!-- benchmarks -->`` with tables built from the committed bench JSON.

Every ``packages/<pkg>/benchmarks/results/*.json`` written by ``nox -s bench-<pkg>`` holds ``{"title", "command",
"machine", "columns", "rows", "notes"}``; each becomes a section of the benchmarks page, so the page always shows
the last measured numbers and the command that measured them.
"""

from __future__ import annotations

import json
from pathlib import Path

MARKER = "<!-- benchmarks -->"
ROOT = Path(__file__).resolve().parents[2]


def _table(result: dict) -> str:
    columns = result["columns"]
    lines = [
        f"### {result['title']}",
        "",
        f"Measured with `{result['command']}` on {result['machine']}.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in result["rows"]]
    if result.get("notes"):
        lines += ["", result["notes"]]
    return "\n".join(lines) + "\n"


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Fill the benchmarks marker; other pages pass through unchanged."""
    if MARKER not in markdown:
        return markdown
    sections = []
    for path in sorted(ROOT.glob("packages/*/benchmarks/results/*.json")):
        package = path.parts[-4]
        sections.append(f"## {package}\n\n" + _table(json.loads(path.read_text())))
    body = "\n".join(sections) if sections else "No benchmark results are committed yet."
    return markdown.replace(MARKER, body)
