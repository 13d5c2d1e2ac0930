"""Fault class: report strings escaped for every place they land."""

from __future__ import annotations

from conftest import cli_run as run_cli
from faultkit import (
    fault_fixture,  # noqa: F401 - each case's own temporary directory
    )
from reportgen import make_report

from bench.model.io import dump_report

HOSTILE_TEXT = "=HYPERLINK(\"http://x\")|pipe\nnew line <b>raw</b> \x1b[31mred\x1b[0m \x07 \u202eevil"


def test_report_strings_are_escaped_for_each_format(tmp_path, capsys):
    import csv

    a = dump_report(make_report(HOSTILE_TEXT, 0.2, repeats=3, device_name=HOSTILE_TEXT, host=HOSTILE_TEXT,
                                warnings=[{"code": "noisy", "message": HOSTILE_TEXT}]), tmp_path / "a.json")
    b = dump_report(make_report("-2+3", 0.1, seed=1, repeats=3), tmp_path / "b.json")
    md, csv_path = tmp_path / "o.md", tmp_path / "o.csv"
    code, out, err = run_cli(capsys, "compare", a, b, "--markdown", md, "--csv", csv_path)
    assert code == 0, err
    for text in (out, err):  # the terminal: no raw control sequence, bidi override or bell
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\x1b" in out  # shown, not executed
    lines = md.read_text().splitlines()
    assert len({line.count(" | ") for line in lines if line.startswith("| ")}) == 1  # no cell broke the table
    assert "<b>" not in md.read_text() and "\x1b" not in md.read_text()
    cells = [c for row in csv.reader(csv_path.open()) for c in row]
    assert not any(c.startswith(("=", "+", "@")) for c in cells)
    assert "'-2+3" in cells and any(c.startswith("'=HYPERLINK") for c in cells)
