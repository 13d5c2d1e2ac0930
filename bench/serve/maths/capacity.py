"""The capacity at the SLOs: the search that probes offered rates, its plan, and the bracket read
off the rates probed.

Capacity: the highest offered rate whose p99s meet the SLOs, found by probing rates: doubling from
the first rate until one fails (halving if the first fails), then bisecting (geometrically) between
the highest rate that met them and the lowest that did not, until they are within 15 % or the probes
run out. The capacity lies between those two rates — that bracket, each side with its confidence, is
what `bench compare` shows.

The plan gives each probe enough requests for a valid p99 verdict with none over the SLO (LoadGen's
early stopping: 459 at 99 % confidence), more if --requests asks, unless that would take a probe
longer than --max-probe-s at its rate: then it gets what fits, and its verdict is provisional.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.core.durations import duration_text
from bench.core.stats import incomplete_beta
from bench.serve.maths import tails

BRACKET = 1.15  # the search stops when the failing rate is within 15 % of the passing one
MIN_QPS = 1e-3


def capacity_search(start_qps: float, max_probes: int, requests_at=None):
    """A generator of {"qps": (rate,)} variants (and "requests" where `requests_at(rate)` gives a
    count); send it each probe's Result. It stops when the bracket is within BRACKET (returning None),
    or says why it stopped sooner (its return value, a sentence): the probes ran out, the rate fell
    below MIN_QPS, or a probe judged nothing. A probe whose requests mostly failed (a failed result
    that still judged its SLOs) is a miss: its failed requests are over every bound."""
    lo = hi = None
    q = start_qps
    for _ in range(max_probes):
        rate = float(f"{q:.3g}")  # three significant figures: a rate is said as it is probed
        variant = {"qps": (rate,)} if requests_at is None else {"qps": (rate,), "requests": requests_at(rate)}
        result = yield variant
        met = _judged(result)
        if met is None:
            return f"the probe at {rate:.3g} requests/s judged nothing ({_why(result)})"
        if met:  # the rate as probed: the bracket the search stops on is the one the analysis reads
            lo = rate if lo is None else max(lo, rate)
        else:
            hi = rate if hi is None else min(hi, rate)
        if hi is None:
            q = q * 2
        elif lo is None:
            q = q / 2
            if q < MIN_QPS:
                return f"every probe missed the SLOs, down to {hi:.3g} requests/s"
        elif hi / lo <= BRACKET:
            return None
        else:
            q = math.sqrt(lo * hi)
    return f"its {max_probes} probes (--max-probes) ran out before the bracket was within {BRACKET - 1:.0%}"


@dataclass(frozen=True)
class _Outcome:
    """A probe's result as the search reads it (status and the SLO verdict), for a search run on paper."""

    met: bool
    status: str = "ok"

    @property
    def workload_metrics(self) -> dict:
        return {"slo.met": self.met}


def search_path(start_qps: float, max_probes: int, capacity: float) -> list[float]:
    """The rates capacity_search probes when each meets the SLOs exactly when it is at most `capacity`."""
    rates: list[float] = []
    search = capacity_search(start_qps, max_probes)
    try:
        variant = next(search)
        while True:
            rates.append(variant["qps"][0])
            variant = search.send(_Outcome(rates[-1] <= capacity))
    except StopIteration:
        return rates


def _judged(result) -> bool | None:
    """Whether a probe met the SLOs (None: it judged nothing: it failed before its session ended)."""
    if result is None or result.status not in ("ok", "failed"):
        return None
    met = (result.workload_metrics or {}).get("slo.met")
    return met if isinstance(met, bool) else None


def _why(result) -> str:
    if result is None:
        return "no result"
    return f"{result.status}: {result.error}" if result.error else result.status


