"""What every output of a comparison shows, decided once: the columns and each run's values.

`columns(comp)` lists the columns of one workload's comparison: the run, its device, the figure the
workload leads with (with its 95 % interval), the speedup and verdict against the baseline, the
figures the workload declares (`Result.figures`: TTFT, request latency, recall, the ParlAI columns,
...), then the figures every workload has (step time, memory, utilization, power, energy, MFU) and
the warnings. `record(row, comp)` gives one run's raw values under the same keys, plus what
identifies it (file, run_id, created_at, params). The terminal, Markdown, HTML, CSV, JSON and the
DataFrame are all made from these two: a figure added to a workload's declaration appears in all
of them.

Keys are stable: a declared figure's key is its place in the result without the `metrics.` or
`workload_metrics.` prefix (`ttft_s.median`, `parlai.exps`), the lead figure's is the metric name
(`samples_per_s`, with `_ci_low` / `_ci_high`). Values are in the unit the column names (seconds,
bytes, a fraction for MFU), null where unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.analysis import cost, verdicts
from bench.analysis.compare import Row, WorkloadComparison, device_power, device_utilization, device_utilization_max
from bench.model.report import FigureSpec, Interval, Summary

FORMAT_VERSION = 1  # of `bench compare --json` (docs/compare-format.md)


@dataclass(frozen=True)
class Column:
    key: str  # the record key: CSV header, JSON key, DataFrame column
    label: str  # the short header people read
    unit: str = ""  # of the raw value: s, bytes, %, fraction, W, J, samples/s, ... ("" for counts and text)
    kind: str = "number"  # text | number | interval | verdict | util
    always: bool = False  # shown even where no run has a value
    better: str = "none"  # higher | lower | none

    @property
    def header(self) -> str:
        """The label, with the unit where the label does not already say it and the cells will not
        (times and sizes are formatted with their unit in each cell)."""
        if self.kind == "interval" or not self.unit or self.unit in self.label or \
                self.unit in ("s", "bytes", "fraction", "%", "W", "J"):
            return self.label
        if self.label.endswith("/s") and self.unit.endswith("/s"):  # "decode tok/s" says it already
            return self.label
        return f"{self.label} ({self.unit})"


COMMON = (
    Column("step_time_p50_s", "step p50", "s", better="lower"),
    Column("step_time_p99_s", "step p99", "s", better="lower"),
    Column("peak_mem_bytes", "peak mem", "bytes", better="lower"),
    Column("device_util_percent", "util", "%", kind="util"),
    Column("device_power_w", "power", "W"),
    Column("energy_per_sample_j", "J/sample", "J", better="lower"),
    Column("mfu", "MFU", "fraction", better="higher"),
    Column("warnings", "warnings", kind="text"),
)
PREFIXES = ("workload_metrics.", "metrics.")


def figure_key(spec_key: str) -> str:
    for prefix in PREFIXES:
        if spec_key.startswith(prefix):
            return spec_key[len(prefix):]
    return spec_key


def figure_specs(comp: WorkloadComparison) -> list[FigureSpec]:
    """The figures the runs of this workload declare, in declaration order, each once."""
    seen: dict[str, FigureSpec] = {}
    for row in [next(r for r in comp.rows if r.baseline), *comp.rows]:
        for spec in row.run.result.figures:
            seen.setdefault(spec.key, spec)
    return list(seen.values())


def lead_column(comp: WorkloadComparison, specs: list[FigureSpec]) -> Column:
    metric = comp.main_metric
    spec = next((s for s in specs if s.lead), None) or next((s for s in specs if s.key == f"metrics.{metric}"), None)
    label = spec.label if spec else metric.replace("_per_s", "/s").replace("_", " ")
    unit = spec.unit if spec else label
    return Column(metric, f"{label} [95% CI]", unit, kind="interval", always=True, better="higher")


def serves(run) -> bool:
    return "offered_qps" in (run.result.workload_metrics or {})


def cost_columns(comp: WorkloadComparison) -> list[Column]:
    """The cost of a unit of output, where the user gave prices (and a kWh price)."""
    if comp.costing is None:
        return []
    key, _, words = cost.unit_of(comp.main_metric, serves(comp.baseline))
    label = words.replace("USD / ", "USD/").replace("requests", "req").replace("tokens", "tok")
    cols = []
    if comp.costing.prices:
        cols.append(Column(key, f"{label} [95% CI]" if not serves(comp.baseline) else label, "USD",
                           kind="interval", better="lower"))
    if comp.costing.kwh_usd is not None:
        cols.append(Column(f"energy_{key}", f"energy {label}", "USD", better="lower"))
    return cols


def columns(comp: WorkloadComparison) -> list[Column]:
    specs = figure_specs(comp)
    lead = lead_column(comp, specs)
    declared = [Column(figure_key(s.key), s.label, s.unit, better=s.better) for s in specs
                if figure_key(s.key) != lead.key]
    return [Column("run", "run", kind="text", always=True), Column("device", "device", kind="text", always=True),
            lead, Column("speedup", "vs baseline", kind="verdict", always=True), *cost_columns(comp),
            Column("repeats", "reps"), *declared, *COMMON]


def resolve(row: Row, key: str):
    return resolve_in(row.run.result, row.run.metrics, key)


def resolve_in(result, metrics, key: str):
    """A figure's raw value: `metrics.<name>[.<stat>]` from the (recomputed) metrics,
    `workload_metrics.<name>[.<stat>]` from the workload's own (a Summary's stat, an Interval's value)."""
    if key.startswith("metrics."):
        path = key[len("metrics."):].split(".")
        value = getattr(metrics, path[0], None)
        return _pick(value, path[1] if len(path) > 1 else None)
    name = figure_key(key)
    wm = result.workload_metrics
    if name in wm:
        return _pick(wm[name], None)
    head, _, stat = name.rpartition(".")
    if head in wm:
        return _pick(wm[head], stat)
    return None


