"""What every output of a comparison shows, decided once: the columns and each run's values.

`columns()` lists the columns of one workload's comparison: the run, its device, the figure the
workload leads with (with its 95 % interval), the speedup and verdict against the baseline, the
cost where prices were given, the figures the workload declares (`Result.figures`: TTFT, request
latency, recall, the ParlAI columns, ...), then the figures every workload has (step time, memory,
utilization, power, energy, MFU) and the warnings. `figures()` gives one run's raw values under
the same keys. The terminal, Markdown, HTML, CSV, JSON and the DataFrame all show these: a figure
added to a workload's declaration appears in all of them.

Keys are stable: a declared figure's key is its place in the result without the `metrics.` or
`workload_metrics.` prefix (`ttft_s.median`, `parlai.exps`), the lead figure's is the metric name
(`samples_per_s`). Values are in the unit the column names (seconds, bytes, a fraction for MFU),
null where unknown.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

from bench.analysis.comparison import Column, Costing, Estimate
from bench.analysis.cost import unit_key
from bench.model.derive import figure_key, figure_value, lead_estimate
from bench.model.report import FigureSpec
from bench.serve.maths.metrics import percentile_interval

COMMON = (
    Column(key="step_time_p50_s", label="step p50", unit="s", better="lower"),
    Column(key="step_time_p99_s", label="step p99", unit="s", better="lower"),
    Column(key="peak_mem_bytes", label="peak mem", unit="bytes", better="lower"),
    Column(key="device_util_percent", label="util", unit="%", kind="util"),
    Column(key="device_power_w", label="power", unit="W"),
    Column(key="energy_per_sample_j", label="J/sample", unit="J", better="lower"),
    Column(key="mfu", label="MFU", unit="fraction", better="higher"),
    Column(key="warnings", label="warnings", kind="text"),
)
SERVED = (Column(key="served_by", label="served by", kind="text"),
          Column(key="static_shapes", label="static shapes", kind="text"))
COST_LABELS = {"usd_per_1k_requests": "USD/1k req", "usd_per_1m_tokens": "USD/1M tok",
               "usd_per_1k_samples": "USD/1k samples"}


def number(value) -> float | None:
    """A finite real number as float; anything else (text, a flag, NaN, None) as None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value) if abs(value) < 1e308 else math.inf
    return value if math.isfinite(value) else None


def figure_specs(runs) -> list[FigureSpec]:
    """The figures the runs of this workload declare (the baseline first), in declaration order, each once."""
    seen: dict[str, FigureSpec] = {}
    for run in runs:
        for spec in run.figures:
            seen.setdefault(spec.key, spec)
    return list(seen.values())


def lead_column(lead: FigureSpec) -> Column:
    """The lead figure's column: a throughput, or a declared figure (a serving result's latency at its rate)."""
    return Column(key=figure_key(lead.key), label=f"{lead.label} [95% CI]", unit=lead.unit, kind="interval",
                  always=True, better=lead.better if lead.better != "none" else "higher")


def serves(run) -> bool:
    return "offered_qps" in (run.result.workload_metrics or {})


def cost_columns(metric: str, serving: bool, costing: Costing | None) -> list[Column]:
    """The cost of a unit of output, where the user gave prices (and a kWh price)."""
    if costing is None:
        return []
    key, _ = unit_key(metric, serving)
    label = COST_LABELS[key]
    cols = []
    if costing.prices:
        cols.append(Column(key=key, label=f"{label} [95% CI]", unit="USD", kind="interval", better="lower"))
    if costing.kwh_usd is not None:
        cols.append(Column(key=f"energy_{key}", label=f"energy {label}", unit="USD", better="lower"))
    return cols


def columns(runs, costing: Costing | None) -> list[Column]:
    """Every column of one workload's table (runs: the baseline first, whose lead leads)."""
    specs = figure_specs(runs)
    lead = lead_column(runs[0].lead)
    metric = runs[0].result.main_metric or "samples_per_s"  # the throughput a cost is figured from
    declared = [Column(key=figure_key(s.key), label=s.label, unit=s.unit, better=s.better) for s in specs
                if figure_key(s.key) != lead.key]
    return [Column(key="run", label="run", kind="text", always=True),
            Column(key="device", label="device", kind="text", always=True), lead,
            Column(key="speedup", label="vs baseline", kind="verdict", always=True),
            *cost_columns(metric, serves(runs[0]), costing), Column(key="repeats", label="reps"),
            *(SERVED if serves(runs[0]) else ()), *declared, *COMMON]