@dataclass(frozen=True)
class Probe:
    """One offered rate as the capacity reads it: whether its p99s met the SLOs (None: not judged),
    whether that verdict held at 99 % confidence, each SLO's p99 with its 95 % interval and the SLO's
    bound (`p99`: (slo, p99, low, high, bound); infinity for a failed request), and why its measurement
    is not to be trusted, where it is not (other load shared it, it was interrupted)."""

    qps: float
    met: bool | None
    valid: bool | None = None
    p99: tuple[tuple[str, float | None, float, float, float], ...] = ()
    disturbed: str | None = None


@dataclass(frozen=True)
class Bracket:
    """The highest rate that met the SLOs and the lowest higher one that did not, each side with
    whether its verdict held at 99 % confidence: `bracket`, `at_least` (every rate met them),
    `below` (none did), or `no_slo` (nothing to judge by). `unsettled` (a code, with `why`'s values)
    where the probes do not support it: the machine moved under the search."""

    code: str
    qps: float | None = None
    below_qps: float | None = None
    qps_valid: bool | None = None
    below_valid: bool | None = None
    unsettled: str | None = None
    why: tuple = ()


def bracket(probes: list[Probe]) -> Bracket:
    """The capacity read off the probes, and whether they settle it (`unsettled`)."""
    judged = [p for p in probes if p.met is not None]
    if not judged:
        return Bracket("no_slo")
    valid = {p.qps: p.valid for p in judged}
    passed = [p.qps for p in judged if p.met]
    unsettled = _unsettled(sorted(judged, key=lambda p: p.qps))
    code, why = unsettled if unsettled else (None, ())
    if not passed:
        low = min(p.qps for p in judged)
        return Bracket("below", below_qps=low, below_valid=valid[low], unsettled=code, why=why)
    best = max(passed)
    above = [p.qps for p in judged if not p.met and p.qps > best]
    if not above:
        return Bracket("at_least", qps=best, qps_valid=valid[best], unsettled=code, why=why)
    return Bracket("bracket", best, min(above), valid[best], valid[min(above)], code, why)


def _unsettled(probes: list[Probe]) -> tuple[str, tuple] | None:
    """Why a search does not settle the capacity, if it does not. It assumes that latency rises with
    load; a machine whose speed moved between probes breaks that. (code, values):
        disturbed  a probe's measurement was shared with other work: (rate, why)
        verdicts   a rate met the SLOs above one that missed them: (the rate that missed, the one that met)
        latency    an SLO's p99 fell as load rose, beyond both p99s' 95 % intervals and by a tenth of
                   the SLO's bound or more (MATERIAL): (slo, lower rate, its p99, higher rate, its p99)"""
    for p in probes:
        if p.disturbed:
            return "disturbed", (p.qps, p.disturbed)
    for i, low in enumerate(probes):
        for high in probes[i + 1:]:
            if high.qps > low.qps and high.met and low.met is False:
                return "verdicts", (low.qps, high.qps)
            fell = _fell(low, high)
            if fell:
                return "latency", fell
    return None


def _over(p99: float | None) -> float:
    """A p99 that is a failed request (None) is over every bound."""
    return math.inf if p99 is None else p99


MATERIAL = 0.1  # of an SLO's bound: a smaller fall of its p99 between two rates does not unsettle a search


def _fell(low: Probe, high: Probe) -> tuple | None:
    """An SLO's p99 at the higher rate wholly below the lower rate's, intervals included, by a material part
    of the SLO's bound. A fall far smaller than the bound moves no verdict, and at a light load latency can
    fall as load rises for reasons of the machine's own (an engine that is already stepping picks a request
    up sooner than an idle one wakes to it; caches stay warm) rather than because the machine moved: 18 ms
    at 20 requests/s and 14 ms at 40 against a 100 ms bound on a 2-core CPU."""
    at_high = {slo: (p99, lo, hi) for slo, p99, lo, hi, _ in high.p99}
    for slo, p99, lo, _, bound in low.p99:
        if slo in at_high and at_high[slo][2] < lo and _over(p99) - _over(at_high[slo][0]) >= MATERIAL * bound:
            return slo, low.qps, p99, high.qps, at_high[slo][0]
    return None


