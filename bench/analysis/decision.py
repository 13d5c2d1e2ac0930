"""The decision first: one row per box of a study's answers, and one verdict per question across boxes.

A box is the reports one `bench study` wrote (they share `Report.study.id`), named by its label, else
its device and host. Its answers, each a value with its interval or bracket, or null with a code for
why (words in bench/render/words.py):

    finetune     samples/s of blender-finetune, with its 95 % interval (bench/model/derive.py)
    capacity     the highest offered rate whose p99s met the SLOs, bracketed by the lowest that did not,
                 each side's validity (bench/analysis/serving.py, the search's own rule)
    usd_per_1m   USD per million requests served at capacity: the box's hourly price over the requests an
                 hour holds at capacity (the bracket's other end gives the other bound)
    usd_per_epoch USD per fine-tune epoch of the study's `epoch_samples`, its interval from the throughput's
    energy       device joules per request at the capacity rate, as the report names them: `session`
                 (Energy.session_per_request_j: the session's energy, idle gaps between requests included, over
                 its completed requests) and `busy` (Energy.busy_per_request_j: the energy of its busy spans
                 alone, the idle power over the idle time taken out: what a box kept busy would spend)

Prices are the study's (`[prices]`), after any that `bench compare --price` gives. Across boxes, each
question gets one verdict against the baseline box: fine-tune, the speedup of bench/analysis/verdicts.py
(Welch's t on the repeats' log throughputs); capacity, the ratio of the brackets — low = the box's
lowest possible capacity over the baseline's highest, high the other way — `more` or `less` only where
the brackets do not overlap, `overlap` (no verdict) where they do. Nothing here is a sentence.
"""

from __future__ import annotations

import math

from bench.analysis.comparison import BoxRow, Capacity, Costing, Decision, Energy, Figure, Note, QuestionVerdict
from bench.analysis.cost import hourly, price_for, price_of
from bench.analysis.runs import Run
from bench.analysis.serving import RATE_KEYS, serving_curves
from bench.analysis.verdicts import speedup
from bench.core.prices import PriceSpec

FINETUNE = "blender-finetune"


def decisions(runs: list[Run], costing: Costing | None = None, min_repeats: int = 3,
              min_effect: float = 0.02) -> list[Decision]:
    """One Decision per study among the runs (reports without a study are left to the other tables)."""
    by_study: dict[str, dict[str, list[Run]]] = {}
    for run in runs:
        rec = run.report.study
        if rec is not None:
            by_study.setdefault(rec.study.name, {}).setdefault(rec.id, []).append(run)
    out = []
    for name, boxes in by_study.items():
        rows = [box_row(rs, costing) for rs in boxes.values()]
        _unique_boxes(rows)
        out.append(Decision(study=name, question=next(iter(boxes.values()))[0].report.study.study.question,
                            boxes=rows, verdicts=verdicts(rows, boxes, min_repeats, min_effect)))
    return out


def box_name(run: Run) -> str:
    r = run.report
    if r.label and r.label.strip():
        return " ".join(r.label.split())[:40]
    return f"{run.device_label} · {r.environment.host.get('hostname') or '?'}"


def _unique_boxes(rows: list[BoxRow]) -> None:
    seen: dict[str, int] = {}
    for row in rows:
        seen[row.box] = seen.get(row.box, 0) + 1
    for i, row in enumerate(rows):
        if seen[row.box] > 1:
            rows[i] = row.model_copy(update={"box": f"{row.box} #{row.study_id[:6]}"})


def study_costing(run: Run, costing: Costing | None) -> Costing:
    """Prices given to compare first (they win), then the study's own."""
    given = list(costing.prices) if costing else []
    own = [price_of(PriceSpec(p.match, p.usd_per_hour, p.devices, p.source))
           for p in run.report.study.study.prices]
    return Costing(prices=tuple(given + own), kwh_usd=costing.kwh_usd if costing else None)


def box_row(runs: list[Run], costing: Costing | None) -> BoxRow:
    first = runs[0]
    rec, priced = first.report.study, study_costing(first, costing)
    ft = next((r for r in runs if r.workload == FINETUNE and r.result.status == "ok"), None)
    row = BoxRow(box=box_name(first), study=rec.study.name, study_id=rec.id, device=first.device_label,
                 finetune=finetune(ft, runs), finetune_run=ft.name if ft else None,
                 usd_per_epoch=epoch_cost(ft, priced, rec.study.epoch_samples),
                 epoch_samples=rec.study.epoch_samples, warnings=_warnings(runs), cut=_cut(runs))
    return _with_capacity(row, runs, priced)


