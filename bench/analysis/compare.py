"""Pair runs by workload identity -> ratios with CIs, significance, comparability verdicts. No I/O.

A run is one (report, result). Two runs are comparable when their `params` match exactly (model,
batch, lengths, precision, generation settings, world size...). Statistics are recomputed from the
raw step times; published reports without raw times keep their transcribed values and get no CI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.core import stats
from bench.core.errors import ConfigError
from bench.model.derive import WORK, recompute, work_parts
from bench.model.parity import disagreement
from bench.model.report import Interval, Metrics, Report, Result

WORK_OF = WORK


@dataclass
class Run:
    name: str
    path: str
    report: Report
    result: Result
    metrics: Metrics = field(default_factory=Metrics)

    @property
    def workload(self) -> str:
        return self.result.workload

    @property
    def params(self) -> dict:
        return self.result.params

    @property
    def device(self) -> dict:
        return self.report.environment.device

    @property
    def device_label(self) -> str:
        d = self.device
        return str(d.get("device_name") or d.get("backend") or "?")

    @property
    def published(self) -> bool:
        return self.report.origin == "published"

    @property
    def raw(self) -> bool:
        return bool(self.result.timing.step_times_s)


@dataclass
class Row:
    run: Run
    baseline: bool = False
    comparable: bool = True
    forced: bool = False
    differences: list[str] = field(default_factory=list)
    speedup: dict | None = None
    verdict: str = ""
    mismatch: str | None = None  # the outputs disagree with the baseline's beyond the tolerance


@dataclass
class WorkloadComparison:
    workload: str
    main_metric: str
    baseline: Run
    rows: list[Row]


def run_name(report: Report, path: str) -> str:
    return report.label or Path(path).stem


def make_runs(loaded: list[tuple[str, Report]]) -> list[Run]:
    runs = []
    for path, report in loaded:
        for result in report.results:
            if result.status in ("ok", "interrupted"):
                runs.append(Run(run_name(report, path), path, report, result, recompute(result)))
    return runs


def identity_diff(a: dict, b: dict) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def pick_baseline(runs: list[Run], baseline: str | None) -> Run:
    if baseline is None:
        return runs[0]
    for r in runs:
        if baseline in (r.name, r.path, Path(r.path).name, r.report.run_id):
            return r
    return runs[0]


def throughput(run: Run, metric: str) -> Interval:
    return getattr(run.metrics, metric, None) or Interval(None)


def speedup(run: Run, base: Run, metric: str) -> dict:
    """Throughput ratio run / base with a bootstrap CI where both have raw step times."""
    if run.raw and base.raw and metric in WORK_OF:
        a, b = _parts(run, metric), _parts(base, metric)
        out = stats.parts_ratio_ci(a, b)
        # a second opinion that assumes nothing about the shape: per-step rates, Mann-Whitney U
        rates = [[w / t for part in parts for w, t in zip(*part)] for parts in (a, b)]
        out["mann_whitney_p"] = stats.mann_whitney_p(*rates)
        return out
    a, b = throughput(run, metric).value, throughput(base, metric).value
    return {"value": a / b if a and b else None, "ci_low": None, "ci_high": None, "significant": None}


def _parts(run: Run, metric: str) -> list[tuple]:
    timings = [p.timing for p in run.result.per_rank] if run.result.per_rank else [run.result.timing]
    return work_parts(timings, metric)


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
    metric = base.result.main_metric or "samples_per_s"
    rows = []
    for r in runs:
        if r is base:
            rows.append(Row(r, baseline=True, verdict="baseline"))
            continue
        diff = identity_diff(r.params, base.params)
        row = Row(r, comparable=not diff, forced=bool(diff) and force, differences=diff,
                  mismatch=disagreement(base.result.fingerprint, r.result.fingerprint))
        if diff and not force:
            row.verdict = f"not comparable ({len(diff)} field{'s' if len(diff) > 1 else ''} differ)"
        else:
            row.speedup = speedup(r, base, metric)
            row.verdict = verdict(row.speedup) + (" (forced: " + ", ".join(diff) + " differ)" if diff else "")
        rows.append(row)
    return WorkloadComparison(base.workload, metric, base, rows)


def compare(loaded: list[tuple[str, Report]], baseline: str | None = None, force: bool = False):
    """One WorkloadComparison per workload, in first-seen order."""
    runs = make_runs(loaded)
    if baseline is not None and not any(baseline in (r.name, r.path, Path(r.path).name,
                                                     r.report.run_id) for r in runs):
        names = sorted({r.name for r in runs})
        raise ConfigError(f"--baseline {baseline!r} matches no run; labels here: {', '.join(names)}")
    by: dict[str, list[Run]] = {}
    for r in runs:
        by.setdefault(r.workload, []).append(r)
    return [compare_workload(rs, pick_baseline(rs, baseline), force) for rs in by.values()]


# ---- what the tables show per run ---------------------------------------------------------------

def measure_summary(run: Run) -> dict:
    return run.result.telemetry_summary.get("measure") or {}


def accelerator_prefixes(run: Run) -> list[str]:
    return [p for p, src in run.report.telemetry.sources.items() if src.role == "accelerator"]


def _accel_stats(run: Run, key: str, stat: str) -> list[float]:
    s = measure_summary(run)
    vals = [getattr(s.get(f"{p}.{key}"), stat, None) for p in accelerator_prefixes(run)]
    return [v for v in vals if v is not None]


def device_utilization(run: Run) -> float | None:
    vals = _accel_stats(run, "util_percent", "mean")
    return sum(vals) / len(vals) if vals else None


def device_utilization_max(run: Run) -> float | None:
    vals = _accel_stats(run, "util_percent", "max")
    return max(vals) if vals else None


def device_power(run: Run) -> float | None:
    vals = _accel_stats(run, "power_w", "mean")
    return sum(vals) if vals else None


def row_values(row: Row, metric: str) -> dict:
    """The flat values of one row, shared by the terminal table, CSV, Markdown and HTML."""
    r, m = row.run, row.run.metrics
    st = m.step_time_s
    mem = r.result.memory
    tp = throughput(r, metric)
    sp = row.speedup or {}
    wm = r.result.workload_metrics
    energy = r.result.energy.device
    return {"workload": r.workload, "run": r.name, "device": r.device_label, "origin": r.report.origin,
            "metric": metric, "value": tp.value, "ci_low": tp.ci_low, "ci_high": tp.ci_high,
            "speedup": sp.get("value"), "speedup_ci_low": sp.get("ci_low"), "speedup_ci_high": sp.get("ci_high"),
            "mann_whitney_p": sp.get("mann_whitney_p"),
            "verdict": row.verdict, "comparable": row.comparable or row.baseline,
            "step_p50_s": st.median if st else None, "step_p99_s": st.p99 if st else None,
            "peak_mem_bytes": mem.device_peak_bytes or mem.host_peak_rss_bytes,
            "device_util_percent": device_utilization(r), "device_util_max_percent": device_utilization_max(r),
            "device_power_w": device_power(r),
            "energy_per_sample_j": energy.per_sample_j if energy else None,
            "mfu": m.mfu.value if m.mfu else None,
            "warnings": ", ".join(sorted(r.result.codes() | ({"output_mismatch"} if row.mismatch else set()))),
            "output_mismatch": row.mismatch,
            **{f"parlai_{k}": wm.get(f"parlai.{k}") for k in ("exps", "ups", "tps", "ctps", "ltps")}}


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

def scaling_groups(loaded: list[tuple[str, Report]]) -> list[dict]:
    """Runs whose identity matches but for world_size, as scaling series:
    [{workload, metric, points: [{world_size, value, ci_low, ci_high, efficiency}]}].
    Efficiency = throughput at N / (N / N0 x throughput at the smallest world size N0)."""
    groups: dict[tuple, list[Run]] = {}
    for run in make_runs(loaded):
        if type(run.params.get("world_size", 1)) is not int:
            continue  # a published run's "8 cards present, none used" is not a world size
        key = (run.workload, repr(sorted((k, repr(v)) for k, v in run.params.items() if k != "world_size")))
        groups.setdefault(key, []).append(run)
    out = []
    for (workload, _), runs in groups.items():
        sizes = {r.params.get("world_size", 1) for r in runs}
        if len(sizes) < 2:
            continue
        metric = runs[0].result.main_metric or "samples_per_s"
        runs = sorted(runs, key=lambda r: r.params.get("world_size", 1))
        n0, t0 = runs[0].params.get("world_size", 1), throughput(runs[0], metric).value
        points = []
        for r in runs:
            n, tp = r.params.get("world_size", 1), throughput(r, metric)
            eff = tp.value / (n / n0 * t0) if tp.value and t0 else None
            points.append({"world_size": n, "value": tp.value, "ci_low": tp.ci_low,
                           "ci_high": tp.ci_high, "efficiency": eff, "run": r.name})
        out.append({"workload": workload, "metric": metric, "points": points})
    return out
