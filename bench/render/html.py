"""One self-contained HTML file (plotly.js embedded, no CDN).

Per workload: the comparison table (the terminal's columns: every declared figure), throughput with
its 95 % interval and the speedups (each chart with a legend), and the notes under it, grouped by
run. Then scaling, telemetry over time per report (device utilization, power, memory and host CPU
panels where sampled, the phases shaded and labelled), and what differs between the environments.
The layout holds from 800 px: a table too wide for the window turns to one column per run, as the
terminal's does, and charts resize. Every string
from a report or a tool is escaped before it reaches the page or a chart."""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone

from bench.core.text import MAX_SHOWN, terminal_safe
from bench.model.keys import keys_of
from bench.render import words
from bench.render.compare_view import ALWAYS_SHOWN, compare_cells, run_notes
from bench.render.format import DASH, NOTE_CHARS, ms

PHASES = {"setup": ("set-up", "rgba(120,120,120,0.16)"), "warmup": ("warm-up", "rgba(255,165,0,0.20)"),
          "measure": ("measured", "rgba(46,139,87,0.16)"), "verify": ("verify", "rgba(65,105,225,0.10)")}
# (title, metric, role of the sources it is drawn for, scale): keys come from bench/model/keys.py
TELEMETRY_PANELS = [("device utilization %", "util_percent", "accelerator", 1),
                    ("device power W", "power_w", "accelerator", 1),
                    ("device memory GiB", "mem_used_bytes", "accelerator", 2**30),
                    ("device temperature °C", "temp_c", "accelerator", 1),
                    ("host CPU % (process tree)", "cpu_percent", "host", 1)]
COLOURS = {"baseline": "#1f4e79", "comparable": "#2e8b57", "not comparable": "#b0b0b0",
           "forced": "#c77c2e",  # not the same workload, compared with --force: hatched
           "verdict": "#4169e1", "inconclusive or no verdict": "#9aa9d6"}
MAX_POINTS = 5000  # per telemetry line
MAX_BAND_LABELS = 24  # more measured spans than this in one chart: the colour key alone names them


def esc(value, limit: int = MAX_SHOWN) -> str:
    """HTML text: escaped, cut at 500 characters (a note of ours: NOTE_CHARS), control and
    bidi-override characters shown as escapes (a label must not reorder the text around it)."""
    return html.escape(terminal_safe(DASH if value is None else value, limit), quote=True)


def esc_chart(value) -> str:
    """For plotly text: <, > and & become entities (plotly shows those as text); quotes stay, since
    the figure JSON escapes them and plotly would print &quot; literally."""
    return html.escape(terminal_safe(DASH if value is None else value, 200), quote=False)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _fig_html(fig, div_id: str) -> str:
    import plotly.io as pio

    fig.update_layout(autosize=True, legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
                      margin={"t": 40, "r": 10, "l": 60})
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id, default_width="100%",
                       config={"displaylogo": False, "responsive": True})


def error_bars(values, lows, highs) -> dict:
    """Plotly's asymmetric error bars of values with their interval (none where an end is unknown)."""
    return {"type": "data", "symmetric": False,
            "array": [hi - v if hi is not None and v is not None else 0 for v, hi in zip(values, highs, strict=True)],
            "arrayminus": [v - lo if lo is not None and v is not None else 0
                           for v, lo in zip(values, lows, strict=True)]}


def _kind(row) -> str:
    if row.baseline:
        return "baseline"
    return "comparable" if row.comparable else "forced" if row.forced else "not comparable"


def _bar(kind: str, labels: list[str], values: list, lows: list, highs: list, escaped: bool = False):
    """One legend entry's bars with their intervals, in its colour (labels escaped here unless they are)."""
    import plotly.graph_objects as go

    return go.Bar(name=kind, x=labels if escaped else [esc_chart(x) for x in labels], y=values, marker_color=COLOURS[kind],
                  error_y=error_bars(values, lows, highs))


def _groups(comp) -> list[tuple[str, list]]:
    """Runs that may share an axis: the baseline with the runs comparable to it (and, marked, those
    --force compared anyway), then each set of runs that differ from it in the same fields."""
    main = [r for r in comp.rows if r.baseline or r.comparable or r.forced]
    apart: dict[tuple, list] = {}
    for r in comp.rows:
        if r not in main:
            apart.setdefault(tuple(r.differences), []).append(r)
    return [("", main)] + [(f"not comparable: {len(diff)} field{'s' if len(diff) != 1 else ''}" if diff
                            else "failed", rows) for diff, rows in apart.items()]