def _warnings(runs: list[Run]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in runs:
        for code in sorted(r.result.codes()):
            out[code] = out.get(code, 0) + 1
    return out


def _cut(runs: list[Run]) -> list[str]:
    rec = runs[0].report.study
    ran = {r.report.study.run for r in runs}
    return [run.name for run in rec.study.runs if run.name not in ran]


def finetune(ft: Run | None, runs: list[Run]) -> Figure:
    if ft is None:
        asked = any(FINETUNE in (run.config.get("workloads") or []) for run in runs[0].report.study.study.runs)
        failed = any(r.workload == FINETUNE for r in runs)
        return Figure(why="failed" if failed else "not_run" if asked else "no_result")
    i = ft.throughput("samples_per_s")
    return Figure(value=i.value, low=i.ci_low, high=i.ci_high) if i.value else Figure(why="no_result")


def epoch_cost(ft: Run | None, costing: Costing, samples: int | None) -> Figure:
    """USD per epoch: the hourly price times the epoch's hours at the throughput (its interval's ends swap)."""
    if ft is None:
        return Figure(why="no_result")
    if samples is None:
        return Figure(why="no_epoch")
    price = price_for(ft, costing)
    if price is None:
        return Figure(why="no_price")
    usd = hourly(ft, price) / 3600
    i = ft.throughput("samples_per_s")

    def cost(rate):
        return usd * samples / rate if rate else None

    return Figure(value=cost(i.value), low=cost(i.ci_high), high=cost(i.ci_low))


def _with_capacity(row: BoxRow, runs: list[Run], costing: Costing) -> BoxRow:
    curves = [c for c in serving_curves(runs, costing) if c.capacity.code != "no_slo"]
    if not curves:
        asked = any("blender-serve" in (run.config.get("workloads") or [])
                    for run in runs[0].report.study.study.runs)
        return row.model_copy(update={"capacity_why": "not_run" if asked else "no_result"})
    c = curves[0]
    at = _capacity_run(runs, c)
    update = {"capacity": c.capacity, "slo_ttft_s": c.slo_ttft_s, "slo_tpot_s": c.slo_tpot_s,
              "capacity_params": _curve_identity(runs, c),
              "slo_e2e_s": c.slo_e2e_s, "usd_per_1m_requests": request_cost(at, c.capacity, costing),
              "energy": energy(at)}
    return row.model_copy(update=update)


def _curve_identity(runs: list[Run], curve) -> dict:
    """What every point of a capacity's curve shares: its identity but the rate (the same at each point)."""
    first = next((r for r in runs if r.report.run_id == curve.run_id and r.serves), None)
    return {k: v for k, v in (first.params if first else {}).items() if k not in RATE_KEYS}


def _capacity_run(runs: list[Run], curve) -> Run | None:
    """The result at the capacity's rate (the highest that met the SLOs)."""
    q = curve.capacity.qps
    return next((r for r in runs if r.report.run_id == curve.run_id and q is not None and
                 (r.result.workload_metrics or {}).get("offered_qps") == q), None)


def request_cost(run: Run | None, cap: Capacity, costing: Costing) -> Figure:
    """USD per 1M requests at capacity: at the rate that met (high) and at the one that missed (low)."""
    if run is None or not cap.qps:
        return Figure(why="no_capacity")
    if cap.unsettled is not None:  # a price per request of a capacity the probes do not support reads as settled
        return Figure(why="unsettled")
    price = price_for(run, costing)
    if price is None:
        return Figure(why="no_price")
    per_s = hourly(run, price) / 3600 * 1e6
    return Figure(value=per_s / cap.qps, low=per_s / cap.below_qps if cap.below_qps else None, high=per_s / cap.qps)


def energy(run: Run | None) -> Energy:
    """Device joules per request at the capacity rate, as the report names them (Energy.session_per_request_j:
    the session's, idle gaps in; Energy.busy_per_request_j: its busy spans' alone), each null with the report's
    reason where it was not measured."""
    if run is None:
        return Energy(session_j=Figure(why="no_capacity"), busy_j=Figure(why="no_capacity"))
    e = run.result.energy
    if e.session_per_request_j is None:
        measured = e.device is not None and e.device.joules is not None
        # this release always says why a per-request figure is null: a measured one without a reason is older
        why = "not_measured" if not measured else "not_recorded" if e.per_request_reason is None else \
            "no_requests" if _completed(run) == 0 else "not_measured"
        detail = e.per_request_reason or (e.device.reason if e.device is not None else None)
        return Energy(session_j=Figure(why=why, detail=detail), busy_j=Figure(why=why, detail=detail))
    busy = Figure(value=e.busy_per_request_j) if e.busy_per_request_j is not None else \
        Figure(why="not_measured", detail=e.per_request_reason)
    return Energy(session_j=Figure(value=e.session_per_request_j), busy_j=busy)


def _completed(run: Run) -> int:
    """Measured requests that completed, over the counted repeats."""
    n = 0
    for rep in run.result.timing.counted:
        log = rep.requests
        if log is None:
            continue
        for i, finish in enumerate(log.finish_s):
            measured = log.measured is None or log.measured[i]
            n += int(finish is not None and measured and (log.error is None or log.error[i] is None))
    return n


# ---- across boxes: one verdict per question ---------------------------------------------------------

def verdicts(rows: list[BoxRow], boxes: dict[str, list[Run]], min_repeats: int, min_effect: float):
    if len(rows) < 2:
        return []
    runs = list(boxes.values())
    base, base_runs = rows[0], runs[0]
    out = []
    for row, rs in zip(rows[1:], runs[1:], strict=True):
        out.append(finetune_verdict(row, base, rs, base_runs, min_repeats, min_effect))
        out.append(capacity_verdict(row, base))
    return out


def _run_named(runs: list[Run], name: str | None) -> Run | None:
    return next((r for r in runs if r.name == name), None)


def finetune_verdict(row, base, runs, base_runs, min_repeats, min_effect) -> QuestionVerdict:
    a, b = _run_named(runs, row.finetune_run), _run_named(base_runs, base.finetune_run)
    kw = {"question": "finetune", "box": row.box, "baseline": base.box}
    if a is None or b is None:
        return QuestionVerdict(verdict="no_verdict", reason=Note(code="no_throughput"), **kw)
    if a.params != b.params:
        diff = sorted(k for k in set(a.params) | set(b.params) if a.params.get(k) != b.params.get(k))
        return QuestionVerdict(verdict="not_comparable", reason=Note(code="not_comparable",
                                                                     values={"differences": diff}), **kw)
    s = speedup(a, b, "samples_per_s", min_repeats, min_effect)
    verdict = {"faster": "more", "slower": "less", "same": "same"}.get(s.verdict, "no_verdict")
    return QuestionVerdict(ratio=s.ratio, low=s.ci_low, high=s.ci_high, verdict=verdict, method=s.method,
                           speedup=s, reason=s.reason, **kw)


def _ends(c: Capacity) -> tuple[float, float]:
    """The lowest and highest the capacity can be: [qps, below) of a bracket, [qps, inf) at least, [0, below)."""
    low = c.qps if c.qps is not None else 0.0
    high = c.below_qps if c.below_qps is not None else math.inf
    return low, high


def capacity_verdict(row: BoxRow, base: BoxRow) -> QuestionVerdict:
    kw = {"question": "capacity", "box": row.box, "baseline": base.box, "method": "bracket"}
    if row.capacity is None or base.capacity is None:
        return QuestionVerdict(verdict="no_verdict", reason=Note(code="no_values"), **kw)
    slos = ("slo_ttft_s", "slo_tpot_s", "slo_e2e_s")
    diff = [s for s in slos if getattr(row, s) != getattr(base, s)]
    a, b = row.capacity_params, base.capacity_params  # the same model, requests and load shape, or no verdict
    diff += sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if diff:
        return QuestionVerdict(verdict="not_comparable", reason=Note(code="not_comparable",
                                                                     values={"differences": diff}), **kw)
    shaky = next((r for r in (row, base) if r.capacity.unsettled is not None), None)
    if shaky is not None:  # the machine moved under a search: its bracket is no capacity to compare
        return QuestionVerdict(verdict="no_verdict", reason=Note(code="unsettled", values={
            "box": shaky.box, "why": shaky.capacity.unsettled.code}), **kw)
    (a_lo, a_hi), (b_lo, b_hi) = _ends(row.capacity), _ends(base.capacity)
    low = a_lo / b_hi if b_hi not in (0, math.inf) else 0.0
    high = a_hi / b_lo if b_lo else math.inf
    ma, mb = _mid(a_lo, a_hi), _mid(b_lo, b_hi)
    mid = ma / mb if ma and mb else None
    verdict = "more" if low > 1 else "less" if high < 1 else "overlap"
    shaky = False in (row.capacity.qps_valid, row.capacity.below_valid, base.capacity.qps_valid,
                      base.capacity.below_valid)
    return QuestionVerdict(ratio=mid, low=low, high=None if math.isinf(high) else high, verdict=verdict,
                           provisional=shaky, **kw)


def _mid(lo: float, hi: float) -> float | None:
    """A bracket's geometric middle (its lower end where it has no upper one)."""
    if math.isinf(hi):
        return lo or None
    return math.sqrt(lo * hi) if lo else None
