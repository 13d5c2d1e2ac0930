"""What serving workloads share: the figures of an open-loop session, and the capacity search.

Figures, from every request of every repeat (bench/model/report.py RequestLog, on the run's clock):

    offered_qps       the rate asked for (--qps); realised_qps: (n - 1) / (last - first arrival)
    achieved_qps      (n - 1) / (last - first completion): completions per second; equal to the
                      realised rate where the device keeps up, its service rate where it does not
    ttft_s            first token - arrival (queueing included), p50 / p90 / p99
    e2e_s             last token - arrival
    queue_s           batch start - arrival
    new_tokens_per_s  new tokens over the session (first arrival to last completion)
    slo_attainment    the share of requests whose TTFT (and end-to-end latency, with --slo-e2e-ms)
                      met the SLO; goodput_rps: those requests per second of the session
    slo.met           the rate meets the SLO: p99 TTFT (and p99 end-to-end) within it

Capacity: the highest offered rate whose p99 meets the SLO, found by probing rates: doubling from
the first rate until one fails (halving if the first fails), then bisecting (geometrically) between
the highest rate that met it and the lowest that did not, until they are within 15 % or the probes
run out. The capacity is then known to lie between those two rates — that bracket is its
uncertainty, and `bench compare` shows it.
"""

from __future__ import annotations

import math

from bench.model.derive import summary

BRACKET = 1.15  # the search stops when the failing rate is within 15 % of the passing one
MIN_QPS = 1e-3


def _quantile_ok(values: list[float], limit: float | None) -> bool | None:
    if limit is None:
        return True
    if not values:
        return None
    s = summary(values)
    return s.p99 is not None and s.p99 <= limit


def serving_metrics(repeats, params: dict, slo_ttft_s: float | None, slo_e2e_s: float | None) -> dict:
    logs = [r.requests for r in repeats if r.requests is not None and r.requests.arrival_s]
    if not logs:
        return {}
    ttft, e2e, queue = [], [], []
    met = served_total = 0
    realised, achieved, token_rate, goodput = [], [], [], []
    for log in logs:
        served = [i for i, f in enumerate(log.finish_s) if f is not None]
        met_here = 0
        for i in served:
            t, e = log.first_token_s[i] - log.arrival_s[i], log.finish_s[i] - log.arrival_s[i]
            ttft.append(t)
            e2e.append(e)
            queue.append(log.start_s[i] - log.arrival_s[i])
            if (slo_ttft_s is None or t <= slo_ttft_s) and (slo_e2e_s is None or e <= slo_e2e_s):
                met_here += 1
        met, served_total = met + met_here, served_total + len(served)
        n = len(log.arrival_s)
        span = log.arrival_s[-1] - log.arrival_s[0]
        realised.append((n - 1) / span if n > 1 and span > 0 else None)
        finishes = sorted(log.finish_s[i] for i in served)
        done_span = finishes[-1] - finishes[0] if finishes else 0
        achieved.append((len(finishes) - 1) / done_span if len(finishes) > 1 and done_span > 0 else None)
        session = (finishes[-1] - log.arrival_s[0]) if finishes else 0
        if session > 0:
            token_rate.append(sum(log.new_tokens[i] for i in served) / session)
            goodput.append(met_here / session)

    def mean(xs):
        xs = [x for x in xs if x is not None]
        return sum(xs) / len(xs) if xs else None

    ok_ttft, ok_e2e = _quantile_ok(ttft, slo_ttft_s), _quantile_ok(e2e, slo_e2e_s)
    return {
        "offered_qps": params.get("qps"), "realised_qps": mean(realised), "achieved_qps": mean(achieved),
        "requests": served_total, "ttft_s": summary(ttft), "e2e_s": summary(e2e), "queue_s": summary(queue),
        "new_tokens_per_s": mean(token_rate), "goodput_rps": mean(goodput),
        "slo_attainment": met / served_total if served_total and slo_ttft_s is not None else None,
        "slo.ttft_s": slo_ttft_s, "slo.e2e_s": slo_e2e_s,
        "slo.met": None if slo_ttft_s is None or ok_ttft is None or ok_e2e is None else bool(ok_ttft and ok_e2e),
    }


def capacity_search(start_qps: float, max_probes: int):
    """A generator of {"qps": (rate,)} variants; send it each probe's Result. It stops when the
    bracket is within BRACKET, the probes run out, or a probe gives no judgement (failed)."""
    lo = hi = None
    q = start_qps
    for _ in range(max_probes):
        result = yield {"qps": (round(q, 6),)}
        met = (result.workload_metrics or {}).get("slo.met") if result is not None and result.status == "ok" else None
        if met is None:
            return
        if met:
            lo = q if lo is None else max(lo, q)
        else:
            hi = q if hi is None else min(hi, q)
        if hi is None:
            q = q * 2
        elif lo is None:
            q = q / 2
            if q < MIN_QPS:
                return
        elif hi / lo <= BRACKET:
            return
        else:
            q = math.sqrt(lo * hi)
