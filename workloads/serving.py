"""What serving workloads share: the figures of a session, and the capacity search.

Figures, from every request in the measured window of every repeat (bench/model/report.py
RequestLog, on the run's clock; warm-up and cool-down requests are left out):

    offered_qps       the rate asked for (--qps; conversations: offered_conversations_per_s, their turns
                      follow answers); realised_qps: requests / (last arrival - session start)
    achieved_qps      completions / (last completion - first arrival), with its 95 % interval (over
                      repeats; with one repeat, Garwood's interval of the completions as a Poisson count)
    ttft_s            first token - scheduled arrival (queueing and the generator's lateness included)
    itl_s             every gap between consecutive token stamps of a request, pooled over requests
    tpot_s            per request (e2e - TTFT) / (tokens - 1), requests of 2 tokens or more
    e2e_s             last token - scheduled arrival; queue_s: batch start - arrival (in-process)
    late_s            sent - scheduled arrival: how late the load generator sent (not in the latency)
    new_tokens_per_s  new tokens over the achieved rate's span
    slo_attainment    the share of requests meeting every SLO given (a failed request meets none);
                      goodput_rps: those requests over the achieved rate's span (DistServe's goodput)
    errors            requests that failed, and `errors.<code>` by reason
    slo.*             per SLO (ttft, tpot, e2e): the bound, LoadGen's nearest-rank p99
                      (`sorted[floor(0.99 n)]`), requests judged and over the bound; `slo.met` every
                      SLO's p99 within its bound, `slo.valid` that verdict held at 99 % confidence
                      (bench/core/tails.py: LoadGen's early stopping; a failed request is over)

Definitions as vLLM's `bench serve` (vllm/benchmarks/serve.py `calculate_metrics`) has them — TPOT,
ITL, goodput (a request is good when every SLO holds; TPOT of a one-token request is 0) — except
that latencies count from the scheduled arrival (MLPerf LoadGen's rule), not from when the request
was sent, and rates are over first arrival to last completion, not from the benchmark's start.
Percentiles in the summaries interpolate (numpy); the SLO verdicts read LoadGen's nearest rank.

Capacity: the highest offered rate whose p99s meet the SLOs, found by probing rates (serving_plan.py
plans it and bounds its time): doubling from the first rate until one fails (halving if the first
fails), then bisecting (geometrically) between the highest rate that met them and the lowest that
did not, until they are within 15 % or the probes run out. The capacity lies between those two
rates — that bracket, each side with its confidence, is what `bench compare` shows.
"""

from __future__ import annotations

import math

from bench.core import stats, tails
from bench.model.derive import summary
from bench.model.report import Interval

BRACKET = 1.15  # the search stops when the failing rate is within 15 % of the passing one
MIN_QPS = 1e-3
SLOS = ("ttft", "tpot", "e2e")


def request_figures(log) -> dict:
    """One session's per-request values over its measured window: lists by name, and its span."""
    keep = [i for i in range(len(log.arrival_s)) if log.measured is None or log.measured[i]]
    out = {k: [] for k in ("ttft", "e2e", "tpot", "tpot_all", "itl", "queue", "late", "judged")}
    out.update(errors=[], tokens=0, finishes=[])
    for i in keep:
        _one(log, i, out)
    arrivals = [log.arrival_s[i] for i in keep]
    out["n"], out["first_arrival"] = len(keep), min(arrivals, default=None)
    out["last_arrival"] = max(arrivals, default=None)
    return out


def _one(log, i: int, out: dict) -> None:
    a, finish = log.arrival_s[i], log.finish_s[i]
    if log.sent_s is not None and log.sent_s[i] is not None:
        out["late"].append(log.sent_s[i] - a)
    if finish is None:
        out["errors"].append((log.error[i] if log.error else None) or "unfinished")
        out["judged"].append(None)
        return
    n, ttft, e2e = log.new_tokens[i], log.first_token_s[i] - a, finish - a
    tpot = (e2e - ttft) / (n - 1) if n > 1 else None
    out["ttft"].append(ttft)
    out["e2e"].append(e2e)
    out["tpot"] += [tpot] if tpot is not None else []
    out["judged"].append({"ttft": ttft, "e2e": e2e, "tpot": tpot or 0.0})  # vLLM: a one-token request's TPOT is 0
    stamps = log.token_s[i] if log.token_s else []
    out["itl"] += [b - s for s, b in zip(stamps, stamps[1:], strict=False)]
    if log.start_s[i] is not None:
        out["queue"].append(log.start_s[i] - a)
    out["tokens"] += n
    out["finishes"].append(finish)


def achieved_interval(parts: list[dict]) -> Interval | None:
    """Completions per second over first arrival to last completion: over repeats (t on the log
    scale), or, for one repeat, Garwood's interval of its completions as a Poisson count."""
    spans = [(len(p["finishes"]), max(p["finishes"]) - p["first_arrival"]) for p in parts if p["finishes"]]
    spans = [(k, s) for k, s in spans if s > 0]
    if not spans:
        return None
    if len(spans) >= 2:
        d = stats.log_t_interval([k / s for k, s in spans])
        return Interval(d["value"], d["ci_low"], d["ci_high"], d["level"], f"t interval over {len(spans)} repeats "
                                                                           "(log scale)")
    d = stats.count_rate_interval(*spans[0])
    return Interval(d["value"], d["ci_low"], d["ci_high"], d["level"],
                    "1 repeat: Garwood's interval of its completions as a Poisson count; run-to-run variance unknown")


