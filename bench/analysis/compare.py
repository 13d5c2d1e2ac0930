"""Pair runs by workload identity -> ratios with CIs, significance, comparability verdicts. No I/O.

A run is one (report, result). Two runs are comparable when their `params` match exactly (model,
batch, lengths, precision, generation settings, world size...). Statistics are recomputed from the
raw step times; published reports without raw times keep their transcribed values and get no CI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bench.analysis import verdicts
from bench.analysis.cost import Costing
from bench.core.errors import ConfigError
from bench.core.text import clip
from bench.model.derive import WORK, recompute
from bench.model.parity import disagreement
from bench.model.report import Interval, Metrics, Report, Result, variant_label



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
    def variant(self) -> str | None:
        return variant_label(self.result.variant)

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

    @property
    def display(self) -> str:
        """The name, marked where the run did not end well."""
        return self.name + {"interrupted": " (interrupted)", "failed": " (failed)"}.get(self.result.status, "")


@dataclass
class Row:
    run: Run
    baseline: bool = False
    comparable: bool = True
    forced: bool = False
    differences: list[str] = field(default_factory=list)
    speedup: verdicts.Speedup | None = None
    verdict: str = ""  # in words
    code: str = ""  # baseline | faster | slower | same | inconclusive | no_verdict | not_comparable | failed
    mismatch: str | None = None  # the outputs disagree with the baseline's beyond the tolerance


@dataclass
class WorkloadComparison:
    workload: str
    main_metric: str
    baseline: Run
    rows: list[Row]
    variant: str | None = None  # serving: the offered rate these runs share (`qps=4`)
    costing: Costing | None = None  # prices and a kWh price, when the user gave them

    @property
    def title(self) -> str:
        return f"{self.workload} {self.variant}" if self.variant else self.workload


@dataclass
class Comparison:
    workloads: list[WorkloadComparison]
    notes: list[str] = field(default_factory=list)  # duplicates dropped, handicaps, missing baselines
    min_repeats: int = 3
    min_effect: float = 0.02

    def __iter__(self):
        return iter(self.workloads)

    def __len__(self):
        return len(self.workloads)


NAME_CHARS = 24  # a run's display name: long labels are cut, names that then collide get a run-id prefix


def run_name(report: Report, path: str) -> str:
    """The label, else the device kind and when it ran (`cuda 11-28 14:02`)."""
    if report.label and report.label.strip():
        return clip(" ".join(report.label.split()), NAME_CHARS, "…")
    backend = str(report.environment.device.get("backend") or Path(path).stem.split("_")[1:2] or "run")
    try:
        when = datetime.fromisoformat(report.created_at).astimezone(timezone.utc).strftime("%m-%d %H:%M")
    except ValueError:
        when = Path(path).stem[:16]
    return f"{clip(backend, 12, '…')} {when}"


def unique_names(runs: list[Run]) -> None:
    """Runs of different reports that would show the same name get their run_id's first characters."""
    by_name: dict[str, set[str]] = {}
    for r in runs:
        by_name.setdefault(r.name, set()).add(r.report.run_id)
    for r in runs:
        ids = by_name[r.name]
        if len(ids) > 1:
            width = 6
            while len({i[:width] for i in ids}) < len(ids) and width < 32:
                width += 2
            r.name = f"{r.name} #{r.report.run_id[:width]}"


def make_runs(loaded: list[tuple[str, Report]]) -> tuple[list[Run], list[str]]:
    """Every result as a Run (failed ones too: they are shown, marked), and a note for each file
    dropped as a duplicate of another (the same path, or the same run_id)."""
    runs, notes, seen = [], [], {}
    for path, report in loaded:
        key_path = str(Path(path).resolve())
        first = seen.get(report.run_id) or seen.get(key_path)
        if first is not None:
            notes.append(f"{path}: dropped, the same run as {first} (run_id {report.run_id[:12]})")
            continue
        seen[report.run_id] = seen[key_path] = path
        for result in report.results:
            if result.status in ("ok", "interrupted", "failed"):
                runs.append(Run(run_name(report, path), path, report, result, recompute(result)))
    unique_names(runs)
    return runs, notes


def identity_diff(a: dict, b: dict) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def baseline_candidates(runs: list[Run], spec: str) -> dict[str, Run]:
    """Reports that `--baseline spec` names: by label, path, file name, or a run_id prefix."""
    found = {}
    for r in runs:
        rid = r.report.run_id
        if spec in (r.name, r.report.label, r.path, Path(r.path).name) or (len(spec) >= 4 and rid.startswith(spec)):
            found.setdefault(rid, r)
    return found


def pick_baseline(runs: list[Run], spec: str | None) -> str:
    """The run_id of the baseline report: the first file's, or the one --baseline names alone."""
    if spec is None:
        return runs[0].report.run_id
    found = baseline_candidates(runs, spec)
    if not found:
        names = ", ".join(sorted({r.name for r in runs}))
        raise ConfigError(f"--baseline {spec!r} matches no run; labels here: {names}")
    if len(found) > 1:
        listed = "; ".join(f"{r.name} ({r.path}, run id {rid[:8]})" for rid, r in found.items())
        raise ConfigError(f"--baseline {spec!r} is ambiguous, it matches {len(found)} runs: {listed}. Name one by "
                          "its file or a run-id prefix")
    return next(iter(found))


