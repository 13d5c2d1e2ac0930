"""Fault class: report strings escaped for every place they land.

The terminal has one door (bench/render/screen.py: a Screen prints Shown text only; tests/test_screen.py
checks statically that nothing else prints): these cases put hostile strings in every field a view
shows and read what reached each stream."""

from __future__ import annotations

import pytest
from conftest import cli_run as run_cli
from faultkit import ONE, QUICK
from faultkit import fault_fixture  # noqa: F401 - each case's own temporary directory
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


ESCAPES = "\x1b[2J\x1b]0;owned\x07\u202e[bold]markup[/]\u2066"
RAW = ("\x1b", "\x07", "\u202e", "\u2066")


def _clean(*texts):
    for text in texts:
        assert not any(c in text for c in RAW), repr(text[:400])


@pytest.mark.parametrize("width", [200, 40, 20])  # wide, transposed and one block per run
def test_a_serving_comparison_shows_its_titles_and_cells_escaped_at_every_width(width, tmp_path, capsys):
    from reportgen import serving_report

    r = serving_report(ESCAPES, [(2.0, True), (4.0, False)])
    r.environment.device["device_name"] = ESCAPES
    for res in r.results:
        res.workload = "blender-serve" + ESCAPES
    a = dump_report(r, tmp_path / "a.json")
    code, out, err = run_cli(capsys, "compare", a, "--width", width)
    assert code == 0, err
    _clean(out, err)
    assert "\\x1b" in out and ("latency against offered load" in out or width < 100)


@pytest.mark.parametrize("width", [200, 30])
def test_a_run_table_laid_out_as_blocks_escapes_its_run_names(width, tmp_path, capsys):
    a = dump_report(make_report(ESCAPES, 0.2, repeats=3, device_name=ESCAPES), tmp_path / "a.json")
    b = dump_report(make_report("b" + ESCAPES, 0.1, seed=1, repeats=3, workload="blender-finetune" + ESCAPES),
                    tmp_path / "b.json")
    code, out, err = run_cli(capsys, "compare", a, b, "--width", width, "--force")
    assert code == 0, err
    _clean(out, err)


def test_json_on_stdout_carries_every_string_as_an_escape(tmp_path, capsys):
    import json

    a = dump_report(make_report(ESCAPES, 0.2, repeats=3, device_name=ESCAPES,
                                warnings=[{"code": "noisy", "message": ESCAPES}]), tmp_path / "a.json")
    code, out, err = run_cli(capsys, "compare", a, a, "--json", "-")
    assert code == 0, err
    _clean(out, err)
    doc = json.loads(out)
    assert doc["workloads"][0]["rows"][0]["label"] == ESCAPES  # the data is whole, only its spelling changed


def test_a_hostile_file_name_in_a_note_is_shown_escaped(tmp_path, capsys):
    a = dump_report(make_report("a", 0.2, repeats=3), tmp_path / "a.json")
    twin = tmp_path / ("twin\x1b[31m\u202e.json")
    twin.write_bytes(a.read_bytes())
    code, out, err = run_cli(capsys, "compare", a, twin)
    assert code == 0, err
    _clean(out, err)
    assert "dropped, the same run" in out and "$'" in out  # the path in the shell's quoting, usable


def test_a_run_summary_escapes_errors_warnings_and_names(tmp_path, capsys, monkeypatch):
    from workloads.retrieval_encode import RetrievalEncode

    def setup(self):
        raise RuntimeError(ESCAPES)

    monkeypatch.setattr(RetrievalEncode, "setup", setup)
    code, out, err = run_cli(capsys, "run", *QUICK, *ONE, "--in-process", "--sample-hz", 0, "--out", tmp_path / "o",
                             "--label", ESCAPES)
    assert code == 1
    _clean(out, err)
    assert "\\x1b" in err  # the error was shown, escaped
