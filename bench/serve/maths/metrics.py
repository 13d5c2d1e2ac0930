"""A serving session's figures, each defined once, over the typed request records (records.py).

Figures, from every request in the measured window of every repeat (warm-up and cool-down requests
are left out), as `workload_metrics` keys:

    offered_qps       the rate asked for (--qps; conversations: offered_conversations_per_s, their turns
                      follow answers); realised_qps: requests / (last arrival - session start)
    achieved_qps      completions / (last completion - session start), with its 95 % interval (over
                      repeats; with one repeat, Garwood's interval of the completions as a Poisson count);
                      see "Rates" below
    ttft_s            first token - scheduled arrival (queueing and the generator's lateness included)
    itl_s             every gap between consecutive token stamps of a request, pooled over requests
    tpot_s            per request (e2e - TTFT) / (tokens - 1), requests of 2 tokens or more
    e2e_s             last token - scheduled arrival; queue_s: batch start - arrival (in-process)
    late_s            sent - scheduled arrival (under --max-concurrency: sent - the moment a slot freed): how
                      late the load generator sent (not in the latency)
    waited_s          sent - scheduled arrival, under --max-concurrency only: a slot's wait and the lateness
    new_tokens_per_s  the achieved rate times the new tokens of a completed request
    slo_attainment    the share of requests meeting every SLO given (a failed request meets none);
                      goodput_rps: the achieved rate times the share of completed requests meeting every
                      SLO (DistServe's goodput)
    errors            requests that failed, and `errors.<code>` by reason
    slo.*             per SLO (ttft, tpot, e2e): the bound, LoadGen's nearest-rank p99
                      (`sorted[floor(0.99 n)]`), requests judged and over the bound; `slo.met` every
                      SLO's p99 within its bound, `slo.valid` that verdict held at 99 % confidence
                      (tails.py: LoadGen's early stopping; a failed request is over)

Definitions as vLLM's `bench serve` (vllm/benchmarks/serve.py `calculate_metrics`) has them — TPOT,
ITL, goodput (a request is good when every SLO holds; TPOT of a one-token request is 0) — except
that latencies count from the scheduled arrival (MLPerf LoadGen's rule), not from when the request
was sent. One percentile per figure: every p50, p90 and p99 here is LoadGen's nearest rank,
`sorted[floor(n p)]`, the one the SLO verdicts read (the vLLM export keeps vLLM's interpolation,
which its readers expect; generation's figures, judged by no SLO, keep numpy's).

Rates (achieved, realised, goodput, new tokens) count the measured window from its start — the session's
start, or the last warm-up request's arrival — never from its first arrival (n requests over n - 1 gaps
made 6 requests at 2/s read 2.66/s), and count its requests as `Counting` says, so that the rate is
unbiased at every n for the way they arrived: drawn and kept as drawn, rescaled (the default), or fixed.
So the achieved rate can exceed the offered one only by the draw's own noise, and goodput (the good
share of the completed requests at that rate) never exceeds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.core import stats
from bench.model.report import FigureSpec, Interval, Summary
from bench.serve.maths import records as rec
from bench.serve.maths import tails
from bench.serve.maths.records import RequestRecord

SLOS = ("ttft", "tpot", "e2e")
PER_REQUEST = {"ttft": rec.ttft, "e2e": rec.e2e, "tpot": rec.tpot, "queue": rec.queue, "late": rec.late,
               "waited": lambda r: rec.waited(r) if r.ready_s is not None else None}


@dataclass(frozen=True)
class Session:
    """One repeat's measured requests, and when the session began (None in older reports)."""

    requests: list[RequestRecord]
    start_s: float | None = None
    total: int = 0  # every request of the session, measured or not (0: as many as measured)

    def __post_init__(self):
        if self.total < len(self.requests):
            object.__setattr__(self, "total", len(self.requests))

    @property
    def done(self) -> list[RequestRecord]:
        return [r for r in self.requests if r.done]

    @property
    def first_arrival(self) -> float | None:
        return min((r.arrival_s for r in self.requests), default=None)

    @property
    def last_arrival(self) -> float | None:
        return max((r.arrival_s for r in self.requests), default=None)



