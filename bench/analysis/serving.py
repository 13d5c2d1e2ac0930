"""Serving curves: latency against offered load per run, the capacity at its SLOs, who served, and
whether each tail verdict can be trusted.

A serving workload (blender-serve) writes one result per offered rate. Here the results of one run
that differ only in the rate become a curve, and its capacity is read off it: the highest rate whose
p99s met the SLOs (the result's `slo.met`), bracketed above by the lowest higher rate that did not.
The bracket is the capacity's uncertainty: the search (or the rates given) did not look between the
two; each side says whether its verdict held at 99 % confidence (`slo.valid`, LoadGen's early
stopping) or is provisional. "At least" where every rate met it; "below" where none did.

Tail notes (code `tail`): per SLO of a result, its p99 (LoadGen's nearest rank) against the bound,
how many requests were judged and over, and what early stopping makes of them
(bench/serve/maths/tails.py): holds, refuted, or how many more requests a claim would need with none
of them over. The capacity bracket is the serving maths' (bench/serve/maths/capacity.py `bracket`),
the same rule the search stops by.
"""

from __future__ import annotations

import math

from bench.analysis.comparison import (Capacity, CapacityCost, CurvePoint, Note, Served, ServingCurve, Settle,
                                      Unsettled)
from bench.analysis.cost import hourly, price_for
from bench.analysis.table import number
from bench.analysis.verdicts import withheld
from bench.serve.maths import tails
from bench.serve.maths.identity import NOTED, noted
from bench.serve.maths.capacity import BRACKET, Probe, bracket, quantile_interval
from bench.serve.maths.metrics import NOT_JUDGED, SLOS, judged, nearest_rank, sessions

RATE_KEYS = ("qps", "requests", "arrivals")  # what may differ between the points of one curve
SERVED_FIELDS = ("engine", "server", "endpoint", "static_shapes")  # a difference here is noted


def _stat(value, name: str):
    return number(getattr(value, name, None))


def _count(value) -> int | None:
    return value if type(value) is int and value >= 0 else None


def served(run) -> Served | None:
    """Who served a serving run; a report from before `served_by` was served in-process, its
    static_shapes in its identity."""
    s = run.result.served_by
    if s is not None:
        return Served(engine=s.engine, server=s.server, endpoint=s.endpoint, api=s.api, local=s.local,
                      started_by_run=s.started_by_run, static_shapes=s.static_shapes, telemetry=s.telemetry)
    if not run.serves:
        return None
    shapes = run.result.params.get("static_shapes")
    return Served(engine="in-process", static_shapes=shapes if isinstance(shapes, bool) else None)


def benchs_engine(s: Served) -> bool:
    """bench's own engine served: in-process, or bench serve (started by the run, or saying it is bench) —
    its settings in the params are the ones it ran with (another server's are not bench's to know)."""
    return s.engine == "in-process" or s.started_by_run or s.server in ("bench", "bench serve")


def served_notes(run, base) -> list[Note]:
    """A serving row served otherwise than its baseline — engine, server, endpoint, static shapes, bench's
    engine settings (bench/serve/maths/identity.py NOTED): the stacks are compared, and the note says so."""
    a, b = served(run), served(base)
    if a is None or b is None or run is base:
        return []
    fields = SERVED_FIELDS if a.engine == b.engine == "http" else ("engine", "static_shapes")
    diff = [[k, getattr(a, k), getattr(b, k)] for k in fields if getattr(a, k) != getattr(b, k)]
    mine, theirs = noted(run.result.params), noted(base.result.params)
    diff += [[k, mine.get(k), theirs.get(k)] for k in NOTED
             if k != "static_shapes" and mine.get(k) != theirs.get(k) and benchs_engine(a) and benchs_engine(b)]
    return [Note(code="served_by", run=run.name, values={"baseline": base.name, "differences": diff})] if diff else []