def throughput(run: Run, metric: str) -> Interval:
    return getattr(run.metrics, metric, None) or Interval(None)


def handicap(run: Run) -> float:
    measure = run.report.config.get("measure")
    value = measure.get("handicap") if isinstance(measure, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def compare_workload(runs: list[Run], base: Run, force: bool, min_repeats: int, min_effect: float) -> WorkloadComparison:
    metric = base.result.main_metric or "samples_per_s"
    rows = []
    for r in runs:
        if r is base:
            rows.append(Row(r, baseline=True, verdict="baseline", code="baseline"))
            continue
        if r.result.status == "failed" or not r.raw and not r.published:
            rows.append(Row(r, comparable=False, verdict=f"failed: {r.result.error or 'no measured steps'}",
                            code="failed"))
            continue
        diff = identity_diff(r.params, base.params)
        row = Row(r, comparable=not diff, forced=bool(diff) and force, differences=diff,
                  mismatch=disagreement(base.result.fingerprint, r.result.fingerprint))
        if diff and not force:
            row.verdict = (f"not comparable ({', '.join(diff)} differ{'s' if len(diff) == 1 else ''}; --force "
                           "compares anyway, marked)")
            row.code = "not_comparable"
        else:
            row.speedup = verdicts.speedup(r, base, metric, min_repeats, min_effect)
            row.verdict, row.code = row.speedup.text, row.speedup.verdict
            if diff:
                row.verdict += f" (forced: {', '.join(diff)} differ)"
        rows.append(row)
    return WorkloadComparison(base.workload, metric, base, rows, base.variant)


def compare(loaded: list[tuple[str, Report]], baseline: str | None = None, force: bool = False,
            min_repeats: int = 3, min_effect: float = 0.02, costing: Costing | None = None) -> Comparison:
    """One WorkloadComparison per workload, in first-seen order, and notes on what was dropped."""
    runs, notes = make_runs(loaded)
    if not runs:
        return Comparison([], notes)
    base_id = pick_baseline(runs, baseline)
    by: dict[tuple[str, str | None], list[Run]] = {}
    for r in runs:
        by.setdefault((r.workload, r.variant), []).append(r)
    out = []
    for (name, variant), rs in by.items():
        workload = f"{name} {variant}" if variant else name
        base = next((r for r in rs if r.report.run_id == base_id and r.result.status != "failed"), None)
        if base is None:
            notes.append(f"{workload}: the baseline has no usable result for it; the first run is its baseline")
            base = next((r for r in rs if r.result.status != "failed"), None)
        if base is None:
            notes.append(f"{workload}: no run measured it")
            continue
        comp = compare_workload(rs, base, force, min_repeats, min_effect)
        comp.costing = costing
        out.append(comp)
    for r in runs:
        if handicap(r):
            notes.append(f"{r.name}: ran with --handicap {handicap(r):g} %, a deliberate slow-down for testing "
                         "comparisons: its figures are not the device's")
    return Comparison(out, list(dict.fromkeys(notes)), min_repeats, min_effect)


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


def parse_gate(spec: str) -> tuple[str, float]:
    metric, _, pct = spec.partition(":")
    try:
        limit = float(pct.strip().rstrip("%")) / 100
    except ValueError:
        raise ConfigError(f"--fail-on: expected METRIC:PCT like tokens_per_s:5%, got {spec!r}") from None
    if metric not in WORK or not 0 < limit < 1:
        raise ConfigError(f"--fail-on: metric must be one of {', '.join(WORK)} and PCT between 0 and 100, got {spec!r}")
    return metric, limit


def gates(comparison: Comparison, spec: str) -> list[tuple[str, str]]:
    """--fail-on METRIC:PCT over every comparable row: [(fail | inconclusive, what)]; rows that pass
    are left out. A regression fails only when conclusive: the whole interval below 1 - PCT."""
    metric, limit = parse_gate(spec)
    out = []
    for comp in comparison:
        for row in comp.rows:
            if row.baseline or row.code in ("not_comparable", "failed"):
                continue
            s = verdicts.speedup(row.run, comp.baseline, metric, comparison.min_repeats, comparison.min_effect)
            outcome = verdicts.gate(s, limit)
            if outcome != "pass":
                out.append((outcome, f"{comp.workload}: {row.run.name} vs {comp.baseline.name}, {metric}: "
                                     f"{s.text} — limit {limit:.0%} below"))
    return out


# ---- scaling across world sizes ------------------------------------------------------------------

def scaling_groups(loaded: list[tuple[str, Report]]) -> list[dict]:
    """Runs whose identity matches but for world_size, as scaling series:
    [{workload, metric, points: [{world_size, value, ci_low, ci_high, efficiency}]}].
    Efficiency = throughput at N / (N / N0 x throughput at the smallest world size N0)."""
    groups: dict[tuple, list[Run]] = {}
    for run in make_runs(loaded)[0]:
        if run.result.status == "failed":
            continue
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