def summary(values: list[float]) -> Summary:
    """The summary of a serving latency: mean, spread and extremes as any figure's, its percentiles
    LoadGen's nearest rank (the SLO verdicts' own)."""
    s = stats.summary(values)
    done = sorted(values)
    s.update({k: nearest_rank(done, p) for k, p in (("median", 0.5), ("p90", 0.9), ("p99", 0.99))})
    return Summary(**s)


def sessions(repeats) -> list[Session]:
    """The sessions of repeats that logged requests, their measured windows."""
    return [Session(rec.records(r.requests), window_start(r.requests), len(r.requests.arrival_s)) for r in repeats
            if r.requests is not None and r.requests.arrival_s]


def window_start(log) -> float | None:
    """Where the measured window's rates count from: the session's start, or, after warm-up requests (served,
    not measured), the last of their arrivals — the measured requests alone are counted, so their time must be
    too; for drawn arrivals the process after any instant is the same process (memoryless), so the count
    stays unbiased. None where the log has no session start (older reports: the first arrival)."""
    start = log.session_start_s
    if start is None or log.measured is None or not any(log.measured):
        return start
    first = min(a for a, m in zip(log.arrival_s, log.measured, strict=True) if m)
    warm = [a for a, m in zip(log.arrival_s, log.measured, strict=True) if not m and a <= first]
    return max([start, *warm])


def values(sessions_: list[Session], figure: str) -> list[float]:
    """One per-request figure over every request that has it (ITL: every gap, pooled)."""
    if figure == "itl":
        return [g for s in sessions_ for r in s.done for g in rec.itl(r)]
    get = PER_REQUEST[figure]
    return [v for s in sessions_ for r in s.requests if (v := get(r)) is not None]


# -- the SLOs: LoadGen's claim per SLO, and the requests that meet every one ---------------------------
@dataclass(frozen=True)
class SloClaim:
    slo: str
    bound_s: float
    p99_s: float | None  # LoadGen's nearest rank, over every judged request (a failed one is over)
    claim: tails.TailClaim


@dataclass(frozen=True)
class SloVerdict:
    bounds: dict  # every SLO's bound, None where not given
    claims: list[SloClaim]
    good: int  # requests meeting every SLO given
    judged: int  # requests judged (every measured request, failed ones included)

    @property
    def met(self) -> bool:
        return all(c.claim.met for c in self.claims)

    @property
    def valid(self) -> bool:
        """Met and every claim holds, or missed and one miss holds (at LoadGen's confidence)."""
        return all(c.claim.holds for c in self.claims) if self.met else any(c.claim.refuted for c in self.claims)

    @property
    def attainment(self) -> float:
        return self.good / self.judged


LEAD = {"ttft": ("ttft_s", "TTFT"), "tpot": ("tpot_s", "TPOT"), "e2e": ("e2e_s", "e2e")}


def lead_figure(slos: dict[str, float | None]) -> FigureSpec:
    """What a serving result at a fixed offered rate leads with, is compared and stopped on: the p99 of the
    latency its SLO names (the first given of TTFT, TPOT, e2e; TTFT without one). At a fixed rate every
    device that keeps up achieves the offered rate: the latency at that rate is what differs."""
    slo = next((k for k in SLOS if slos.get(k) is not None), "ttft")
    key, label = LEAD[slo]
    return FigureSpec(f"workload_metrics.{key}.p99", f"{label} p99", "s", "lower", lead=True)


def judged(r: RequestRecord, origin: rec.Origin = "arrival") -> dict | None:
    """A request's values as the SLOs judge them (a one-token request's TPOT is 0, as vLLM's); None
    for a failed one, which meets none."""
    if not r.done:
        return None
    return {"ttft": rec.ttft(r, origin), "e2e": rec.e2e(r, origin), "tpot": rec.tpot(r) or 0.0}


def good(r: RequestRecord, slos: dict[str, float], origin: rec.Origin = "arrival") -> bool:
    """A request meeting every SLO given (DistServe's, vLLM's goodput); a failed one meets none."""
    j = judged(r, origin)
    return j is not None and all(j[k] <= bound for k, bound in slos.items())


NOT_JUDGED = ("interrupted",)  # cut by the run's own interruption (Ctrl-C, SIGTERM): unknown, not a miss