def tail_notes(name: str | None, wm: dict) -> list[Note]:
    """Each SLO verdict of a serving result, with what early stopping makes of its counts."""
    out = []
    for slo in SLOS:
        bound, n, over = number(wm.get(f"slo.{slo}_s")), _count(wm.get(f"slo.{slo}.n")), _count(wm.get(f"slo.{slo}.over"))
        if bound is None or n is None or over is None or over > n or n == 0:
            continue
        c = tails.claim(n, over)
        out.append(Note(code="tail", run=name, values={
            "slo": slo, "p99_s": number(wm.get(f"slo.{slo}.p99_s")), "bound_s": bound, "n": n, "over": over,
            "met": c.met, "holds": c.holds, "refuted": c.refuted, "needed": c.needed, "more": c.more,
            "qps": number(wm.get("offered_qps")), "confidence": c.confidence}))
    return out


def serving_curves(runs, costing=None) -> list[ServingCurve]:
    """One curve per run and serving workload: its results at each offered rate."""
    groups: dict[tuple, list] = {}
    for run in runs:
        wm = run.result.workload_metrics or {}
        if run.result.status not in ("ok", "failed") or number(wm.get("offered_qps")) is None:
            continue  # a failed rate (most of its requests failed) is a point that missed; an interrupted one is none
        key = (run.report.run_id, run.workload,
               repr(sorted((k, repr(v)) for k, v in run.params.items() if k not in RATE_KEYS)))
        groups.setdefault(key, []).append(run)
    return [curve(rs, costing) for rs in groups.values()]


def point(run) -> CurvePoint:
    wm = run.result.workload_metrics
    met, valid = wm.get("slo.met"), wm.get("slo.valid")
    return CurvePoint(qps=wm["offered_qps"], achieved_qps=achieved(wm),
                      ttft_p50_s=_stat(wm.get("ttft_s"), "median"), ttft_p99_s=_stat(wm.get("ttft_s"), "p99"),
                      itl_p99_s=_stat(wm.get("itl_s"), "p99"), tpot_p99_s=_stat(wm.get("tpot_s"), "p99"),
                      e2e_p99_s=_stat(wm.get("e2e_s"), "p99"), slo_met=met if isinstance(met, bool) else None,
                      slo_valid=valid if isinstance(valid, bool) else None,
                      slo_attainment=number(wm.get("slo_attainment")), requests=_count(wm.get("requests")),
                      errors=_count(wm.get("errors")), more=_more(wm), **_per_slo(wm))


def _per_slo(wm: dict) -> dict:
    """Which SLOs missed at a rate, and which verdicts there are provisional: each mark on its own SLO."""
    missed, provisional = [], []
    for slo in SLOS:
        n, over = _count(wm.get(f"slo.{slo}.n")), _count(wm.get(f"slo.{slo}.over"))
        if n is None or over is None or over > n or n == 0 or number(wm.get(f"slo.{slo}_s")) is None:
            continue
        c = tails.claim(n, over)
        missed += [] if c.met else [slo]
        provisional += [] if c.valid else [slo]
    return {"missed": missed, "provisional": provisional}


def _more(wm: dict) -> int | None:
    """Requests a provisional verdict at this rate still needs, if none more were over (the most of any SLO)."""
    needs = []
    for slo in SLOS:
        n, over = _count(wm.get(f"slo.{slo}.n")), _count(wm.get(f"slo.{slo}.over"))
        if n is not None and over is not None and over <= n and number(wm.get(f"slo.{slo}_s")) is not None:
            c = tails.claim(n, over)
            needs.append(c.more if c.met else None)  # a miss needs more requests too, but no count says how many
    return None if not needs or None in needs else max(needs)


def achieved(wm: dict) -> float | None:
    """The achieved rate: an interval's value (a number in reports before it had one)."""
    value = wm.get("achieved_qps")
    return number(getattr(value, "value", value))


def probe(run, p: CurvePoint, slos: dict[str, float | None]) -> Probe:
    """A point as the capacity reads it: its verdict, each SLO'd figure's p99 with its interval (from
    the request log, failed requests over every bound), and why it is not to be trusted, if it is not."""
    found = sessions(run.result.timing.counted)
    p99s = []
    for slo, bound in ((k, b) for k, b in slos.items() if b is not None):
        latencies = sorted(v for s in found for r in s.requests if r.error not in NOT_JUDGED
                           for v in [(judged(r) or {}).get(slo, math.inf)])  # as the SLO verdict counts them
        if latencies:
            lo, hi = quantile_interval(latencies)
            p99s.append((slo, nearest_rank(latencies), lo, hi, bound))
    why = withheld(run)
    return Probe(p.qps, p.slo_met, p.slo_valid, tuple(p99s), why.values.get("detail") or why.code if why else None)


