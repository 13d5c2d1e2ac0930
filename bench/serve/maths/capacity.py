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
        rate = round(q, 6)
        variant = {"qps": (rate,)} if requests_at is None else {"qps": (rate,), "requests": requests_at(rate)}
        result = yield variant
        met = _judged(result)
        if met is None:
            return f"the probe at {rate:g} requests/s judged nothing ({_why(result)})"
        if met:
            lo = q if lo is None else max(lo, q)
        else:
            hi = q if hi is None else min(hi, q)
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
class Bracket:
    """The highest rate that met the SLOs and the lowest higher one that did not, each side with
    whether its verdict held at 99 % confidence: `bracket`, `at_least` (every rate met them),
    `below` (none did), or `no_slo` (nothing to judge by)."""

    code: str
    qps: float | None = None
    below_qps: float | None = None
    qps_valid: bool | None = None
    below_valid: bool | None = None


def bracket(points) -> Bracket:
    """The capacity read off (rate, met, valid) triples (met None: not judged)."""
    judged = [(q, met, valid) for q, met, valid in points if met is not None]
    if not judged:
        return Bracket("no_slo")
    valid = {q: v for q, _, v in judged}
    passed = [q for q, met, _ in judged if met]
    if not passed:
        low = min(q for q, _, _ in judged)
        return Bracket("below", below_qps=low, below_valid=valid[low])
    best = max(passed)
    above = [q for q, met, _ in judged if not met and q > best]
    if not above:
        return Bracket("at_least", qps=best, qps_valid=valid[best])
    return Bracket("bracket", best, min(above), valid[best], valid[min(above)])


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
                f"{', as the lowest rates would be' if cut else ''}; at worst about {_duration(self.worst_case_s())} "
                f"of arrivals, if every probe misses and the rate halves to {self.lowest_qps:.3g} requests/s")


def capacity_plan(options) -> CapacityPlan:
    """The plan of a search with these serving options (--qps, --requests, --max-probes, ...)."""
    trimmed = options.warmup_requests + options.cooldown_requests
    needed = tails.min_passing(0, 0.99)
    return CapacityPlan(options.qps[0] if options.qps else 1.0, options.max_probes,
                        max(options.requests or 0, needed + trimmed), needed, options.max_probe_s, trimmed)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
