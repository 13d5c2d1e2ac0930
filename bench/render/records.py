"""The comparison as flat records (one per run x workload: the CSV's rows, the DataFrame's, the
JSON's) and as the `bench compare --json` document (docs/compare-format.md)."""

from __future__ import annotations

from bench.analysis.comparison import Comparison, Cost, Note, Row, WorkloadComparison
from bench.render import words

FORMAT_VERSION = 3  # of `bench compare --json` (docs/compare-format.md)


def _interval(key: str, value, lo, hi) -> dict:
    return {key: value, f"{key}_ci_low": lo, f"{key}_ci_high": hi}


def cost_fields(c: Cost | None) -> dict:
    """The cost keys of a record: at the instance's price, and of the energy at the kWh price."""
    if c is None:
        return {}
    out = {}
    if c.price is not None:
        out = {**_interval(c.key, c.value, c.ci_low, c.ci_high), "price_usd_per_hour": c.price.usd_per_hour,
               "price_devices": c.price.devices, "devices_used": c.devices_used,
               "usd_per_hour_used": c.usd_per_hour_used, "price_source": c.price.source}
    if c.priced_energy:
        out[f"energy_{c.key}"] = c.energy
    return out


def record(row: Row, comp: WorkloadComparison) -> dict:
    """One run's values under the column keys, and what identifies it."""
    r, m, s = row.run, comp.main_metric, row.speedup
    out = {"workload": r.workload, "variant": r.variant, "run": r.name, "label": r.label, "file": r.path,
           "run_id": r.run_id, "created_at": r.created_at, "status": r.status, "origin": r.origin,
           "device": r.device, "backend": r.backend, "host": r.host, "metric": m,
           **_interval(m, row.lead.value, row.lead.ci_low, row.lead.ci_high), f"{m}_method": row.lead.method,
           "unit": comp.lead.unit,
           **_interval("speedup", *((s.ratio, s.ci_low, s.ci_high) if s else (None, None, None))),
           "speedup_method": words.method(s) if s else None,
           "verdict": row.verdict, "verdict_short": words.short(row), "verdict_text": words.verdict_text(row),
           "verdict_reason": s.reason.code if s and s.reason else None,
           "comparable": row.comparable, "baseline": row.baseline, "repeats": row.repeats,
           "set_aside": row.set_aside}
    for key, value in row.figures.items():
        out.setdefault(key, value)
    out.update({"warnings": ", ".join(row.warnings), "output_mismatch": row.mismatch})
    out.update(cost_fields(row.cost))
    out.update({f"param_{k}": v for k, v in r.params.items()})
    return out


def records(comparison: Comparison) -> list[dict]:
    return [record(row, comp) for comp in comparison for row in comp.rows]


def note_record(note: Note) -> dict:
    text = words.hint_text(note) if note.code in words.HINTS else words.sentence(note)
    return {"code": note.code, "run": note.run, "values": note.model_dump(mode="json")["values"], "text": text}


def workload_document(comp: WorkloadComparison) -> dict:
    return {"workload": comp.workload, "variant": comp.variant, "main_metric": comp.main_metric,
            "baseline": comp.baseline.name, "baseline_run_id": comp.baseline.run_id,
            "columns": [{"key": c.key, "label": c.label, "unit": c.unit, "better": c.better} for c in comp.columns],
            "rows": [record(row, comp) for row in comp.rows],
            "notes": [note_record(n) for row in comp.rows for n in row.notes]}


def serving_document(comparison: Comparison) -> list[dict]:
    """The serving curves with their capacity in words and, where priced, its cost."""
    out = []
    for c in comparison.serving:
        cost = {} if c.cost is None else {"usd_per_1k_requests_at_capacity": c.cost.usd,
                                          "usd_per_1k_requests_at_capacity_low": c.cost.usd_low,
                                          "price_source": c.cost.price_source}
        out.append({**c.model_dump(mode="json", exclude={"capacity", "cost", "notes"}), "capacity": c.capacity.code,
                    "capacity_qps": c.capacity.qps, "capacity_below_qps": c.capacity.below_qps,
                    "capacity_qps_valid": c.capacity.qps_valid, "capacity_below_valid": c.capacity.below_valid,
                    "capacity_text": words.capacity_text(c.capacity), "served_text": words.served_text(c.served), **cost,
                    "notes": [note_record(n) for n in c.notes]})
    return out


FIGURE_VERDICTS = {"faster": "higher", "slower": "lower"}  # a declared figure is not a speed


def gate_document(comparison: Comparison) -> list[dict]:
    return [{"outcome": g.outcome, "metric": g.gate.metric, "figure": g.figure, "better": g.better,
             "limit": g.gate.limit, "workload": g.workload, "run": g.run, "baseline": g.baseline,
             "speedup": g.speedup.ratio, "speedup_ci_low": g.speedup.ci_low, "speedup_ci_high": g.speedup.ci_high,
             "verdict": g.speedup.verdict if g.figure is None else FIGURE_VERDICTS.get(g.speedup.verdict,
                                                                                       g.speedup.verdict),
             "verdict_reason": g.speedup.reason.code if g.speedup.reason else None,
             "hint": note_record(g.hint) if g.hint else None, "what": words.gate_text(g)}
            for g in comparison.gates]


def document(comparison: Comparison, bench_version: str, created_at: str) -> dict:
    """`bench compare --json`: every workload's columns (with units), rows and notes, the notes of
    the whole comparison, scaling, serving curves and every gate's outcome, under its own format
    version."""
    return {"format": "bench-compare", "format_version": FORMAT_VERSION, "bench_version": bench_version,
            "created_at": created_at, "min_repeats": comparison.min_repeats, "min_effect": comparison.min_effect,
            "notes": [note_record(n) for n in comparison.notes],
            "workloads": [workload_document(comp) for comp in comparison],
            "scaling": [{**g.model_dump(mode="json", exclude={"notes"}), "notes": [note_record(n) for n in g.notes]}
                        for g in comparison.scaling],
            "serving": serving_document(comparison), "gates": gate_document(comparison),
            "decisions": decision_document(comparison)}


def decision_document(comparison: Comparison) -> list[dict]:
    """Each study's decision: its boxes' answers as data, each verdict with its sentence."""
    from bench.render.decision_view import verdict_text

    return [{**d.model_dump(mode="json", exclude={"verdicts"}),
             "verdicts": [{**v.model_dump(mode="json"), "text": verdict_text(v)} for v in d.verdicts]}
            for d in comparison.decisions]