def slo_figures(parts: list[dict], slos: dict[str, float | None]) -> dict:
    """Each SLO's bound, LoadGen's p99 and its counts; whether every p99 met its bound, and whether
    that verdict holds at 99 % confidence; the share of requests meeting every SLO."""
    given = {k: v for k, v in slos.items() if v is not None}
    judged = [j for p in parts for j in p["judged"]]
    out: dict = {f"slo.{k}_s": slos.get(k) for k in SLOS}
    if not given or not judged:
        return {**out, "slo.met": None, "slo.valid": None, "slo_attainment": None}
    claims = [_claim(judged, k, bound, out) for k, bound in given.items()]
    good = sum(1 for j in judged if _good(j, given))
    return {**out, **_verdict(claims), "slo_attainment": good / len(judged), "_good": good}


def _good(judged: dict | None, slos: dict[str, float]) -> bool:
    """A request meeting every SLO (DistServe's, vLLM's goodput); a failed one meets none."""
    return judged is not None and all(judged[k] <= bound for k, bound in slos.items())


def _verdict(claims: list[tails.TailClaim]) -> dict:
    """Met: every p99 within its bound; valid: all those claims hold, or (missed) one miss holds."""
    met = all(c.met for c in claims)
    return {"slo.met": met, "slo.valid": all(c.holds for c in claims) if met else any(c.refuted for c in claims)}


def _claim(judged: list[dict | None], slo: str, bound: float, out: dict) -> tails.TailClaim:
    """One SLO's claim over the judged requests (a failed one is over), its figures put in `out`."""
    values = [None if j is None else j[slo] for j in judged]
    c = tails.judge(values, bound)
    done = sorted(v for v in values if v is not None)
    out.update({f"slo.{slo}.p99_s": nearest_rank(done + [math.inf] * (c.n - len(done))), f"slo.{slo}.n": c.n,
                f"slo.{slo}.over": c.over})
    return c


def nearest_rank(sorted_values: list[float], p: float = 0.99) -> float | None:
    """LoadGen's percentile: sorted[floor(n p)] (None where it is a failed request, or none)."""
    if not sorted_values:
        return None
    v = sorted_values[min(len(sorted_values) - 1, math.floor(len(sorted_values) * p))]
    return v if math.isfinite(v) else None


def serving_metrics(repeats, params: dict, slo_ttft_s: float | None = None, slo_e2e_s: float | None = None,
                    slo_tpot_s: float | None = None) -> dict:
    logs = [r.requests for r in repeats if r.requests is not None and r.requests.arrival_s]
    if not logs:
        return {}
    parts = [request_figures(log) for log in logs]
    slo = slo_figures(parts, {"ttft": slo_ttft_s, "tpot": slo_tpot_s, "e2e": slo_e2e_s})
    good = slo.pop("_good", None)
    talks = bool(params.get("conversations"))  # then --qps is the rate conversations start at, not requests
    return {"offered_qps": None if talks else params.get("qps"),
            "offered_conversations_per_s": params.get("qps") if talks else None, **_rates(logs, parts, good),
            **{f"{k}_s": summary([v for p in parts for v in p[k]]) for k in ("ttft", "e2e", "tpot", "itl", "queue", "late")},
            **_errors(parts), **slo}


def _rates(logs, parts: list[dict], good: int | None) -> dict:
    """Realised, achieved (with its interval), tokens and goodput rates over the sessions' spans."""
    spans = [max(p["finishes"]) - p["first_arrival"] for p in parts if p["finishes"]]
    span = sum(spans) if spans and sum(spans) > 0 else None
    return {"realised_qps": _mean(_realised(log, p) for log, p in zip(logs, parts, strict=True)),
            "achieved_qps": achieved_interval(parts), "requests": sum(len(p["finishes"]) for p in parts),
            "new_tokens_per_s": sum(p["tokens"] for p in parts) / span if span else None,
            "goodput_rps": good / span if span and good is not None else None}


def _errors(parts: list[dict]) -> dict:
    errors = [e for p in parts for e in p["errors"]]
    return {"errors": len(errors), **{f"errors.{code}": errors.count(code) for code in sorted(set(errors))}}


def _realised(log, part: dict) -> float | None:
    """Requests over the time from the session's start to the last arrival (vLLM rescales its gaps
    so that this is the offered rate); without the start, (n - 1) over first to last arrival."""
    n, last = part["n"], part["last_arrival"]
    if log.session_start_s is not None and last is not None and last > log.session_start_s:
        return n / (last - log.session_start_s)
    span = (last - part["first_arrival"]) if last is not None else 0
    return (n - 1) / span if n > 1 and span > 0 else None


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def capacity_search(start_qps: float, max_probes: int, requests_at=None):
    """A generator of {"qps": (rate,)} variants (and "requests" where `requests_at(rate)` gives a
    count); send it each probe's Result. It stops when the bracket is within BRACKET, the probes run
    out, or a probe gives no judgement (failed)."""
    lo = hi = None
    q = start_qps
    for _ in range(max_probes):
        rate = round(q, 6)
        variant = {"qps": (rate,)} if requests_at is None else {"qps": (rate,), "requests": requests_at(rate)}
        result = yield variant
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
