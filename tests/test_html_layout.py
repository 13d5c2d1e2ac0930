"""The HTML page invites no wrong reading: runs that are not comparable never share an axis, and at
1400 px a table shows every column that matters without sideways scrolling."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from reportgen import generation_report

from bench.analysis.compare import compare
from bench.model.io import load_report

pytest.importorskip("plotly")

from bench.render import html

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = [str(p) for p in sorted((ROOT / "reports" / "reference").glob("*.json"))]


def axes(fig) -> dict[str, str]:
    """Each bar's run -> the y axis it is drawn on."""
    return {x.replace("<br>", " · "): t.yaxis or "y" for t in fig.data for x in t.x}


def test_runs_that_are_not_comparable_never_share_an_axis():
    [comp] = compare([(p, load_report(p)) for p in REFERENCE])
    on = axes(html.throughput_figure(comp))
    p100 = next(v for k, v in on.items() if "P100" in k)
    dl1 = next(v for k, v in on.items() if "DL1" in k)
    assert p100 != dl1  # 709 and 29 samples/s: two panels, two scales
    titles = [a.text for a in html.throughput_figure(comp).layout.annotations]
    assert "not comparable: 9 fields" in titles  # marked as such: the notes name them


def test_forced_runs_share_the_axis_hatched():
    [comp] = compare([(p, load_report(p)) for p in REFERENCE], force=True)
    fig = html.throughput_figure(comp)
    assert len(set(axes(fig).values())) == 1
    forced = [t for t in fig.data if t.name == "forced"]
    assert forced and forced[0].marker.pattern.shape == "/"


def wide_runs():
    warn = [{"code": "noisy", "message": "CV 9 %"}, {"code": "not_steady", "message": "x"},
            {"code": "contended", "message": "y"}]
    runs = [generation_report(f"a-long-run-label-{i}", 0.1 + i / 100, seed=i, repeats=3, warnings=warn,
                              util=50.0, peak_mem=2**30) for i in range(3)]
    return compare([(f"{r.label}.json", r) for r in runs])


def visible_at(page: str, index: int, width: int) -> str:
    """The table of workload `index` that a browser `width` px wide shows, by the page's own CSS."""
    m = re.search(rf"@media\(max-width:(\d+)px\)\{{\.wide{index}\{{display:none\}}", page)
    assert m, "no layout for narrow windows"
    shown = "tall" if width <= int(m.group(1)) else "wide"
    return re.search(rf"<div class='scroll {shown}{index}'>(.*?)</div>", page).group(1)


def test_at_1400_px_every_column_that_matters_is_on_screen():
    c = wide_runs()
    page = html.summary_table(c.workloads[0], 0)
    for width in (1400, 800):
        table = visible_at(page, 0, width)
        rows = [re.findall(r"<t[hd]>(.*?)</t[hd]>", r) for r in re.findall(r"<tr[^>]*>(.*?)</tr>", table)]
        cells = {x for r in rows for x in r}
        assert {"TTFT p99", "warnings", "contended, noisy, not_steady"} <= cells
        if width == 1400:  # the wide table would scroll there: one column per run instead, and no scroll
            assert "<th>TTFT p99</th>" not in table
            assert html.table_px(rows[0], rows[1:]) + html.PAGE_PX <= width


def test_a_table_that_fits_stays_one_row_per_run():
    short = compare([(f"{n}.json", generation_report(n, 0.1, seed=i, repeats=3)) for i, n in enumerate("ab")])
    page = html.summary_table(short.workloads[0], 0)
    assert "<th>TTFT p99</th>" in visible_at(page, 0, 1400)  # the headers are the columns: the wide layout