def slo_verdict(sessions_: list[Session], slos: dict[str, float | None]) -> SloVerdict | None:
    """Each SLO's claim and the good requests; None without an SLO or a request to judge. A request the
    run's own interruption cut is not judged: it says nothing of the server (a session stopped before any
    request finished read "missed, at 99 % confidence" over requests nobody waited for)."""
    given = {k: v for k, v in slos.items() if v is not None}
    requests = [r for s in sessions_ for r in s.requests if r.error not in NOT_JUDGED]
    if not given or not requests:
        return None
    rows = [judged(r) for r in requests]
    claims = [_claim(rows, k, bound) for k, bound in given.items()]
    return SloVerdict({k: slos.get(k) for k in SLOS}, claims, sum(good(r, given) for r in requests), len(rows))


def _claim(rows: list[dict | None], slo: str, bound: float) -> SloClaim:
    latencies = [None if j is None else j[slo] for j in rows]
    c = tails.judge(latencies, bound)
    done = sorted(v for v in latencies if v is not None)
    return SloClaim(slo, bound, nearest_rank(done + [math.inf] * (c.n - len(done))), c)


def nearest_rank(sorted_values: list[float], p: float = 0.99) -> float | None:
    """LoadGen's percentile: sorted[floor(n p)] (None where it is a failed request, or none)."""
    if not sorted_values:
        return None
    v = sorted_values[min(len(sorted_values) - 1, math.floor(len(sorted_values) * p))]
    return v if math.isfinite(v) else None


# -- rates ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Counting:
    """How n requests of a measured window count in a rate over its span, so that the rate is unbiased
    for the way they arrived (q the offered rate, N the session's requests, n the window's):
        drawn     kept as drawn (Poisson, or gamma of shape B): the n-th arrival after any instant lies at a
                  Gamma(nB, qB) time, E[(n - 1/B) / T] = q: n - 1/B
        rescaled  the last of all N at N / q (the default, as vLLM's): a window of all N spans N / q exactly:
                  n; a part of them (warm-up or cool-down left out) spans N / q times a Beta(n, N - n)
                  spacing of uniform order statistics, E[1 / spacing] = (N - 1) / (n - 1): N (n - 1) / (N - 1)
        fixed     evenly spaced, a file's times, a closed loop: n"""

    kind: str = "fixed"
    shape: float = 1.0

    def count(self, n: int, total: int) -> float:
        if self.kind == "drawn":
            return max(n - 1.0 / self.shape, 0.0)
        if self.kind == "rescaled" and total > n > 1:
            return total * (n - 1) / (total - 1)
        return float(n)


def counting(params: dict) -> Counting:
    """The Counting of a result's arrivals, from its params (load, rescaled, arrivals)."""
    kind, _, value = str(params.get("load") or "poisson").partition(":")
    if params.get("arrivals") or kind not in ("poisson", "gamma"):
        return Counting()
    if params.get("rescaled") is False:
        return Counting("drawn", float(value) if kind == "gamma" and value else 1.0)
    return Counting("rescaled" if params.get("rescaled") else "fixed")


def span_from_start(s: Session) -> float | None:
    """The session's start (its first arrival in an older report) to its last completion."""
    done = s.done
    if not done:
        return None
    origin = s.start_s if s.start_s is not None else s.first_arrival
    return max(r.finish_s for r in done) - origin


def achieved(s: Session, how: Counting) -> float | None:
    """Completions per second over the measured window (counted as `how` says)."""
    span = span_from_start(s)
    return how.count(len(s.done), s.total) / span if span and span > 0 else None


def achieved_interval(sessions_: list[Session], how: Counting = Counting()) -> Interval | None:
    """The achieved rate: over repeats, a t interval on the log scale; for one repeat, Garwood's interval
    of its completions as a Poisson count over its span (an exact interval for the rate of the n-th
    arrival's Gamma time lies inside it), around the unbiased estimate."""
    rates = [(len(s.done), span_from_start(s), achieved(s, how)) for s in sessions_ if s.done]
    rates = [(k, span, a) for k, span, a in rates if span and span > 0 and a]
    if not rates:
        return None
    if len(rates) >= 2:
        d = stats.log_t_interval([a for _, _, a in rates])
        return Interval(d["value"], d["ci_low"], d["ci_high"], d["level"], f"t interval over {len(rates)} repeats "
                                                                           "(log scale)")
    k, span, a = rates[0]
    d = stats.count_rate_interval(k, span)
    return Interval(a, min(d["ci_low"], a), max(d["ci_high"], a), d["level"],
                    "1 repeat: Garwood's interval of its completions as a Poisson count; run-to-run variance unknown")


