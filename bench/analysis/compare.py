"""Pair runs by workload identity -> one typed Comparison (bench/analysis/comparison.py). No I/O.

A run is one (report, result). Two runs are comparable when their `params` match exactly (model,
batch, lengths, precision, generation settings, world size...). Statistics are recomputed from the
raw step times; published reports without raw times keep their transcribed values and get no CI.
Everything every output shows is computed here once: rows, speedups and verdicts, notes (codes with
values), gates, serving curves, scaling and the environments' differences.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.analysis import table, verdicts
from bench.analysis.arithmetic import arithmetic_notes
from bench.analysis.comparison import (Comparison, Costing, EnvironmentDiff, Gate, GateOutcome, Note, Row, Source,
                                       WorkloadComparison)
from bench.analysis.cost import price_notes, run_cost, unmatched_prices
from bench.analysis.decision import decisions
from bench.analysis.runs import Run, handicap, make_runs, pick_baseline
from bench.analysis.scaling import scaling_groups
from bench.analysis.serving import served, served_notes, serving_curves, tail_notes
from bench.core.errors import ConfigError
from bench.model.derive import WORK, figure_key, is_throughput
from bench.model.fields import plain
from bench.model.parity import disagreement
from bench.model.report import Report


@dataclass(frozen=True)
class Rules:
    """How runs are judged: what --force, --min-repeats, --min-effect and the prices say."""

    force: bool = False
    min_repeats: int = 3
    min_effect: float = 0.02
    costing: Costing | None = None


def compare(loaded: list[tuple[str, Report]], baseline: str | None = None, force: bool = False,
            min_repeats: int = 3, min_effect: float = 0.02, costing: Costing | None = None,
            gates: tuple[Gate, ...] = ()) -> Comparison:
    """One WorkloadComparison per workload (and variant), in first-seen order, the gates applied to
    them, serving curves, scaling, and notes on what was dropped."""
    runs, notes = make_runs(loaded)
    rules = Rules(force, min_repeats, min_effect, costing)
    sources = [Source(path=p, report=r) for p, r in loaded]
    if not runs:
        return Comparison(workloads=[], notes=notes, min_repeats=min_repeats, min_effect=min_effect, sources=sources)
    base_id = pick_baseline(runs, baseline, loaded, notes)
    pairs = []
    for title, group in _by_workload(runs).items():
        base = _baseline_of(group, base_id, title, notes, _study_id(_report_run(runs, base_id)))
        if base is not None:
            pairs.append((compare_workload(group, base, rules), group, base))
    notes += [Note(code="handicap", run=r.name, values={"percent": handicap(r)}) for r in runs if handicap(r)]
    notes += unmatched_prices(runs, costing)
    return Comparison(workloads=[w for w, _, _ in pairs], notes=unique(notes), min_repeats=min_repeats,
                      min_effect=min_effect, gates=[o for g in gates for o in apply_gate(g, pairs, rules)],
                      serving=serving_curves(runs, costing), scaling=scaling_groups(runs),
                      environment=environment_diff(loaded), sources=sources,
                      decisions=decisions(runs, costing, min_repeats, min_effect))


def unique(notes: list[Note]) -> list[Note]:
    return list({n.model_dump_json(): n for n in notes}.values())


def _by_workload(runs: list[Run]) -> dict[str, list[Run]]:
    by: dict[str, list[Run]] = {}
    for r in runs:
        by.setdefault(f"{r.workload} {r.variant}" if r.variant else r.workload, []).append(r)
    return by


def _baseline_of(runs: list[Run], base_id: str, title: str, notes: list[Note], box: str | None = None) -> Run | None:
    """The baseline report's result for this workload — or, where the baseline report belongs to a study,
    any report of the same study on the same box (`bench study` writes one per run) — else the first
    usable one (noted)."""
    usable = [r for r in runs if r.result.status != "failed"]
    base = next((r for r in usable if r.report.run_id == base_id), None) or \
        next((r for r in usable if box is not None and _study_id(r) == box), None)
    if base is None:
        notes.append(Note(code="baseline_missing", values={"workload": title}))
        base = usable[0] if usable else None
    if base is None:
        notes.append(Note(code="no_run", values={"workload": title}))
    return base


def _report_run(runs: list[Run], run_id: str) -> Run | None:
    return next((r for r in runs if r.report.run_id == run_id), None)


def _study_id(run: Run | None) -> str | None:
    return run.report.study.id if run is not None and run.report.study is not None else None


def compare_workload(runs: list[Run], base: Run, rules: Rules) -> WorkloadComparison:
    """The baseline's lead leads: a throughput, or a serving result's latency at its offered rate."""
    lead = base.lead
    ordered = [base, *runs]
    specs = table.figure_specs(ordered)
    return WorkloadComparison(workload=base.workload, variant=base.variant, main_metric=figure_key(lead.key),
                              baseline=base.info(), columns=table.columns(ordered, rules.costing),
                              rows=[make_row(r, base, lead, specs, rules) for r in runs])


def judged(run: Run, base: Run, rules: Rules) -> dict:
    """The row's verdict fields: baseline, failed, not comparable, or a speedup (forced or not)."""
    if run is base:
        return {"verdict": "baseline", "baseline": True}
    if run.result.status == "failed" or not run.raw and not run.published:
        return {"verdict": "failed", "comparable": False}
    diff = sorted(k for k in set(run.params) | set(base.params) if run.params.get(k) != base.params.get(k))
    out = {"comparable": not diff, "forced": bool(diff) and rules.force, "differences": diff,
           "mismatch": disagreement(base.result.fingerprint, run.result.fingerprint)}
    if diff and not rules.force:
        return {**out, "verdict": "not_comparable"}
    s, sides = lead_speedup(run, base, rules)
    return {**out, "verdict": s.verdict, "speedup": s, "outlook": verdicts.verdict_outlook(s, sides)}


