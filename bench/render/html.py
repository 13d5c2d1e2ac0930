"""One self-contained HTML file (plotly.js embedded, no CDN): throughput with CIs, speedups,
telemetry over time with the phases shaded, what differs between environments, and warnings.
Every string that came from a report or a tool is escaped before it reaches the page or a chart."""

from __future__ import annotations

import html
from datetime import datetime, timezone

from bench.analysis.compare import scaling_groups
from bench.analysis.table import record
from bench.core.text import clip
from bench.model.fields import encode
from bench.model.keys import keys_of
from bench.render.compare_view import ALWAYS_SHOWN, compare_cells, compare_notes
from bench.render.format import DASH

PHASE_COLOURS = {"setup": "rgba(150,150,150,0.18)", "warmup": "rgba(255,165,0,0.18)", "measure": "rgba(46,139,87,0.12)"}
# (title, metric, role of the sources it is drawn for, scale): keys come from bench/model/keys.py
TELEMETRY_PANELS = [("device utilization %", "util_percent", "accelerator", 1),
                    ("device memory GiB", "mem_used_bytes", "accelerator", 2**30),
                    ("device power W", "power_w", "accelerator", 1),
                    ("device temperature °C", "temp_c", "accelerator", 1),
                    ("host CPU % (process tree)", "cpu_percent", "host", 1)]


MAX_POINTS = 5000  # per telemetry line


def esc(value) -> str:
    return html.escape(clip(DASH if value is None else str(value)), quote=True)


def esc_chart(value) -> str:
    """For plotly text: <, > and & become entities (plotly shows those as text); quotes stay, since
    the figure JSON escapes them and plotly would print &quot; literally."""
    return html.escape(clip(DASH if value is None else str(value), 200), quote=False)


def _fig_html(fig, div_id: str) -> str:
    import plotly.io as pio

    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def throughput_figure(comp):
    import plotly.graph_objects as go

    m = comp.main_metric
    vals = [record(r, comp) for r in comp.rows]
    y = [v[m] for v in vals]
    err_hi = [(v[f"{m}_ci_high"] - v[m]) if v[f"{m}_ci_high"] is not None else 0 for v in vals]
    err_lo = [(v[m] - v[f"{m}_ci_low"]) if v[f"{m}_ci_low"] is not None else 0 for v in vals]
    names = [esc_chart(f"{v['run']} · {v['device']}") for v in vals]
    colours = ["#2e8b57" if v["comparable"] else "#b0b0b0" for v in vals]
    fig = go.Figure(go.Bar(x=names, y=y, marker_color=colours,
                           error_y={"type": "data", "symmetric": False, "array": err_hi, "arrayminus": err_lo}))
    fig.update_layout(title=esc_chart(f"{comp.workload}: {comp.main_metric} (95% CI; grey = not comparable)"),
                      yaxis_title=esc_chart(comp.main_metric), height=380, margin={"t": 60, "b": 80})
    return fig


def speedup_figure(comp):
    import plotly.graph_objects as go

    rows = [r for r in comp.rows if r.speedup and r.speedup.ratio is not None]
    if not rows:
        return None
    x = [esc_chart(r.run.name) for r in rows]
    s = [r.speedup for r in rows]
    fig = go.Figure(go.Bar(x=x, y=[v.ratio for v in s], marker_color=["#4169e1" if v.conclusive else "#9aa9d6" for v in s],
                           error_y={"type": "data", "symmetric": False,
                                    "array": [(v.ci_high - v.ratio) if v.ci_high else 0 for v in s],
                                    "arrayminus": [(v.ratio - v.ci_low) if v.ci_low else 0 for v in s]}))
    fig.add_hline(y=1.0, line_dash="dash", line_color="black")
    fig.update_layout(title=esc_chart(f"{comp.workload}: speedup vs {comp.baseline.name} (pale = no verdict)"),
                      yaxis_title="x baseline", height=340, margin={"t": 60, "b": 80})
    return fig