def throughput_figure(comp):
    """One bar per run with its 95 % interval. Runs that are not comparable with the baseline never
    share its axis: each set of them gets its own panel, titled with what differs (a 709 against a
    29 samples/s bar of another model and task would read as "24x faster")."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    groups = _groups(comp)
    titles = [esc_chart(t) or "baseline and comparable" for t, _ in groups] if len(groups) > 1 else None
    widths = [len(rows) + 1 for _, rows in groups]
    fig = make_subplots(rows=1, cols=len(groups), subplot_titles=titles, column_widths=widths,
                        horizontal_spacing=0.12) if len(groups) > 1 else go.Figure()
    legend = set()
    for col, (_, rows) in enumerate(groups, start=1):
        for kind in ("baseline", "comparable", "forced", "not comparable"):
            sel = [r for r in rows if _kind(r) == kind]
            if not sel:
                continue
            bar = _bar(kind, [f"{esc_chart(r.run.name)}<br>{esc_chart(r.run.device)}" for r in sel],
                       [r.lead.value for r in sel], [r.lead.ci_low for r in sel], [r.lead.ci_high for r in sel], True)
            bar.update(showlegend=kind not in legend, legendgroup=kind)
            legend.add(kind)
            if kind == "forced":
                bar.update(marker_pattern_shape="/")
            fig.add_trace(bar, **({"row": 1, "col": col} if len(groups) > 1 else {}))
    fig.update_annotations(font_size=12)
    unit = esc_chart(comp.lead.unit or comp.main_metric)
    fig.update_yaxes(title_text=unit)
    fig.update_layout(height=360, barmode="group", showlegend=True)
    return fig


def speedup_figure(comp):
    """run / baseline with its interval; conclusive verdicts and the rest in the legend."""
    import plotly.graph_objects as go

    rows = [r for r in comp.rows if r.speedup and r.speedup.ratio is not None]
    if not rows:
        return None
    fig = go.Figure()
    for kind, pick in (("verdict", True), ("inconclusive or no verdict", False)):
        sel = [r for r in rows if r.speedup.conclusive is pick]
        if sel:  # a run --force compared although not the same workload: hatched and named so
            bar = _bar(kind, [r.run.name + (" (forced)" if r.forced else "") for r in sel],
                       [r.speedup.ratio for r in sel], [r.speedup.ci_low for r in sel],
                       [r.speedup.ci_high for r in sel])
            fig.add_trace(bar.update(marker_pattern_shape=["/" if r.forced else "" for r in sel]))
    fig.add_hline(y=1.0, line_dash="dash", line_color="black", annotation_text="baseline", annotation_position="top left")
    fig.update_layout(yaxis_title="× baseline", height=320, showlegend=True)
    return fig


def scaling_figure(group):
    """Throughput and scaling efficiency against world size."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    pts = group.points
    x = [p.world_size for p in pts]
    unit = esc_chart(group.unit or group.metric)
    fig = make_subplots(rows=1, cols=2, subplot_titles=[unit, "scaling efficiency"])
    fig.add_trace(go.Scatter(x=x, y=[p.value for p in pts], mode="lines+markers", name=unit,
                             error_y=error_bars([p.value for p in pts], [p.ci_low for p in pts],
                                                [p.ci_high for p in pts])), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=[p.efficiency for p in pts], mode="lines+markers", name="efficiency"), row=1, col=2)
    fig.add_hline(y=1.0, line_dash="dash", row=1, col=2)
    fig.update_xaxes(title_text="world size", type="log", tickvals=x)
    fig.update_layout(height=360)
    return fig


SERVING_CHARTS = {"ttft": ("ttft_p99_s", "ttft_p50_s", "slo_ttft_s", "time to first token (s)"),
                  "tpot": ("tpot_p99_s", None, "slo_tpot_s", "time per output token (s)")}