def quantile_interval(values: list[float], p: float = 0.99, level: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the p-quantile of the values' distribution: the order statistics
    X(r) <= X(s) with P(r <= B < s) >= level for B ~ Binomial(n, p) (David & Nagaraja, Order Statistics,
    7.1); -inf or inf where n is too small for that side."""
    done, n = sorted(values), len(values)
    if not n:
        return -math.inf, math.inf
    tail = (1 - level) / 2
    r = 0  # largest r with P(B <= r - 1) <= tail (1-based order statistic X(r))
    while r < n and _binom_cdf(r, n, p) <= tail:
        r += 1
    s = r  # smallest s with P(B <= s - 1) >= 1 - tail
    while s <= n and _binom_cdf(s - 1, n, p) < 1 - tail:
        s += 1
    return (done[r - 1] if r >= 1 else -math.inf), (done[s - 1] if s <= n else math.inf)


def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(B <= k), B ~ Binomial(n, p): the regularized incomplete beta I_{1-p}(n - k, k + 1)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return incomplete_beta(n - k, k + 1, 1 - p)


@dataclass(frozen=True)
class CapacityPlan:
    """The capacity search: its first rate, probes, each probe's request count and the worst case."""

    start_qps: float
    probes: int
    requests: int  # what a probe gets where its rate allows
    needed: int  # LoadGen's minimum for a p99 verdict with none over
    max_probe_s: float
    trimmed: int = 0  # warm-up and cool-down requests, sent but not judged

    def requests_at(self, qps: float) -> int:
        """The requests of a probe at this rate: the plan's, or what fits its longest time."""
        fits = int(qps * self.max_probe_s)
        return max(2 + self.trimmed, min(self.requests, fits))

    def provisional_at(self, qps: float) -> bool:
        return self.requests_at(qps) - self.trimmed < self.needed

    @property
    def lowest_qps(self) -> float:
        return self.start_qps / 2 ** (self.probes - 1)

    def path(self, capacity: float) -> list[float]:
        """The rates the search probes where every rate up to `capacity` meets the SLOs and none above does."""
        return search_path(self.start_qps, self.probes, capacity)

    def expected_s(self) -> float:
        """Seconds of arrivals if the capacity is the first rate (the user's guess): the rates it then probes."""
        return sum(self.requests_at(q) / q for q in self.path(self.start_qps))

    def worst_case_s(self) -> float:
        """Every probe missing, the rate halving each time: no path's i-th probe is slower (its
        rate is at least start / 2^i, and a probe's time falls as its rate rises)."""
        return sum(self.requests_at(self.start_qps / 2**i) / (self.start_qps / 2**i) for i in range(self.probes))

    def text(self) -> str:
        cut = self.provisional_at(self.lowest_qps)
        return (f"capacity search: up to {self.probes} probes from {self.start_qps:g} requests/s, {self.requests} "
                f"requests each ({self.needed} are needed for a valid p99 verdict with none over the SLO"
                f"{f', {self.trimmed} more are trimmed' if self.trimmed else ''}); "
                f"a probe is cut to {self.max_probe_s:g} s (fewer requests, a provisional verdict)"
                f"{', as the lowest rates would be' if cut else ''}; at worst about {duration_text(self.worst_case_s())} "
                f"of arrivals, if every probe misses and the rate halves to {self.lowest_qps:.3g} requests/s")


def capacity_plan(options) -> CapacityPlan:
    """The plan of a search with these serving options (--qps, --requests, --max-probes, ...)."""
    trimmed = options.warmup_requests + options.cooldown_requests
    needed = tails.min_passing(0, 0.99)
    return CapacityPlan(options.qps[0] if options.qps else 1.0, options.max_probes,
                        max(options.requests or 0, needed + trimmed), needed, options.max_probe_s, trimmed)
