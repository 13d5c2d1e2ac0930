"""The runs a comparison is made of: one per (report, result), named, duplicates dropped, and the
baseline that `--baseline` names."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from bench.analysis.comparison import Note, RunInfo
from bench.core.errors import ConfigError
from bench.core.text import clip, redact_urls, shell_path
from bench.model.derive import figure_value, lead_of, recompute
from bench.model.fields import plain
from bench.model.report import FigureSpec, Interval, Metrics, Report, Result, variant_label
from bench.serve.maths.identity import identity
from bench.serve.maths.metrics import SLOS, lead_figure, serving_metrics
from bench.serve.maths.records import most_tokens

BUSY_LABEL = "engine-busy requests/s"  # a serving result's old lead, as bench/serve/workload.py names it now


@dataclass
class Run:
    """One (report, result) while it is analysed, its metrics recomputed from the raw times."""

    name: str
    path: str
    report: Report
    result: Result
    metrics: Metrics = field(default_factory=Metrics)

    @property
    def workload(self) -> str:
        return self.result.workload

    @property
    def serves(self) -> bool:
        """A serving result (its requests recorded, or its serving figures)."""
        return "offered_qps" in (self.result.workload_metrics or {}) or any(
            r.requests is not None for r in self.result.timing.repeats)

    @property
    def figures(self) -> list[FigureSpec]:
        """The figures the result declares. A serving result written before it led with its latency led
        with its engine-busy rate: it leads with the latency its SLO names now, and the busy rate is kept
        beside it, marked as the old lead."""
        figures = self.result.figures
        old = next((f for f in figures if f.lead and f.key == "metrics.samples_per_s"), None)
        if not self.serves or old is None:
            return figures
        wm = self.result.workload_metrics or {}
        lead = lead_figure({k: wm.get(f"slo.{k}_s") for k in SLOS})
        busy = FigureSpec(old.key, BUSY_LABEL, old.unit, old.better)
        return [lead, *(busy if f is old else f for f in figures if f.key != lead.key)]

    @property
    def old_lead(self) -> bool:
        """A serving result written when serving results led with the engine-busy rate (compare marks it)."""
        return self.serves and any(f.lead and f.key == "metrics.samples_per_s" for f in self.result.figures)

    @property
    def lead(self) -> FigureSpec:
        """The figure this run leads with (bench/model/derive.py lead_spec)."""
        return lead_of(self.figures, self.result.main_metric)

    @property
    def params(self) -> dict:
        """The identity. A serving result's stack — its engine's settings, `static_shapes` (reports before
        `served_by` kept it here) — is how it was served, not another workload: compared and noted, not
        matched (bench/serve/maths/identity.py)."""
        return identity(self.result.params) if self.serves else self.result.params

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

    def throughput(self, metric: str) -> Interval:
        return getattr(self.metrics, metric, None) or Interval(None)

    def info(self) -> RunInfo:
        r = self.report
        return RunInfo(name=self.name, path=self.path, run_id=r.run_id, label=r.label, created_at=r.created_at,
                       status=self.result.status, origin=r.origin, device=self.device_label,
                       backend=_text(self.device.get("backend")), host=_text(r.environment.host.get("hostname")),
                       workload=self.workload, variant=self.variant, params=dict(self.params))


def _text(value) -> str | None:
    """A scalar of the environment as text (a report may hold a number where a name belongs)."""
    return None if value is None else str(value)


NAME_CHARS = 24  # a run's display name: long labels are cut, names that then collide get a run-id prefix


def run_name(report: Report, path: str) -> str:
    """The label, else the device kind and when it ran (`cuda 11-28 14:02`)."""
    if report.label and report.label.strip():
        return clip(" ".join(report.label.split()), NAME_CHARS, "…")
    backend = str(report.environment.device.get("backend") or Path(path).stem.split("_")[1:2] or "run")
    return f"{clip(backend, 12, '…')} {report.created_utc.strftime('%m-%d %H:%M')}"


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


def make_runs(loaded: list[tuple[str, Report]]) -> tuple[list[Run], list[Note]]:
    """Every result as a Run (failed ones too: they are shown, marked), and a note for each file left
    out: dropped as the same file or an exact copy of another, or — where files claim one run_id
    but differ — all of them set aside (`same_run_id`): which one is the run cannot be told."""
    runs, notes, differ = [], [], {}
    for path, report in _distinct(loaded, notes):
        for result in report.results:
            if result.status in ("ok", "interrupted", "failed"):
                checked, differ[len(runs)] = rechecked(result)
                runs.append(Run(run_name(report, path), path, report, checked, recompute(checked)))
    unique_names(runs)
    notes += [Note(code="recomputed", run=runs[i].name, values={"figures": d[:MAX_SHOWN_DIFFERENCES], "count": len(d),
                                                                "written_by": runs[i].report.bench_version})
              for i, d in differ.items() if d]
    return runs, notes


# -- a serving result's figures, recomputed from its request log as every step figure is ----------------
MAX_SHOWN_DIFFERENCES = 5
REL_TOL = 1e-6  # a stored figure that differs from the log's by less is the same (floats written and read back)


def rechecked(result: Result) -> tuple[Result, list]:
    """A serving result with its figures recomputed from its request logs (bench/serve/maths): the
    file's own `workload_metrics` and per-repeat figures are claims, checked here as step times are,
    and the log's figures are the ones used. -> (the result, [[figure, stored, recomputed], ...] where
    they disagreed). URL credentials in who served are shown as ***. A result without a request log
    is kept as it is."""
    result = _redacted(result)
    stored = result.workload_metrics or {}
    if not any(r.requests is not None and r.requests.arrival_s for r in result.timing.judged):
        return result, []
    cap, claimed = most_tokens(result.params), _most_claimed(result)
    if cap is not None and claimed > cap:  # a log claiming more tokens than any request could ask for
        result = dataclasses.replace(result, timing=dataclasses.replace(
            result.timing, repeats=[_capped(rep, cap) for rep in result.timing.repeats]))
    fresh = serving_metrics(result.timing.judged, result.params, *_slo_bounds(stored))
    differ = [[k, _shown(stored[k]), _shown(v)] for k, v in fresh.items() if k in stored and not _same(stored[k], v)]
    if cap is not None and claimed > cap:
        differ.insert(0, ["requests.new_tokens", claimed, cap])  # the largest one, and the cap
    repeats = [_refigured(rep, result) for rep in result.timing.repeats]
    timing = dataclasses.replace(result.timing, repeats=repeats)
    return dataclasses.replace(result, workload_metrics={**stored, **fresh}, timing=timing), differ


def _most_claimed(result: Result) -> int:
    return max((k for r in result.timing.repeats if r.requests is not None for k in r.requests.new_tokens), default=0)


def _capped(rep, cap: int):
    """A repeat whose request log counts no request past `cap` tokens (what it could ask for)."""
    log = rep.requests
    if log is None or all(k <= cap for k in log.new_tokens):
        return rep
    return dataclasses.replace(rep, requests=dataclasses.replace(log, new_tokens=[min(k, cap) for k in log.new_tokens]))


def _slo_bounds(stored: dict) -> tuple:
    """The SLO bounds the result was judged by (ttft, e2e, tpot seconds): the user's settings."""
    return tuple(v if isinstance(v, int | float) and not isinstance(v, bool) and v > 0 else None
                 for v in (stored.get("slo.ttft_s"), stored.get("slo.e2e_s"), stored.get("slo.tpot_s")))