def serving_figure(curves, figure: str = "ttft"):
    """A latency's p99 (solid) and p50 (dotted, where kept) against offered load, one colour per run, the
    SLO dashed: TTFT always, TPOT where it has an SLO."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    p99, p50, bound, axis = SERVING_CHARTS[figure]
    fig = go.Figure()
    for i, c in enumerate(curves):
        colour = qualitative.Plotly[i % len(qualitative.Plotly)]
        x = [p.qps for p in c.points]
        name = esc_chart(f"{c.run} · {c.device}")
        fig.add_trace(go.Scatter(x=x, y=[getattr(p, p99) for p in c.points], mode="lines+markers",
                                 name=f"{name}: p99", line={"color": colour}))
        if p50:
            fig.add_trace(go.Scatter(x=x, y=[getattr(p, p50) for p in c.points], mode="lines+markers",
                                     name=f"{name}: p50", line={"color": colour, "dash": "dot"}))
    for slo in {getattr(c, bound) for c in curves if getattr(c, bound) is not None}:
        fig.add_hline(y=slo, line_dash="dash", line_color="#c0392b", annotation_text=f"SLO {slo * 1000:g} ms",
                      annotation_position="top left")
    fig.update_layout(xaxis_title="offered load (requests/s)", yaxis_title=axis, height=380, showlegend=True)
    return fig


def telemetry_panels(report) -> list[tuple[str, list[str], float]]:
    """(title, sample keys, scale) of each panel that has a number to draw."""
    samples, panels = report.telemetry.samples, []
    for title, metric, role, scale in TELEMETRY_PANELS:
        keys = [k for k in keys_of(report.telemetry, metric, role)
                if any(isinstance(s.get(k), int | float) for s in samples)]
        if keys:
            panels.append((title, keys, scale))
    return panels


def shade_phases(fig, phases) -> None:
    """Each phase shaded; each measured span labelled with its workload and repeat (unless too many)."""
    measured = [p for p in phases if p.phase == "measure"]
    for ph in phases:
        label = ""
        if ph.phase == "measure" and len(measured) <= MAX_BAND_LABELS:
            label = esc_chart(f"{ph.workload} #{(ph.repeat or 0) + 1}")
        fig.add_vrect(x0=ph.start_s, x1=ph.end_s, fillcolor=PHASES.get(ph.phase, ("", "rgba(0,0,0,0.05)"))[1],
                      line_width=0, layer="below", row="all", col=1, annotation_text=label,
                      annotation_position="top left", annotation_textangle=-90, annotation_font_size=9)


def telemetry_figure(report):
    """Stacked panels of what was sampled, on the run's clock, with the phases shaded."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    samples, panels = report.telemetry.samples, telemetry_panels(report)
    if not samples or not panels:
        return None
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, subplot_titles=[esc_chart(t) for t, _, _ in panels],
                        vertical_spacing=0.08)
    for i, (_, keys, scale) in enumerate(panels, start=1):
        for k in keys:
            pts = [(s["t"], s[k] / scale) for s in samples if isinstance(s.get(k), (int, float))]
            pts = pts[::-(-len(pts) // MAX_POINTS)]  # a long run's samples thinned evenly: the page stays small
            if pts:
                fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines",
                                         name=esc_chart(k), showlegend=True), row=i, col=1)
    shade_phases(fig, report.telemetry.phases)
    fig.update_layout(height=210 * len(panels) + 60)
    fig.update_xaxes(title_text="seconds since the run started", row=len(panels), col=1)
    return fig