def _pick(value, stat: str | None):
    if isinstance(value, Interval):
        return value.value if stat in (None, "value") else getattr(value, stat, None)
    if isinstance(value, Summary):
        return getattr(value, stat or "median", None)
    if hasattr(value, "__dataclass_fields__"):
        return getattr(value, stat, None) if stat else None
    return value


def record(row: Row, comp: WorkloadComparison, cols: list[Column] | None = None) -> dict:
    """One run's values under the column keys, and what identifies the run."""
    r, m = row.run, row.run.metrics
    cols = cols or columns(comp)
    lead = getattr(m, comp.main_metric, None) or Interval(None)
    sp = row.speedup
    st, mem, energy = m.step_time_s, r.result.memory, r.result.energy.device
    out = {
        "workload": r.workload, "variant": r.variant, "run": r.name, "label": r.report.label, "file": r.path, "run_id": r.report.run_id,
        "created_at": r.report.created_at, "status": r.result.status, "origin": r.report.origin,
        "device": r.device_label, "backend": r.device.get("backend"), "host": r.report.environment.host.get("hostname"),
        "metric": comp.main_metric,
        comp.main_metric: lead.value, f"{comp.main_metric}_ci_low": lead.ci_low,
        f"{comp.main_metric}_ci_high": lead.ci_high, f"{comp.main_metric}_method": lead.method,
        "speedup": sp.ratio if sp else None, "speedup_ci_low": sp.ci_low if sp else None,
        "speedup_ci_high": sp.ci_high if sp else None, "speedup_method": sp.method if sp else None,
        "verdict": row.code, "verdict_short": verdicts.short(row.code, sp), "verdict_text": row.verdict,
        "comparable": row.comparable or row.baseline,
        "baseline": row.baseline, "repeats": len(r.result.timing.measured) or None,
        "step_time_p50_s": st.median if st else None, "step_time_p99_s": st.p99 if st else None,
        "peak_mem_bytes": mem.device_peak_bytes or mem.host_peak_rss_bytes,
        "device_util_percent": device_utilization(r), "device_util_max_percent": device_utilization_max(r),
        "device_power_w": device_power(r), "energy_per_sample_j": energy.per_sample_j if energy else None,
        "mfu": m.mfu.value if m.mfu else None,
        "warnings": ", ".join(sorted(r.result.codes() | ({"output_mismatch"} if row.mismatch else set()))),
        "output_mismatch": row.mismatch,
    }
    for spec in figure_specs(comp):
        key = figure_key(spec.key)
        if key not in out:
            out[key] = resolve(row, spec.key)
    if serves(r):  # an instance is paid while it waits for requests: the cost is at the rate achieved
        q = r.result.workload_metrics.get("achieved_qps")
        rates = (q, q, q)
    else:
        rates = (lead.value, lead.ci_low, lead.ci_high)
    per_unit_j = None
    if energy is not None:
        per_unit_j = energy.per_token_j if comp.main_metric == "tokens_per_s" else energy.per_sample_j
    out.update(cost.run_cost(r, comp.costing, *rates, per_unit_j, comp.main_metric, serves(r)))
    out.update({f"param_{k}": v for k, v in r.params.items()})
    return out


def records(comparisons) -> list[dict]:
    return [record(row, comp, cols) for comp in comparisons for cols in [columns(comp)] for row in comp.rows]


def document(comparisons, scaling: list[dict], gate_outcomes: list[tuple[str, str]], bench_version: str,
             created_at: str, serving: list[dict] | None = None) -> dict:
    """`bench compare --json`: every workload's columns (with units) and rows, the notes, scaling
    and gate outcomes, under its own format version."""
    return {
        "format": "bench-compare", "format_version": FORMAT_VERSION, "bench_version": bench_version,
        "created_at": created_at, "min_repeats": comparisons.min_repeats, "min_effect": comparisons.min_effect,
        "notes": list(comparisons.notes),
        "workloads": [{"workload": comp.workload, "variant": comp.variant, "main_metric": comp.main_metric,
                       "baseline": comp.baseline.name,
                       "baseline_run_id": comp.baseline.report.run_id,
                       "columns": [{"key": c.key, "label": c.label, "unit": c.unit, "better": c.better}
                                   for c in columns(comp)],
                       "rows": [record(row, comp) for row in comp.rows]} for comp in comparisons],
        "scaling": scaling,
        "serving": serving or [],
        "gates": [{"outcome": o, "what": w} for o, w in gate_outcomes],
    }
