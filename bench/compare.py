"""Pair runs by workload identity -> ratios with CIs, significance, comparability verdicts. No I/O.

A run is one (report, result). Two runs are comparable when their `params` match exactly (model,
batch, lengths, precision, generation settings, world size...). Statistics are recomputed from the
raw step times; published reports without raw times keep their transcribed values and get no CI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from bench import stats
from bench.errors import ConfigError
from bench.metrics import core_metrics
from bench.telemetry.summary import ACCEL_UTIL

WORK_OF = {"samples_per_s": "step_samples", "tokens_per_s": "step_tokens", "steps_per_s": None}


@dataclass
class Run:
    name: str
    path: str
    report: dict
    result: dict
    metrics: dict = field(default_factory=dict)

    @property
    def workload(self) -> str:
        return self.result["workload"]

    @property
    def params(self) -> dict:
        return self.result.get("params") or {}

    @property
    def device(self) -> dict:
        return self.report.get("environment", {}).get("device", {})

    @property
    def device_label(self) -> str:
        d = self.device
        return str(d.get("device_name") or d.get("backend") or "?")

    @property
    def published(self) -> bool:
        return self.report.get("origin") == "published"

    @property
    def raw(self) -> bool:
        return bool(self.result.get("timing", {}).get("step_times_s"))


@dataclass
class Row:
    run: Run
    baseline: bool = False
    comparable: bool = True
    forced: bool = False
    differences: list[str] = field(default_factory=list)
    speedup: dict | None = None
    verdict: str = ""


@dataclass
class WorkloadComparison:
    workload: str
    main_metric: str
    baseline: Run
    rows: list[Row]


def run_name(report: dict, path: str) -> str:
    return report.get("label") or Path(path).stem


def recompute_metrics(result: dict) -> dict:
    """Metrics from the raw step times (the file's own figures are not trusted blindly)."""
    timing = result.get("timing", {})
    if not timing.get("step_times_s"):
        return dict(result.get("metrics") or {})
    mfu = (result.get("metrics") or {}).get("mfu") or {}
    fresh = core_metrics(timing, result.get("flops_per_step"), mfu.get("peak_flops_per_s"),
                         mfu.get("peak_source") or mfu.get("reason") or "unknown peak")
    if result.get("per_rank"):
        from bench.distributed import global_metrics

        fresh.update(global_metrics(result["per_rank"]))
    return {**(result.get("metrics") or {}), **fresh}


def work_parts(result: dict, metric: str) -> list[tuple]:
    """[(work, times)] per rank (one part for a single-process run) for throughput `metric`."""
    key = WORK_OF[metric]
    sources = [p["timing"] for p in result["per_rank"]] if result.get("per_rank") else [result["timing"]]
    return [(t[key] if key else [1] * len(t["step_times_s"]), t["step_times_s"]) for t in sources
            if t.get("step_times_s")]


def make_runs(loaded: list[tuple[str, dict]]) -> list[Run]:
    runs = []
    for path, report in loaded:
        for result in report.get("results", []):
            if result.get("status") in ("ok", "interrupted"):
                runs.append(Run(run_name(report, path), path, report, result, recompute_metrics(result)))
    return runs


def identity_diff(a: dict, b: dict) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def pick_baseline(runs: list[Run], baseline: str | None) -> Run:
    if baseline is None:
        return runs[0]
    for r in runs:
        if baseline in (r.name, r.path, Path(r.path).name, r.report.get("run_id")):
            return r
    return runs[0]


def throughput(run: Run, metric: str) -> dict:
    return run.metrics.get(metric) or {"value": None}


def speedup(run: Run, base: Run, metric: str) -> dict:
    """Throughput ratio run / base with a bootstrap CI where both have raw step times."""
    if run.raw and base.raw and metric in WORK_OF:
        a, b = work_parts(run.result, metric), work_parts(base.result, metric)
        out = stats.parts_ratio_ci(a, b)
        # a second opinion that assumes nothing about the shape: per-step rates, Mann-Whitney U
        rates = [[w / t for part in parts for w, t in zip(*part)] for parts in (a, b)]
        out["mann_whitney_p"] = stats.mann_whitney_p(*rates)
        return out
    a, b = throughput(run, metric).get("value"), throughput(base, metric).get("value")
    return {"value": a / b if a and b else None, "ci_low": None, "ci_high": None, "significant": None}


def verdict(s: dict) -> str:
    r = s.get("value")
    if r is None:
        return "no throughput to compare"
    word = f"{r:.2f}x faster" if r >= 1 else f"{1 / r:.2f}x slower"
    if s.get("significant") is None:
        return f"{word} (no CI: no raw step times)"
    if not s["significant"]:
        return f"not significant ({r:.2f}x, CI {s['ci_low']:.2f}-{s['ci_high']:.2f})"
    return f"{word} [{s['ci_low']:.2f}, {s['ci_high']:.2f}]"


def compare_workload(runs: list[Run], base: Run, force: bool) -> WorkloadComparison:
    metric = base.result.get("main_metric") or "samples_per_s"
    rows = []
    for r in runs:
        if r is base:
            rows.append(Row(r, baseline=True, verdict="baseline"))
            continue
        diff = identity_diff(r.params, base.params)
        row = Row(r, comparable=not diff, forced=bool(diff) and force, differences=diff)
        if diff and not force:
            row.verdict = f"not comparable ({len(diff)} field{'s' if len(diff) > 1 else ''} differ)"
        else:
            row.speedup = speedup(r, base, metric)
            row.verdict = verdict(row.speedup) + (" (forced: " + ", ".join(diff) + " differ)" if diff else "")
        rows.append(row)
    return WorkloadComparison(base.workload, metric, base, rows)


def compare(loaded: list[tuple[str, dict]], baseline: str | None = None, force: bool = False):
    """One WorkloadComparison per workload, in first-seen order."""
    runs = make_runs(loaded)
    if baseline is not None and not any(baseline in (r.name, r.path, Path(r.path).name,
                                                     r.report.get("run_id")) for r in runs):
        names = sorted({r.name for r in runs})
        raise ConfigError(f"--baseline {baseline!r} matches no run; labels here: {', '.join(names)}")
    by: dict[str, list[Run]] = {}
    for r in runs:
        by.setdefault(r.workload, []).append(r)
    return [compare_workload(rs, pick_baseline(rs, baseline), force) for rs in by.values()]


# ---- what the tables show per run ---------------------------------------------------------------

def measure_summary(run: Run) -> dict:
    return (run.result.get("telemetry_summary") or {}).get("measure") or {}


def mean_of(summary: dict, pattern: str) -> float | None:
    rx = re.compile(pattern)
    vals = [v.get("mean") for k, v in summary.items() if rx.match(k) and v.get("mean") is not None]
    return sum(vals) / len(vals) if vals else None


def device_utilization(run: Run) -> float | None:
    return mean_of(measure_summary(run), ACCEL_UTIL.pattern)


def device_utilization_max(run: Run) -> float | None:
    vals = [v.get("max") for k, v in measure_summary(run).items() if ACCEL_UTIL.match(k) and v.get("max") is not None]
    return max(vals) if vals else None


def device_power(run: Run) -> float | None:
    s = measure_summary(run)
    rx = re.compile(r"^(gpu|hpu)\d+\.power_w$")
    vals = [v["mean"] for k, v in s.items() if rx.match(k) and v.get("mean") is not None]
    return sum(vals) if vals else None


def row_values(row: Row, metric: str) -> dict:
    """The flat values of one row, shared by the terminal table, CSV, Markdown and HTML."""
    r, m = row.run, row.run.metrics
    st = m.get("step_time_s") or {}
    mem = r.result.get("memory") or {}
    tp = throughput(r, metric)
    sp = row.speedup or {}
    parlai = m.get("parlai") or {}
    return {"workload": r.workload, "run": r.name, "device": r.device_label, "origin": r.report.get("origin", "measured"),
            "metric": metric, "value": tp.get("value"), "ci_low": tp.get("ci_low"), "ci_high": tp.get("ci_high"),
            "speedup": sp.get("value"), "speedup_ci_low": sp.get("ci_low"), "speedup_ci_high": sp.get("ci_high"),
            "mann_whitney_p": sp.get("mann_whitney_p"),
            "verdict": row.verdict, "comparable": row.comparable or row.baseline,
            "step_p50_s": st.get("median"), "step_p99_s": st.get("p99"),
            "peak_mem_bytes": mem.get("device_peak_bytes") or mem.get("host_peak_rss_bytes"),
            "device_util_percent": device_utilization(r), "device_util_max_percent": device_utilization_max(r),
            "device_power_w": device_power(r),
            "energy_per_sample_j": (r.result.get("energy") or {}).get("per_sample_j"),
            "mfu": (m.get("mfu") or {}).get("value"),
            "warnings": ", ".join(sorted({w["code"] for w in r.result.get("warnings", [])})),
            **{f"parlai_{k}": parlai.get(k) for k in ("exps", "ups", "tps", "ctps", "ltps")}}


def regressions(comparisons, spec: str) -> list[str]:
    """--fail-on METRIC:PCT: runs significantly slower than the baseline by more than PCT."""
    metric, _, pct = spec.partition(":")
    try:
        limit = float(pct.rstrip("%")) / 100
    except ValueError:
        raise ConfigError(f"--fail-on: expected METRIC:PCT like tokens_per_s:5%, got {spec!r}") from None
    if metric not in WORK_OF or not 0 < limit < 1:
        raise ConfigError(f"--fail-on: metric must be one of {', '.join(WORK_OF)} and PCT between 0 and 100")
    failures = []
    for comp in comparisons:
        for row in comp.rows:
            if row.baseline or not row.comparable:
                continue
            s = speedup(row.run, comp.baseline, metric)
            if s.get("value") is not None and s.get("significant") and s["ci_high"] < 1 - limit:
                failures.append(f"{comp.workload}: {row.run.name} {metric} is {1 - s['value']:.1%} below "
                                f"{comp.baseline.name} (CI {s['ci_low']:.3f}-{s['ci_high']:.3f}), limit {limit:.0%}")
    return failures


# ---- scaling across world sizes ------------------------------------------------------------------

def scaling_groups(loaded: list[tuple[str, dict]]) -> list[dict]:
    """Runs whose identity matches but for world_size, as scaling series:
    [{workload, metric, points: [{world_size, value, ci_low, ci_high, efficiency}]}].
    Efficiency = throughput at N / (N / N0 x throughput at the smallest world size N0)."""
    groups: dict[tuple, list[Run]] = {}
    for run in make_runs(loaded):
        key = (run.workload, repr(sorted((k, repr(v)) for k, v in run.params.items() if k != "world_size")))
        groups.setdefault(key, []).append(run)
    out = []
    for (workload, _), runs in groups.items():
        sizes = {r.params.get("world_size", 1) for r in runs}
        if len(sizes) < 2:
            continue
        metric = runs[0].result.get("main_metric") or "samples_per_s"
        runs = sorted(runs, key=lambda r: r.params.get("world_size", 1))
        n0, t0 = runs[0].params.get("world_size", 1), throughput(runs[0], metric).get("value")
        points = []
        for r in runs:
            n, tp = r.params.get("world_size", 1), throughput(r, metric)
            eff = tp["value"] / (n / n0 * t0) if tp.get("value") and t0 else None
            points.append({"world_size": n, "value": tp.get("value"), "ci_low": tp.get("ci_low"),
                           "ci_high": tp.get("ci_high"), "efficiency": eff, "run": r.name})
        out.append({"workload": workload, "metric": metric, "points": points})
    return out
