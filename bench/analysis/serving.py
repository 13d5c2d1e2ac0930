"""Serving curves: latency against offered load per run, and the capacity at its SLO.

A serving workload (blender-serve) writes one result per offered rate. Here the results of one run
that differ only in the rate become a curve, and its capacity is read off it: the highest rate whose
p99 met the SLO (the result's `slo.met`), bracketed above by the lowest higher rate that did not.
The bracket is the capacity's uncertainty: the search (or the rates given) did not look between the
two. "At least" where every rate met it; "below" where none did.
"""

from __future__ import annotations

from bench.analysis.compare import make_runs
from bench.analysis.cost import devices_used, price_for

RATE_KEYS = ("qps", "requests", "arrivals")  # what may differ between the points of one curve


def _stat(value, name: str):
    return getattr(value, name, None) if value is not None else None


def serving_curves(loaded, costing=None) -> list[dict]:
    groups: dict[tuple, list] = {}
    for run in make_runs(loaded)[0]:
        wm = run.result.workload_metrics or {}
        if run.result.status != "ok" or wm.get("offered_qps") is None:
            continue
        key = (run.report.run_id, run.workload,
               repr(sorted((k, repr(v)) for k, v in run.params.items() if k not in RATE_KEYS)))
        groups.setdefault(key, []).append(run)
    curves = []
    for (_, workload, _), runs in groups.items():
        points = []
        for r in sorted(runs, key=lambda r: r.result.workload_metrics["offered_qps"]):
            wm = r.result.workload_metrics
            points.append({"qps": wm["offered_qps"], "achieved_qps": wm.get("achieved_qps"),
                           "ttft_p50_s": _stat(wm.get("ttft_s"), "median"), "ttft_p99_s": _stat(wm.get("ttft_s"), "p99"),
                           "e2e_p99_s": _stat(wm.get("e2e_s"), "p99"), "slo_met": wm.get("slo.met"),
                           "slo_attainment": wm.get("slo_attainment"), "requests": wm.get("requests")})
        first = runs[0]
        slo = first.result.workload_metrics.get("slo.ttft_s")
        curve = {"workload": workload, "run": first.name, "run_id": first.report.run_id,
                 "device": first.device_label, "slo_ttft_s": slo,
                 "slo_e2e_s": first.result.workload_metrics.get("slo.e2e_s"), "points": points, **capacity(points)}
        curve.update(capacity_cost(first, costing, curve["capacity_qps"], curve["capacity_below_qps"]))
        curves.append(curve)
    return curves


def capacity_cost(run, costing, qps, below) -> dict:
    """USD per 1k requests served at capacity: the least a request can cost while the SLO holds.
    The capacity lies between qps and the lowest rate that missed (below), so the cost lies between
    the cost at `below` and the cost at qps."""
    price = price_for(run, costing)
    if price is None or not qps:
        return {}
    hourly = price.usd_per_hour * devices_used(run) / price.devices
    per_1k = 1000 * hourly / 3600
    return {"usd_per_1k_requests_at_capacity": per_1k / qps,
            "usd_per_1k_requests_at_capacity_low": per_1k / below if below else None,
            "price_source": price.source}


def capacity(points: list[dict]) -> dict:
    """{capacity_qps, capacity_below_qps, capacity_text}: the highest rate that met the SLO and the
    lowest higher one that did not (None where there is none)."""
    judged = [p for p in points if p["slo_met"] is not None]
    if not judged:
        return {"capacity_qps": None, "capacity_below_qps": None, "capacity_text": "no SLO to judge by"}
    passed = [p["qps"] for p in judged if p["slo_met"]]
    if not passed:
        low = min(p["qps"] for p in judged)
        return {"capacity_qps": None, "capacity_below_qps": low,
                "capacity_text": f"below {low:g} requests/s (the lowest rate tried missed the SLO)"}
    best = max(passed)
    above = [p["qps"] for p in judged if not p["slo_met"] and p["qps"] > best]
    if not above:
        return {"capacity_qps": best, "capacity_below_qps": None,
                "capacity_text": f"at least {best:g} requests/s (every rate tried met the SLO)"}
    hi = min(above)
    return {"capacity_qps": best, "capacity_below_qps": hi,
            "capacity_text": f"{best:g} requests/s (met the SLO; {hi:g} did not)"}