def realised(s: Session, how: Counting = Counting()) -> float | None:
    """Requests over the time from the window's start to its last arrival (counted as `how` says);
    without the start (older reports), (n - 1) over first to last arrival."""
    n, last = len(s.requests), s.last_arrival
    if s.start_s is not None and last is not None and last > s.start_s:
        return how.count(n, s.total) / (last - s.start_s)
    gap = (last - s.first_arrival) if last is not None else 0
    return (n - 1) / gap if n > 1 and gap > 0 else None


def rates(sessions_: list[Session], verdict: SloVerdict | None, how: Counting = Counting()) -> dict:
    """Realised, achieved (with its interval), tokens and goodput rates. Goodput is the achieved rate
    times the good share of the completed requests: never above it."""
    interval = achieved_interval(sessions_, how)
    done = sum(len(s.done) for s in sessions_)
    tokens = sum(r.new_tokens for s in sessions_ for r in s.done)
    rate = interval.value if interval is not None else None
    return {"realised_qps": _mean([realised(s, how) for s in sessions_]), "achieved_qps": interval,
            "requests": done, "new_tokens_per_s": rate * (tokens / done) if rate and done else None,
            "goodput_rps": rate * (verdict.good / done) if rate is not None and verdict is not None and done else None}
    # rate * (good / done): a share at most 1 times the rate never rounds above it (rate * good / done can)


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


# -- a session's figures, as the report keeps them --------------------------------------------------------
def slo_figures(verdict: SloVerdict | None, slos: dict[str, float | None]) -> dict:
    out: dict = {f"slo.{k}_s": slos.get(k) for k in SLOS}
    if verdict is None:
        return {**out, "slo.met": None, "slo.valid": None, "slo_attainment": None}
    for c in verdict.claims:
        out.update({f"slo.{c.slo}.p99_s": c.p99_s, f"slo.{c.slo}.n": c.claim.n, f"slo.{c.slo}.over": c.claim.over})
    return {**out, "slo.met": verdict.met, "slo.valid": verdict.valid, "slo_attainment": verdict.attainment}


def errors(sessions_: list[Session]) -> dict:
    codes = [r.error for s in sessions_ for r in s.requests if not r.done]
    return {"errors": len(codes), **{f"errors.{code}": codes.count(code) for code in sorted(set(codes))}}


def serving_metrics(repeats, params: dict, slo_ttft_s: float | None = None, slo_e2e_s: float | None = None,
                    slo_tpot_s: float | None = None) -> dict:
    """The `workload_metrics` of a serving result from its repeats' request logs."""
    found = sessions(repeats)
    if not found:
        return {}
    slos = {"ttft": slo_ttft_s, "tpot": slo_tpot_s, "e2e": slo_e2e_s}
    verdict = slo_verdict(found, slos)
    talks = bool(params.get("conversations"))  # then --qps is the rate conversations start at, not requests
    return {"offered_qps": None if talks else params.get("qps"),
            "offered_conversations_per_s": params.get("qps") if talks else None,
            **rates(found, verdict, counting(params)),
            **{f"{k}_s": summary(values(found, k)) for k in ("ttft", "e2e", "tpot", "itl", "queue", "late")},
            **({"waited_s": summary(w)} if (w := values(found, "waited")) else {}),
            **errors(found), **slo_figures(verdict, slos)}


def percentile_interval(repeats, key: str) -> tuple[float, float] | None:
    """The distribution-free 95 % interval of a serving latency percentile (`workload_metrics.ttft_s.p99`)
    over the pooled requests of these repeats (capacity.py quantile_interval); None for another figure or
    where a side is unbounded (too few requests)."""
    from bench.serve.maths.capacity import quantile_interval

    name, _, stat = key.removeprefix("workload_metrics.").rpartition(".")
    figure = name.removesuffix("_s")
    if figure not in PER_REQUEST and figure != "itl" or stat not in ("median", "p90", "p99"):
        return None
    found = values(sessions(repeats), figure)
    lo, hi = quantile_interval(found, {"median": 0.5, "p90": 0.9, "p99": 0.99}[stat])
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None