def lead_speedup(run: Run, base: Run, rules: Rules):
    """(the speedup of the baseline's lead, the per-repeat values it was made of). A latency's is the
    baseline's over the run's: "faster" is lower, as a throughput's "faster" is higher."""
    lead = base.lead
    metric = figure_key(lead.key)
    if is_throughput(lead):
        s = verdicts.speedup(run, base, metric, rules.min_repeats, rules.min_effect)
        return s, verdicts.sides(run, base, metric)
    failed = (verdicts.requests_failed(run) or verdicts.requests_failed(base)) if run.serves else None
    s = verdicts.figure_speedup(run, base, metric, lead.key, rules.min_repeats, rules.min_effect,
                                lower=lead.better == "lower", why=failed)
    return s, verdicts.sides(run, base, metric, lead.key)


def make_row(run: Run, base: Run, lead, specs, rules: Rules) -> Row:
    v = judged(run, base, rules)
    metric = run.result.main_metric or "samples_per_s"  # the throughput a cost is figured from
    rates, per_unit_j = table.cost_inputs(run, metric)
    cost = run_cost(run, rules.costing, rates, per_unit_j, metric, table.serves(run))
    serving = served_notes(run, base) + tail_notes(run.name, run.result.workload_metrics or {})
    notes = row_notes(run, base, v) + arithmetic_notes(run, base) + serving + price_notes(run, rules.costing, cost)
    v.pop("outlook", None)
    return Row(run=run.info(), lead=table.lead(run, lead), figures=table.figures(run, specs),
               repeats=len(run.result.timing.judged) or None, set_aside=set_aside(run), cost=cost,
               served=served(run), warnings=table.warning_codes(run, v.get("mismatch")), notes=notes, **v)