def scaling_figure(group: dict):
    """Throughput and scaling efficiency against world size."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    pts = group["points"]
    x = [p["world_size"] for p in pts]
    fig = make_subplots(rows=1, cols=2, subplot_titles=[esc_chart(group["metric"]), "scaling efficiency"])
    fig.add_trace(go.Scatter(x=x, y=[p["value"] for p in pts], mode="lines+markers", name=esc_chart(group["metric"]),
                             error_y={"type": "data", "symmetric": False,
                                      "array": [(p["ci_high"] - p["value"]) if p["ci_high"] else 0 for p in pts],
                                      "arrayminus": [(p["value"] - p["ci_low"]) if p["ci_low"] else 0 for p in pts]}),
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=[p["efficiency"] for p in pts], mode="lines+markers", name="efficiency"), row=1, col=2)
    fig.add_hline(y=1.0, line_dash="dash", row=1, col=2)
    fig.update_xaxes(title_text="world size", type="log", tickvals=x)
    fig.update_layout(title=esc_chart(f"{group['workload']}: scaling"), height=360)
    return fig


def telemetry_figure(name: str, report):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    samples = report.telemetry.samples
    panels = []
    for title, metric, role, scale in TELEMETRY_PANELS:
        keys = [k for k in keys_of(report.telemetry, metric, role) if any(isinstance(s.get(k), int | float)
                                                                          for s in samples)]
        if keys:
            panels.append((title, keys, scale))
    if not samples or not panels:
        return None
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, subplot_titles=[esc_chart(t) for t, _, _ in panels],
                        vertical_spacing=0.06)
    for i, (_, keys, scale) in enumerate(panels, start=1):
        for k in keys:
            pts = [(s["t"], s[k] / scale) for s in samples if isinstance(s.get(k), (int, float))]
            pts = pts[::-(-len(pts) // MAX_POINTS)]  # a long run's samples thinned evenly: the page stays small
            if pts:
                fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines",
                                         name=esc_chart(k), showlegend=True), row=i, col=1)
    for ph in report.telemetry.phases:
        fig.add_vrect(x0=ph.start_s, x1=ph.end_s, fillcolor=PHASE_COLOURS.get(ph.phase, "rgba(0,0,0,0.05)"),
                      line_width=0, layer="below", row="all", col=1)
    fig.update_layout(title=esc_chart(f"telemetry: {name} (grey setup, orange warm-up, green measured)"),
                      height=200 * len(panels) + 80, margin={"t": 70})
    fig.update_xaxes(title_text="seconds since the run started", row=len(panels), col=1)
    return fig


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else k, v, out)
    else:
        out[prefix] = value


def environment_diff(loaded) -> tuple[list[str], list[tuple[str, list]]]:
    """Keys of the environment whose values differ between the reports."""
    flat = []
    for _, report in loaded:
        f: dict = {}
        _flatten("", encode(report.environment), f)
        flat.append(f)
    keys = sorted({k for f in flat for k in f})
    rows = [(k, [f.get(k) for f in flat]) for k in keys
            if len({repr(f.get(k)) for f in flat}) > 1 and not k.endswith("boot_time")]
    return [p for p, _ in loaded], rows


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def summary_table(comp) -> str:
    """The terminal's comparison table as HTML (same cells, same empty columns left out)."""
    cols, body = compare_cells(comp)
    keep = [i for i in range(len(cols)) if i < ALWAYS_SHOWN or any(cells[i] != DASH for cells, _ in body)]
    return ('<div class="scroll">' + _table([cols[i] for i in keep], [[cells[i] for i in keep] for cells, _ in body])
            + "</div>")


CSS = """body{font-family:system-ui,sans-serif;margin:24px;max-width:1400px}table{border-collapse:collapse;
margin:8px 0 16px}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:left}
th{background:#f3f3f3}.banner{background:#fff4e5;border:1px solid #f0a030;padding:10px 14px;margin:12px 0}
.banner li{margin:3px 0}h2{margin-top:36px;border-bottom:1px solid #ddd}.scroll{overflow-x:auto}"""


def render(comparisons, loaded) -> str:
    """The whole page as a string."""
    from plotly.offline import get_plotlyjs

    extra_figures = [(f"{g['workload']}: scaling with world size", scaling_figure(g)) for g in scaling_groups(loaded)]
    parts, n = [], 0
    notes = [note for comp in comparisons for note in compare_notes(comp)]
    if notes:
        items = "".join(f"<li>{esc(x)}</li>" for x in dict.fromkeys(notes))
        parts.append(f'<div class="banner" id="warnings"><b>Read before trusting these numbers</b><ul>{items}</ul></div>')
    for comp in comparisons:
        parts.append(f"<h2>{esc(comp.workload)}</h2>{summary_table(comp)}")
        for fig in (throughput_figure(comp), speedup_figure(comp)):
            if fig is not None:
                n += 1
                parts.append(_fig_html(fig, f"chart{n}"))
    for title, fig in extra_figures:
        n += 1
        parts.append(f"<h2>{esc(title)}</h2>" + _fig_html(fig, f"chart{n}"))
    parts.append("<h2>Telemetry over time</h2>")
    for path, report in loaded:
        fig = telemetry_figure(report.label or path, report)
        if fig is None:
            parts.append(f"<p>{esc(report.label or path)}: no telemetry samples in this report.</p>")
        else:
            n += 1
            parts.append(_fig_html(fig, f"chart{n}"))
    files, diff = environment_diff(loaded)
    parts.append("<h2>What differs between the environments</h2>")
    parts.append(_table(["field"] + files, [[k] + vals for k, vals in diff]) if diff else "<p>Nothing differs.</p>")
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>bench compare</title>"
            f"<style>{CSS}</style><script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
            f"<h1>bench compare</h1><p>{len(loaded)} report(s), generated {esc(stamp)}.</p>"
            + "".join(parts) + "</body></html>")