def resolve_in(result, metrics, key: str):
    """A figure's raw value in a result (bench/model/derive.py figure_value)."""
    return figure_value(result.workload_metrics, metrics, key)


# ---- one run's values ----------------------------------------------------------------------------

def lead(run, spec: FigureSpec) -> Estimate:
    """A run's value of a lead figure, with its interval (bench/model/derive.py lead_estimate)."""
    i = lead_estimate(SimpleNamespace(figures=[spec], main_metric=run.result.main_metric,
                                      timing=run.result.timing, workload_metrics=run.result.workload_metrics),
                      run.metrics, lead_interval)
    return Estimate(value=i.value, ci_low=i.ci_low, ci_high=i.ci_high, method=i.method)


def lead_interval(result, spec: FigureSpec):
    """A declared lead's interval, where its raw data make one: a serving percentile's over its requests."""
    return percentile_interval(result.timing.judged, spec.key)


def accelerator_prefixes(run) -> list[str]:
    return [p for p, src in run.report.telemetry.sources.items() if src.role == "accelerator"]


def _accel_stats(run, key: str, stat: str) -> list[float]:
    s = run.result.telemetry_summary.get("measure") or {}
    vals = [getattr(s.get(f"{p}.{key}"), stat, None) for p in accelerator_prefixes(run)]
    return [v for v in vals if v is not None]


def device_utilization(run) -> float | None:
    vals = _accel_stats(run, "util_percent", "mean")
    return sum(vals) / len(vals) if vals else None


def device_utilization_max(run) -> float | None:
    vals = _accel_stats(run, "util_percent", "max")
    return max(vals) if vals else None


def device_power(run) -> float | None:
    vals = _accel_stats(run, "power_w", "mean")
    return sum(vals) if vals else None


def warning_codes(run, mismatch: str | None) -> list[str]:
    return sorted(run.result.codes() | ({"output_mismatch"} if mismatch else set()))


def figures(run, specs: list[FigureSpec]) -> dict:
    """The common figures (and the utilization's max), then every declared figure, by column key;
    the warnings are the row's own field."""
    m, mem, energy = run.metrics, run.result.memory, run.result.energy.device
    st = m.step_time_s
    out = {"step_time_p50_s": st.median if st else None, "step_time_p99_s": st.p99 if st else None,
           "peak_mem_bytes": mem.device_peak_bytes or mem.host_peak_rss_bytes,
           "device_util_percent": device_utilization(run), "device_util_max_percent": device_utilization_max(run),
           "device_power_w": device_power(run), "energy_per_sample_j": energy.per_sample_j if energy else None,
           "mfu": m.mfu.value if m.mfu else None}
    s = run.result.served_by
    if s is not None or serves(run):
        out["served_by"] = " ".join(x for x in (s.engine, s.server) if x) if s else "in-process"
        out["static_shapes"] = s.static_shapes if s else run.result.params.get("static_shapes")
    for spec in specs:
        out.setdefault(figure_key(spec.key), resolve_in(run.result, run.metrics, spec.key))
    return out


def cost_inputs(run, metric: str) -> tuple[tuple, float | None]:
    """((rate, low, high), joules per unit) a run's cost is figured from. An instance is paid while
    it waits for requests: a serving run's cost is at the rate it achieved."""
    if serves(run):
        q = run.result.workload_metrics.get("achieved_qps")  # an interval (a number before it had one)
        rates = (number(getattr(q, "value", q)), number(getattr(q, "ci_low", None)),
                 number(getattr(q, "ci_high", None)))
    else:
        i = run.throughput(metric)
        rates = (i.value, i.ci_low, i.ci_high)
    energy = run.result.energy.device
    per_unit_j = None
    if energy is not None:
        per_unit_j = energy.per_token_j if metric == "tokens_per_s" else energy.per_sample_j
    return rates, per_unit_j