def curve(runs, costing) -> ServingCurve:
    ordered = sorted(runs, key=lambda r: r.result.workload_metrics["offered_qps"])
    points = [point(r) for r in ordered]
    first = runs[0]
    wm = first.result.workload_metrics
    slos = {k: number(wm.get(f"slo.{k}_s")) for k in SLOS}
    cap = capacity(points, [probe(r, p, slos) for r, p in zip(ordered, points, strict=True)])
    notes = [n for r in ordered for n in tail_notes(r.name, r.result.workload_metrics)]
    return ServingCurve(workload=first.workload, run=first.name, run_id=first.report.run_id,
                        device=first.device_label, served=served(first), slo_ttft_s=number(wm.get("slo.ttft_s")),
                        slo_e2e_s=number(wm.get("slo.e2e_s")), slo_tpot_s=number(wm.get("slo.tpot_s")),
                        points=points, capacity=cap, cost=capacity_cost(first, costing, cap), notes=notes)


def capacity_cost(run, costing, cap: Capacity) -> CapacityCost | None:
    """USD per 1k requests served at capacity: the least a request can cost while the SLO holds.
    The capacity lies between qps and the lowest rate that missed (below), so the cost lies between
    the cost at `below` and the cost at qps."""
    price = price_for(run, costing)
    if price is None or not cap.qps:
        return None
    per_1k = 1000 * hourly(run, price) / 3600
    return CapacityCost(usd=per_1k / cap.qps, usd_low=per_1k / cap.below_qps if cap.below_qps else None,
                        price_source=price.source)


def capacity(points: list[CurvePoint], probes: list[Probe] | None = None) -> Capacity:
    """The highest rate that met the SLO and the lowest higher one that did not (None where there
    is none): a bracket, at least the highest rate tried, below the lowest, or no SLO to judge by;
    each side with its verdict's confidence, and why the probes do not settle it where they do not."""
    b = bracket(probes if probes is not None else [Probe(p.qps, p.slo_met, p.slo_valid) for p in points])
    unsettled = Unsettled(code=b.unsettled, values=dict(zip(UNSETTLED[b.unsettled], b.why, strict=True))) \
        if b.unsettled else None
    return Capacity(code=b.code, qps=b.qps, below_qps=b.below_qps, qps_valid=b.qps_valid, below_valid=b.below_valid,
                    unsettled=unsettled, settle=settle(b, points))


def settle(b, points: list[CurvePoint]) -> list[Settle]:
    """What would settle a capacity: a quieter machine where the probes do not; else more requests at a
    side whose verdict is provisional (LoadGen's early stopping: requests needed with none more over), a
    probe between sides more than 15 % apart, a rate beyond every one tried."""
    if b.unsettled:
        return [Settle(code="quieter")]
    out = []
    for qps, valid in ((b.qps, b.qps_valid), (b.below_qps, b.below_valid)):
        point = next((p for p in points if p.qps == qps), None)
        if qps is not None and valid is False and point is not None:
            out.append(Settle(code="more_requests", values={"qps": qps, "more": point.more}))
    if b.code == "bracket" and b.below_qps / b.qps > BRACKET:
        out.append(Settle(code="between", values={"low": b.qps, "high": b.below_qps}))
    if b.code == "at_least":
        out.append(Settle(code="higher", values={"qps": b.qps}))
    if b.code == "below":
        out.append(Settle(code="lower", values={"qps": b.below_qps}))
    return out


# the values of each reason a search does not settle the capacity (bench/serve/maths/capacity.py _unsettled)
UNSETTLED = {"disturbed": ("qps", "why"), "verdicts": ("missed_qps", "met_qps"),
             "latency": ("slo", "low_qps", "low_p99_s", "high_qps", "high_p99_s")}
