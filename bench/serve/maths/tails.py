"""Can a percentile claim be made from this many requests? MLPerf LoadGen's early-stopping rule.

A p99 of 60 requests is their worst one: it says nothing about the 99th percentile of the service.
LoadGen (mlcommons/inference, loadgen/early_stopping.cc and results.cc `EarlyStopping`, Server
scenario) answers how many requests a claim "the p-th percentile latency is within the bound"
needs: with t requests over the bound, the claim holds at confidence c once at least h more met
it, h the least number for which seeing t or fewer over in h + t requests would be unlikely (below
1 - c) if the true share over the bound were 1 - p + d:

    odds(h, t, p, d) = BetaRegularized[p - d, h, 1 + t]  = P(Binomial(h + t, 1 - p + d) <= t)
    h(t) = min { h : odds(h, t, p, d) < 1 - c }

LoadGen runs it at c = 0.99 with tolerance d = 0.0 (results.cc), counts a request over when its
latency is strictly greater than the bound, and reads its percentile nearest-rank,
`sorted[floor(n * p)]`. For p99 with none over, h(0) = ceil(log(0.01) / log(0.99)) = 459. Our
binary search takes LoadGen's bounds for a finder with nothing cached; the regularized incomplete
beta is bench.core.stats' continued fraction where LoadGen sums a hypergeometric series (its
kTolerance 2^-33 is that series' stopping rule, not the claim's tolerance d).

The other side is ours, not LoadGen's: a miss holds at confidence c when seeing t or more requests
over in n would be unlikely (below 1 - c) if the true share over were exactly 1 - p:
P(Binomial(n, 1 - p) >= t) < 1 - c. Between the two, the verdict is provisional.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.core.stats import incomplete_beta

CONFIDENCE = 0.99  # LoadGen's (results.cc)
TOLERANCE = 0.0  # LoadGen's d (results.cc)


def odds(h: int, t: int, p: float, d: float = TOLERANCE) -> float:
    """P(t or fewer of h + t requests over the bound) were the share over exactly 1 - p + d."""
    return incomplete_beta(h, 1 + t, p - d)


def min_passing(t: int, p: float, d: float = TOLERANCE, c: float = CONFIDENCE) -> int:
    """LoadGen's MinPassingQueriesFinder for a fresh finder: the least h with odds(h, t) < 1 - c."""
    if not (0 < p - d < 1 and 0 < c < 1) or t < 0:
        raise ValueError(f"need 0 < p - d < 1, 0 < c < 1 and t >= 0, got p={p}, d={d}, c={c}, t={t}")
    y1 = math.ceil(math.log(1 - c) / math.log(p - d))
    low = int(t * (p - d) / (1 - p + d) + y1)  # LoadGen truncates its bounds to int64 the same way
    count = (t * y1 + y1 + 1) - low
    while count > 0:
        step = count // 2
        if odds(low + step, t, p, d) < 1 - c:
            count = step
        else:
            low, count = low + step + 1, count - step - 1
    return low


def miss_odds(n: int, over: int, p: float) -> float:
    """P(over or more of n requests over the bound) were the share over exactly 1 - p."""
    if over <= 0:
        return 1.0
    if over > n:
        return 0.0
    return incomplete_beta(over, n - over + 1, 1 - p)


@dataclass(frozen=True)
class TailClaim:
    """The claim "the p-th percentile is within the bound", judged on n requests with `over` above it."""

    p: float
    n: int
    over: int
    met: bool  # LoadGen's nearest-rank percentile, sorted[floor(n * p)], is within the bound
    needed: int  # requests in all for the claim to hold, if none more were over (LoadGen's h + t)
    holds: bool  # met, and early stopping supports it at the confidence
    refuted: bool  # missed, and the miss holds at the confidence (ours)
    confidence: float = CONFIDENCE

    @property
    def valid(self) -> bool:
        """The verdict, either way, holds at the confidence."""
        return self.holds or self.refuted

    @property
    def more(self) -> int:
        """Requests still needed for the claim, if none of them were over."""
        return max(0, self.needed - self.n)


def claim(n: int, over: int, p: float = 0.99, c: float = CONFIDENCE) -> TailClaim:
    """The verdict of n requests, `over` of them above the bound, on the p-th percentile."""
    if not 0 <= over <= n:
        raise ValueError(f"over must be between 0 and n, got {over} of {n}")
    met = n > 0 and over <= n - math.floor(n * p) - 1
    needed = min_passing(over, p, TOLERANCE, c) + over
    return TailClaim(p, n, over, met, needed, met and n >= needed, not met and miss_odds(n, over, p) < 1 - c, c)


def judge(latencies, bound: float, p: float = 0.99, c: float = CONFIDENCE) -> TailClaim:
    """The claim on these latencies; a missing one (a request that failed) counts as over."""
    values = list(latencies)
    over = sum(1 for v in values if v is None or v > bound)
    return claim(len(values), over, p, c)
