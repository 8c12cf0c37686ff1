"""The benchmark results writer: the JSON docs/hooks/benchmarks.py reads, and the table printed beside it."""

from __future__ import annotations

import json
import platform

import pytest

from ming_testdata.results import describe_machine, format_table, write_results

ROWS = [{"case": "ours", "ms": "1.5"}, {"case": "peer", "ms": "3.0"}]


def test_written_json_round_trips_every_field_and_keeps_row_order(tmp_path, capsys):
    path = tmp_path / "nested" / "result.json"
    write_results(path, title="T", command="nox -s bench-x", machine="m", rows=ROWS, notes="n.", extra={"raw": [1, 2]})
    assert json.loads(path.read_text()) == {
        "title": "T",
        "command": "nox -s bench-x",
        "machine": "m",
        "columns": ["case", "ms"],
        "rows": ROWS,
        "notes": "n.",
        "raw": [1, 2],
    }
    printed = capsys.readouterr().out
    assert "| case | ms |\n|---|---|\n| ours | 1.5 |\n| peer | 3.0 |\nn.\n" in printed


def test_explicit_columns_choose_and_order_the_table():
    assert format_table(["ms", "case"], ROWS).splitlines() == [
        "| ms | case |",
        "|---|---|",
        "| 1.5 | ours |",
        "| 3.0 | peer |",
    ]


def test_a_row_missing_a_column_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"missing \['ms'\]"):
        write_results(tmp_path / "r.json", title="T", command="c", machine="m", rows=[*ROWS, {"case": "x"}], notes="")
    assert not (tmp_path / "r.json").exists()


def test_no_rows_and_clashing_extra_keys_are_refused(tmp_path):
    with pytest.raises(ValueError, match="at least one row"):
        write_results(tmp_path / "r.json", title="T", command="c", machine="m", rows=[], notes="")
    with pytest.raises(ValueError, match=r"extra: keys \['notes'\]"):
        write_results(tmp_path / "r.json", title="T", command="c", machine="m", rows=ROWS, notes="", extra={"notes": 1})
    assert not (tmp_path / "r.json").exists()


def test_machine_line_names_architecture_threads_and_library_versions():
    line = describe_machine("1 thread", torch="2.11.0", numpy="2.0")
    assert line.startswith(f"{platform.machine()} CPU, ")
    assert line.endswith(", 1 thread, torch 2.11.0, numpy 2.0")