def row_notes(run: Run, base: Run, v: dict) -> list[Note]:
    """What a reader must know about a row, in the order it is told: where published figures came
    from, why it is not comparable, its verdict, why it failed, outputs that disagree, its warnings."""
    def note(kind, **values):
        return Note(code=kind, run=run.name, values=values)

    diff = v.get("differences", [])
    notes = [note("published", source=run.report.source)] if run.published else []
    if run.old_lead:
        notes.append(note("old_lead", lead=figure_key(run.lead.key)))
    if diff:
        notes.append(note("not_comparable", baseline=base.name,
                          differences=[[k, run.params.get(k), base.params.get(k)] for k in diff]))
    if v.get("speedup") is not None:
        notes.append(note("verdict", baseline=base.name, speedup=v["speedup"], forced=diff if v["forced"] else []))
    if v.get("outlook"):
        notes.append(note("settle", baseline=base.name, repeats=min(v["speedup"].repeats),
                          min_effect=v["speedup"].min_effect, ratio=v["speedup"].ratio, **v["outlook"]))
    if set_aside(run):
        reasons = [why for rep in run.result.timing.repeats for why in rep.set_aside or []]
        notes.append(note("set_aside", count=set_aside(run), first=reasons[0] if reasons else None))
    if v["verdict"] == "failed":
        notes.append(note("failed", error=run.result.error))
    if v.get("mismatch"):
        notes.append(note("output_mismatch", baseline=base.name, detail=v["mismatch"]))
    return notes + [note("warning", code=w.code, message=w.message) for w in run.result.warnings]


def set_aside(run: Run) -> int:
    """Repeats of the run set aside as disturbed and redone (`Repeat.set_aside`): left out of its figures."""
    return sum(1 for rep in run.result.timing.repeats if rep.set_aside)


def apply_gate(gate: Gate, pairs, rules: Rules) -> list[GateOutcome]:
    """--fail-on over every compared row of each workload that has the gated figure: a regression
    fails only when conclusive, in the figure's direction; one that cannot be ruled out is
    inconclusive, with what would settle it. A gate no workload here has is an error."""
    out, matched = [], False
    for comp, runs, base in pairs:
        spec = gated_figure(gate, comp, base)
        if spec is None:
            continue
        matched = True
        for row, run in zip(comp.rows, runs, strict=True):
            if row.baseline or row.verdict in ("not_comparable", "failed"):
                continue
            out.append(gate_outcome(gate, spec, comp, run, base, rules))
    if not matched:
        raise ConfigError(f"--fail-on {gate.metric}: no workload compared has that figure; gate a throughput "
                          f"({', '.join(WORK)}) or a column key the workloads declare (bench compare --json)")
    return out


def gated_figure(gate: Gate, comp: WorkloadComparison, base: Run) -> tuple[str | None, str] | None:
    """(the declared figure's key or None for a throughput, which way is better) of a gate in this
    workload; None where the workload has no such figure."""
    if gate.metric in WORK:
        return None, "higher"
    spec = next((f for f in base.figures if figure_key(f.key) == gate.metric), None)
    if spec is None:
        return None
    if spec.better == "none":
        raise ConfigError(f"--fail-on {gate.metric}: {comp.workload}'s {spec.label} has no better direction, so no "
                          "change of it is a regression; gate a figure that is better higher or lower")
    return spec.key, spec.better


def gate_outcome(gate: Gate, spec, comp, run: Run, base: Run, rules: Rules) -> GateOutcome:
    key, better = spec
    if key is None:
        s = verdicts.speedup(run, base, gate.metric, rules.min_repeats, rules.min_effect)
    else:
        s = verdicts.figure_speedup(run, base, gate.metric, key, rules.min_repeats, rules.min_effect)
    values = verdicts.sides(run, base, gate.metric, key)
    outcome = (key is not None and verdicts.zero_sided(values, better)) or verdicts.gate(s, gate.limit, better)
    hint = verdicts.gate_hint(s, run, base, values, gate.limit, better) if outcome == "inconclusive" else None
    return GateOutcome(gate=gate, workload=comp.workload, run=run.name, baseline=base.name, outcome=outcome,
                       speedup=s, better=better, figure=key, hint=hint)


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else k, v, out)
    else:
        out[prefix] = value


def environment_diff(loaded) -> EnvironmentDiff:
    """Keys of the environment whose values differ between the reports."""
    flat = []
    for _, report in loaded:
        f: dict = {}
        _flatten("", plain(report.environment), f)
        flat.append(f)
    keys = sorted({k for f in flat for k in f})
    rows = [(k, [f.get(k) for f in flat]) for k in keys
            if len({repr(f.get(k)) for f in flat}) > 1 and not k.endswith("boot_time")]
    return EnvironmentDiff(files=[p for p, _ in loaded], rows=rows)
