"""Every figure a workload declares, in every output of compare (terminal, CSV, Markdown, HTML, JSON,
DataFrame) and of a run, readable at 80 columns."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import cli_run as run_cli
from reportgen import generation_report, make_report

from bench.model.io import dump_report
from bench.render.screen import Screen

HEADERS = ["new tokens/s [95% CI]", "vs baseline", "TTFT p50", "TTFT p99", "request p50", "request p99",
           "per-token p50", "decode tok/s"]



@pytest.fixture
def gen_pair(tmp_path):
    a = dump_report(generation_report("gpu-a", 0.10, ttft_s=0.0123, repeats=3, peak_mem=397_165_000),
                    tmp_path / "a.json")
    b = dump_report(generation_report("gpu-b", 0.05, ttft_s=0.0061, seed=1, repeats=3, peak_mem=123_456_789),
                    tmp_path / "b.json")
    return a, b


def test_generation_latency_is_in_every_compare_output(gen_pair, tmp_path, capsys):
    pytest.importorskip("plotly")
    outs = {k: tmp_path / f"out.{k}" for k in ("csv", "md", "html", "json")}
    code, out, err = run_cli(capsys, "compare", *gen_pair, "--width", 200, "--csv", outs["csv"],
                             "--markdown", outs["md"], "--html", outs["html"], "--json", outs["json"])
    assert code == 0, err
    for h in HEADERS:
        assert h in out, h
    assert "12.3 ms" in out and "6.1 ms" in out  # TTFT p50 of each run, with its unit
    [base, other] = list(csv.DictReader(outs["csv"].open()))
    assert float(base["ttft_s.median"]) == pytest.approx(0.0123) and float(other["ttft_s.p99"]) > 0
    assert other["verdict"] == "faster" and float(other["speedup"]) == pytest.approx(2.0, rel=0.05)
    md = outs["md"].read_text()
    assert "| TTFT p50 |" in md and "12.3 ms" in md and "TTFT p99" in md
    page = outs["html"].read_text()
    assert "TTFT p50" in page and "TTFT p99" in page and "12.3 ms" in page
    doc = json.loads(outs["json"].read_text())
    assert doc["format"] == "bench-compare" and doc["format_version"] == 3
    [wl] = doc["workloads"]
    [said] = [n for n in wl["notes"] if n["code"] == "verdict"]  # a note: its code, values and words
    assert said["run"] == "gpu-b" and said["values"]["speedup"]["verdict"] == "faster"
    assert said["text"] == f"gpu-b vs gpu-a: {wl['rows'][1]['verdict_text']}"
    units = {c["key"]: c["unit"] for c in wl["columns"]}
    assert units["ttft_s.median"] == "s" and units["ttft_s.p99"] == "s" and units["tokens_per_s"] == "tokens/s"
    assert wl["rows"][0]["ttft_s.median"] == pytest.approx(0.0123) and wl["rows"][1]["verdict"] == "faster"


@pytest.mark.parametrize("runs", [2, 7])
def test_at_80_columns_no_line_is_wider_and_no_header_is_cut(runs, tmp_path, capsys):
    paths = [dump_report(generation_report(f"run-{i}", 0.1 / (1 + i / 10), seed=i, repeats=3), tmp_path / f"{i}.json")
             for i in range(runs)]
    code, out, _ = run_cli(capsys, "compare", *paths, "--width", 80)
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 80
    for h in HEADERS:
        assert h in out, h  # whole, not folded to "TTF/T p5/0"
    for i in range(runs):
        assert f"run-{i}" in out


def test_a_wide_terminal_gets_one_row_per_run(gen_pair, capsys):
    code, out, _ = run_cli(capsys, "compare", *gen_pair, "--width", 400)
    header = next(line for line in out.splitlines() if "TTFT p50" in line)
    assert "TTFT p99" in header and "request p50" in header  # the figures are columns
    assert sum(1 for line in out.splitlines() if line.lstrip("│┃ ").startswith(("gpu-a", "gpu-b"))) == 2


def test_markdown_and_csv_show_unknown_as_a_dash_and_numbers_plainly(gen_pair, tmp_path, capsys):
    md, cs = tmp_path / "o.md", tmp_path / "o.csv"
    no_mem = dump_report(generation_report("gpu-c", 0.07, seed=2, repeats=3), tmp_path / "c.json")
    run_cli(capsys, "compare", *gen_pair, no_mem, "--markdown", md, "--csv", cs)
    text = md.read_text()
    assert "nan" not in text.lower() and "None" not in text
    assert "| 95.0 ms | 2.5 ms | 400 | 50.1 ms | 52.1 ms | 117.7 MiB |" in text
    assert "| — |" in text  # gpu-c's peak memory: not measured
    assert "378.8 MiB" in text  # 397,165,000 bytes, not 3.97165e+08
    raw = cs.read_text()
    assert "e+" not in raw and "nan" not in raw.lower() and ",397165000," in raw


def test_json_to_stdout_is_the_only_thing_on_stdout(gen_pair, capsys):
    code, out, _ = run_cli(capsys, "compare", *gen_pair, "--json", "-")
    doc = json.loads(out)
    assert code == 0 and doc["workloads"][0]["workload"] == "blender-generate"


def test_runs_without_labels_get_short_unique_names(tmp_path, capsys):
    paths = []
    for i in range(2):
        r = make_report(None, 0.1, seed=i, repeats=3)
        r.run_id = f"{i:02d}c0ffee{i}" * 2
        paths.append(dump_report(r, tmp_path / f"20261128T000000Z_cpu_host_{i}.json"))
    code, out, _ = run_cli(capsys, "compare", *paths, "--width", 200)
    assert "cpu 11-28 00:00 #00c0ff" in out and "cpu 11-28 00:00 #01c0ff" in out
    assert "20261128T000000Z" not in out  # not the long file name


def test_a_long_label_is_cut_for_display(tmp_path, capsys):
    a = dump_report(make_report("a" * 300, 0.1, repeats=3), tmp_path / "a.json")
    b = dump_report(make_report("b", 0.1, seed=1, repeats=3), tmp_path / "b.json")
    code, out, _ = run_cli(capsys, "compare", a, b, "--width", 80)
    assert code == 0 and "a" * 23 + "…" in out and "a" * 30 not in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_the_dataframe_has_the_declared_figures_with_units(gen_pair):
    import bench

    frame = bench.load_reports([str(p) for p in gen_pair])
    assert {"ttft_s.median", "ttft_s.p99", "request_latency_s.median", "speedup", "verdict"} <= set(frame.columns)
    assert frame.attrs["units"]["blender-generate"]["ttft_s.p99"] == "s"
    assert frame["ttft_s.median"].iloc[0] == pytest.approx(0.0123)
    assert str(frame["created_at"].dtype).startswith("datetime64")


def test_the_run_summary_fits_80_columns_and_names_every_figure():
    from bench.render.summary import run_summary

    report = generation_report("x", 0.1, repeats=3)
    screen = Screen(width=80, record=True, file=open("/dev/null", "w"))
    screen.print(run_summary(report, screen))
    text = screen.console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for label in ("TTFT p50", "TTFT p99", "request p50", "request p99", "per-token p50", "decode tok/s"):
        assert label in text
    assert "12.0 ms" in text  # TTFT p50


def _chromium():
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="Chromium not installed (apt-get install chromium); .ci/run installs it")
def test_the_page_shows_latency_warnings_under_their_workload_and_a_legend(tmp_path, capsys):
    """What a reader sees once plotly has drawn: the DOM after scripts ran, at 800 px wide."""
    import re
    import subprocess

    pytest.importorskip("plotly")
    a = dump_report(generation_report("gpu-a", 0.10, ttft_s=0.0123, repeats=3), tmp_path / "a.json")
    b = dump_report(generation_report("gpu-b", 0.05, ttft_s=0.0061, seed=1, repeats=3,
                                      warnings=[{"code": "noisy", "message": "step times vary (CV 9% > 5%)"}]),
                    tmp_path / "b.json")
    f = dump_report(make_report("ft", 0.1, repeats=3), tmp_path / "f.json")
    page = tmp_path / "r.html"
    code, _, err = run_cli(capsys, "compare", a, b, f, "--html", page)
    assert code == 0, err
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000", "--window-size=800,3000"]
    dom = subprocess.run([_chromium(), *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=900).stdout
    gen = dom[dom.index("id=\"wl-blender-generate\""):dom.index("id=\"wl-blender-finetune\"")]
    table = gen[gen.index("<table"):gen.index("</table>")]
    for label in ("TTFT p50", "TTFT p99", "request p99", "vs baseline"):
        assert f"<th>{label}</th>" in table, label
    assert "12.3 ms" in table and "6.1 ms" in table
    notes = gen[gen.index("class=\"banner\""):]
    assert re.search(r"<dt>gpu-b</dt><dd><ul>.*noisy: step times vary", notes), "the warning is not under its run"
    assert "noisy" not in dom[dom.index("id=\"wl-blender-finetune\""):dom.index("id=\"telemetry\"")]
    legend = re.findall(r'class="legendtext"[^>]*>([^<]+)<', gen)
    assert "baseline" in legend and "comparable" in legend, legend  # drawn by plotly, not only declared