def _refigured(rep, result: Result):
    """A repeat's declared serving figures (`figure_values`, what a gate reads) from its own log."""
    if rep.requests is None or not rep.requests.arrival_s or rep.set_aside:
        return rep
    own = serving_metrics([rep], result.params, *_slo_bounds(result.workload_metrics or {}))
    values = dict(rep.figure_values)
    for key in values:
        if key.startswith("workload_metrics."):
            v = figure_value(own, None, key)
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            values[key] = float(v) if ok else None
    return dataclasses.replace(rep, figure_values=values)


def _same(a, b) -> bool:
    a, b = plain(a), plain(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return all(_same(a.get(k), b.get(k)) for k in set(a) | set(b))
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, int | float) or not isinstance(b, int | float):
        return a == b
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12)


def _shown(value):
    """A figure as a note carries it: a number, or an interval's or a summary's value."""
    value = plain(value)
    if isinstance(value, dict):
        return value.get("value", value.get("median"))
    return value


def _redacted(result: Result) -> Result:
    s = result.served_by
    if s is None or not s.endpoint or redact_urls(s.endpoint) == s.endpoint:
        return result
    return dataclasses.replace(result, served_by=dataclasses.replace(s, endpoint=redact_urls(s.endpoint)))


def _distinct(loaded, notes: list[Note]) -> list[tuple[str, Report]]:
    """The files to compare, in order: each run_id once (a later copy of the same content is noted
    and dropped); a run_id that files claim with different content, none of them (noted)."""
    by_id: dict[str, list[int]] = {}
    for i, (_, report) in enumerate(loaded):
        by_id.setdefault(report.run_id, []).append(i)
    kept = set()
    for run_id, group in by_id.items():
        (first_path, first), rest = loaded[group[0]], [loaded[i] for i in group[1:]]
        same_file = str(Path(first_path).resolve())
        differ = [field for p, r in rest if str(Path(p).resolve()) != same_file and r is not first
                  and (field := first_difference(plain(first), plain(r))) is not None]
        if differ:
            notes.append(Note(code="same_run_id", values={"paths": [loaded[i][0] for i in group], "run_id": run_id,
                                                          "field": differ[0]}))
            continue
        notes += [Note(code="duplicate", values={"path": p, "first": first_path, "run_id": run_id}) for p, _ in rest]
        kept.add(group[0])
    return [x for i, x in enumerate(loaded) if i in kept]


