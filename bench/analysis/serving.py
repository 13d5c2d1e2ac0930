"""Serving curves: latency against offered load per run, and the capacity at its SLO.

A serving workload (blender-serve) writes one result per offered rate. Here the results of one run
that differ only in the rate become a curve, and its capacity is read off it: the highest rate whose
p99 met the SLO (the result's `slo.met`), bracketed above by the lowest higher rate that did not.
The bracket is the capacity's uncertainty: the search (or the rates given) did not look between the
two. "At least" where every rate met it; "below" where none did.
"""

from __future__ import annotations

from bench.analysis.comparison import Capacity, CapacityCost, CurvePoint, ServingCurve
from bench.analysis.cost import hourly, price_for
from bench.analysis.table import number

RATE_KEYS = ("qps", "requests", "arrivals")  # what may differ between the points of one curve


def _stat(value, name: str):
    return number(getattr(value, name, None))


def serving_curves(runs, costing=None) -> list[ServingCurve]:
    """One curve per run and serving workload: its results at each offered rate."""
    groups: dict[tuple, list] = {}
    for run in runs:
        wm = run.result.workload_metrics or {}
        if run.result.status != "ok" or number(wm.get("offered_qps")) is None:
            continue
        key = (run.report.run_id, run.workload,
               repr(sorted((k, repr(v)) for k, v in run.params.items() if k not in RATE_KEYS)))
        groups.setdefault(key, []).append(run)
    return [curve(rs, costing) for rs in groups.values()]


def point(run) -> CurvePoint:
    wm = run.result.workload_metrics
    met, requests = wm.get("slo.met"), wm.get("requests")
    return CurvePoint(qps=wm["offered_qps"], achieved_qps=number(wm.get("achieved_qps")),
                      ttft_p50_s=_stat(wm.get("ttft_s"), "median"), ttft_p99_s=_stat(wm.get("ttft_s"), "p99"),
                      e2e_p99_s=_stat(wm.get("e2e_s"), "p99"), slo_met=met if isinstance(met, bool) else None,
                      slo_attainment=number(wm.get("slo_attainment")),
                      requests=requests if type(requests) is int else None)


def curve(runs, costing) -> ServingCurve:
    points = [point(r) for r in sorted(runs, key=lambda r: r.result.workload_metrics["offered_qps"])]
    first = runs[0]
    wm = first.result.workload_metrics
    cap = capacity(points)
    return ServingCurve(workload=first.workload, run=first.name, run_id=first.report.run_id,
                        device=first.device_label, slo_ttft_s=number(wm.get("slo.ttft_s")),
                        slo_e2e_s=number(wm.get("slo.e2e_s")),
                        points=points, capacity=cap, cost=capacity_cost(first, costing, cap))


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


def capacity(points: list[CurvePoint]) -> Capacity:
    """The highest rate that met the SLO and the lowest higher one that did not (None where there
    is none): a bracket, at least the highest rate tried, below the lowest, or no SLO to judge by."""
    judged = [p for p in points if p.slo_met is not None]
    if not judged:
        return Capacity(code="no_slo")
    passed = [p.qps for p in judged if p.slo_met]
    if not passed:
        return Capacity(code="below", below_qps=min(p.qps for p in judged))
    best = max(passed)
    above = [p.qps for p in judged if not p.slo_met and p.qps > best]
    if not above:
        return Capacity(code="at_least", qps=best)
    return Capacity(code="bracket", qps=best, below_qps=min(above))