def _table(headers: list[str], rows: list[list], dim: list[bool] | None = None, cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(("<tr class='dim'>" if dim and dim[i] else "<tr>") + "".join(f"<td>{esc(c)}</td>" for c in r)
                   + "</tr>" for i, r in enumerate(rows))
    return f"<div class='scroll {cls}'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


CHAR_PX, CELL_PX = 7.6, 18  # 13 px system-ui text: a character's width at most, and a cell's padding and border
PAGE_PX = 64  # the page's margins and padding, and a scroll bar


def table_px(headers: list[str], rows: list[list[str]]) -> int:
    """How wide a table of these cells lays out (no wrapping): its widest cell per column."""
    widths = [max([len(h)] + [len(str(r[i])) for r in rows]) for i, h in enumerate(headers)]
    return int(sum(w * CHAR_PX + CELL_PX for w in widths))


def summary_table(comp, index: int = 0) -> str:
    """The terminal's comparison table as HTML (same cells, same empty columns left out), laid out as
    the terminal does: one row per run where the page is wide enough for every column, else one
    column per run — chosen by the browser's width (a media query at the wide table's own width), so
    no column that matters sits off-screen behind a sideways scroll."""
    cols, body = compare_cells(comp)
    keep = [i for i in range(len(cols)) if i < ALWAYS_SHOWN or any(cells[i] != DASH for cells, _ in body)]
    headers, rows = [cols[i] for i in keep], [[cells[i] for i in keep] for cells, _ in body]
    dim = [not ok for _, ok in body]
    across = [[h] + [r[i] for r in rows] for i, h in enumerate(headers)][1:]
    wide, tall = f"wide{index}", f"tall{index}"
    breakpoint = table_px(headers, rows) + PAGE_PX
    style = (f"<style>.{tall}{{display:none}}@media(max-width:{breakpoint - 1}px){{.{wide}{{display:none}}"
             f".{tall}{{display:block}}}}</style>")
    return style + _table(headers, rows, dim, wide) + _table([""] + [r[0] for r in rows], across, None, tall)


def notes_box(comp) -> str:
    """The notes of one workload, under their run."""
    by_run: dict[str, list[str]] = {}
    for run, text in run_notes(comp):
        by_run.setdefault(run, []).append(text)
    if not by_run:
        return ""
    items = "".join(f"<dt>{esc(run)}</dt><dd><ul>{''.join(f'<li>{esc(t, NOTE_CHARS)}</li>' for t in dict.fromkeys(texts))}"
                    f"</ul></dd>" for run, texts in by_run.items())
    return (f"<div class='banner' data-workload='{esc(comp.title)}'><b>Read before trusting these numbers "
            f"({esc(comp.title)})</b><dl>{items}</dl></div>")


PHASE_KEY = "".join(f"<span class='key' style='background:{colour}'></span>{name} " for name, colour in PHASES.values())

CSS = """body{font-family:system-ui,sans-serif;margin:16px auto;padding:0 16px;max-width:1400px;min-width:0;
color:#222}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px;
text-align:left;white-space:nowrap}th{background:#f3f3f3;position:sticky;top:0}tr.dim td{color:#888}
.scroll{overflow-x:auto;max-width:100%}.banner{background:#fff8ec;border:1px solid #f0a030;padding:8px 14px;
margin:12px 0;font-size:14px}.banner dt{font-weight:600;margin-top:6px}.banner dd{margin:0 0 0 4px}
.banner ul{margin:2px 0;padding-left:20px}h2{margin-top:36px;border-bottom:1px solid #ddd}h3{font-size:15px;
margin:14px 0 0}.charts{display:grid;grid-template-columns:1fr;gap:8px}@media(min-width:1100px){
.charts{grid-template-columns:1fr 1fr}}.meta{color:#555;font-size:13px}.key{display:inline-block;width:14px;
height:10px;margin:0 4px 0 10px;border:1px solid #aaa}nav a{margin-right:12px}"""


class Page:
    """The page's parts in order; each chart numbered for its own div."""

    def __init__(self):
        self.parts: list[str] = []
        self.charts = 0

    def add(self, html_text: str) -> None:
        self.parts.append(html_text)

    def chart(self, title: str, fig) -> None:
        self.charts += 1
        self.parts.append(f"<div class='chart'><h3>{esc(title)}</h3>{_fig_html(fig, f'chart{self.charts}')}</div>")


def lead_name(comp) -> str:
    """The lead figure and its unit, once where they are the same words (`samples/s`)."""
    label, unit = comp.lead.label.replace(" [95% CI]", ""), comp.lead.unit
    return label if not unit or unit == label else f"{label} ({unit})"


def workload_section(page: Page, comp, index: int = 0) -> None:
    page.add(f"<section class='workload' id='wl-{slug(comp.title)}'><h2>{esc(comp.title)}</h2>"
             f"<p class='meta'>{esc(lead_name(comp))} · baseline {esc(words.display(comp.baseline))}</p>")
    page.add(summary_table(comp, index))
    page.add(notes_box(comp))
    page.add("<div class='charts'>")
    page.chart(f"{comp.lead.label.replace(' [95% CI]', '')} with its 95 % interval", throughput_figure(comp))
    fig = speedup_figure(comp)
    if fig is not None:
        page.chart(f"speedup vs {comp.baseline.name}", fig)
    page.add("</div></section>")


def decision_section(page: Page, decision) -> None:
    """A study's decision: the table of each box's answers, and the verdicts across boxes."""
    from bench.render.decision_view import decision_cells, verdict_text

    headers, rows = decision_cells(decision)
    title = f"{decision.study}: {decision.question}" if decision.question else decision.study
    page.add(f"<section class='decision' id='decision-{slug(decision.study)}'><h2>{esc(title)}</h2>")
    page.add(_table(headers, rows))
    if decision.verdicts:
        items = "".join(f"<li>{esc(verdict_text(v), NOTE_CHARS)}</li>" for v in decision.verdicts)
        page.add(f"<ul class='verdicts'>{items}</ul>")
    page.add("</section>")


def serving_section(page: Page, curves) -> None:
    """What a buyer asks first of serving: the capacity at the SLOs, then latency against offered load."""
    page.add("<h2 id='serving'>Serving: capacity at the SLOs, and latency against offered load</h2>")
    page.add(_table(["run", "device", "served by", "SLO TTFT", "SLO TPOT", "capacity at the SLO"],
                    [[c.run, c.device, words.served_text(c.served), ms(c.slo_ttft_s), ms(c.slo_tpot_s),
                      words.capacity_line(c).partition(": ")[2] or words.capacity_text(c.capacity)] for c in curves]))
    page.chart("time to first token against offered load", serving_figure(curves))
    if any(c.slo_tpot_s is not None for c in curves):
        page.chart("time per output token against offered load", serving_figure(curves, "tpot"))


def telemetry_section(page: Page, sources) -> None:
    page.add(f"<h2 id='telemetry'>Telemetry over time</h2><p class='meta'>Phases: {PHASE_KEY}</p>")
    for source in sources:
        fig = telemetry_figure(source.report)
        name = source.report.label or source.path
        if fig is None:
            page.add(f"<p>{esc(name)}: no telemetry samples in this report.</p>")
        else:
            page.chart(name, fig)


def environment_section(page: Page, diff) -> None:
    page.add("<h2 id='environment'>What differs between the environments</h2>")
    page.add(_table(["field"] + diff.files, [[k] + vals for k, vals in diff.rows]) if diff.rows
             else "<p>Nothing differs.</p>")


_RAW_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def js_safe(script: str) -> str:
    """A script without raw control characters (plotly.js (plotly 7.1) holds two, SUB and SOH, inside string
    literals, where the \\xNN escape written instead stands for the same character): the page can go
    to a terminal (`--html -`) without a byte it would act on."""
    return _RAW_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", script)


def render(comparison) -> str:
    """The whole page as a string."""
    from plotly.offline import get_plotlyjs

    page = Page()
    serving = "<a href='#serving'>serving: capacity and latency</a>" if comparison.serving else ""
    nav = serving + "".join(f"<a href='#wl-{slug(c.title)}'>{esc(c.title)}</a>" for c in comparison)
    first = "".join(f"<a href='#decision-{slug(d.study)}'>decision: {esc(d.study)}</a>" for d in comparison.decisions)
    page.add(f"<nav>{first}{nav}<a href='#telemetry'>telemetry</a><a href='#environment'>environment</a></nav>")
    for d in comparison.decisions:  # a study's page opens with its answer
        decision_section(page, d)
    if comparison.serving:  # then a page of serving reports with the capacity and latency against load
        serving_section(page, comparison.serving)
    for i, comp in enumerate(comparison):
        workload_section(page, comp, i)
    for g in comparison.scaling:
        page.add(f"<h2>{esc(g.workload)}: scaling with world size</h2>")
        page.chart("throughput and efficiency", scaling_figure(g))
        if g.notes:
            items = "".join(f"<li>{esc(words.sentence(n))}</li>" for n in g.notes)
            page.add(f"<div class='banner'><b>Read before trusting this scaling</b><ul>{items}</ul></div>")
    telemetry_section(page, comparison.sources)
    environment_section(page, comparison.environment)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'><title>bench compare</title>"
            f"<style>{CSS}</style><script type='text/javascript'>{js_safe(get_plotlyjs())}</script></head><body>"
            f"<h1>bench compare</h1><p class='meta'>{len(comparison.sources)} report(s), generated {esc(stamp)}.</p>"
            + "".join(page.parts) + "</body></html>")