def first_difference(a, b, path: str = "") -> str | None:
    """The first place two plain JSON values differ (`results[0].timing.repeats[1].step_times_s[3]`)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return _first_key_difference(a, b, path)
    if isinstance(a, list) and isinstance(b, list):
        inside = next((w for i, (x, y) in enumerate(zip(a, b, strict=False))
                       if (w := first_difference(x, y, f"{path}[{i}]"))), None)
        return inside or (None if len(a) == len(b) else f"{path} (length {len(a)} vs {len(b)})")
    return None if a == b and type(a) is type(b) else path or "(top level)"


def _first_key_difference(a: dict, b: dict, path: str) -> str | None:
    for k in list(a) + [k for k in b if k not in a]:
        where = first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        if where is not None:
            return where
    return None


def _matches(spec: str, name: str, path: str, report: Report) -> bool:
    rid = report.run_id
    return spec in (name, report.label, path, Path(path).name) or (len(spec) >= 4 and rid.startswith(spec))


def baseline_candidates(runs: list[Run], spec: str) -> dict[str, Run]:
    """Reports that `--baseline spec` names: by label, path, file name, or a run_id prefix."""
    found = {}
    for r in runs:
        if _matches(spec, r.name, r.path, r.report):
            found.setdefault(r.report.run_id, r)
    return found


def pick_baseline(runs: list[Run], spec: str | None, loaded=(), notes=()) -> str:
    """The run_id of the baseline report: the first file's, or the one --baseline names alone (a file
    set aside as one of several that claim one run is refused, saying so)."""
    if spec is None:
        return runs[0].report.run_id
    found = baseline_candidates(runs, spec)
    if not found:
        aside = {p for n in notes if n.code == "same_run_id" for p in n.values["paths"]}
        named = [p for p, rep in loaded if p in aside and _matches(spec, run_name(rep, p), p, rep)]
        if named:
            raise ConfigError(f"--baseline {spec!r} names {shell_path(named[0])}, which was set aside: other files "
                              "claim its run_id with other content")
        names = ", ".join(sorted({r.name for r in runs}))
        raise ConfigError(f"--baseline {spec!r} matches no run; labels here: {names}")
    if len(found) > 1:
        listed = "; ".join(f"{r.name} ({r.path}, run id {rid[:8]})" for rid, r in found.items())
        raise ConfigError(f"--baseline {spec!r} is ambiguous, it matches {len(found)} runs: {listed}. Name one by "
                          "its file or a run-id prefix")
    return next(iter(found))


def handicap(run: Run) -> float:
    measure = run.report.config.get("measure")
    value = measure.get("handicap") if isinstance(measure, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
