"""Pure statistics over raw per-step times. No I/O; reports are recomputed from raw data on load."""

from __future__ import annotations

import math

import numpy as np

BOOTSTRAP_RESAMPLES = 2000


def summary(values) -> dict:
    """mean, median, p90, p99, stdev, cv, min, max, n of a list of numbers (None where empty)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return {k: None for k in ("n", "mean", "median", "p90", "p99", "stdev", "cv", "min", "max")}
    mean = float(x.mean())
    stdev = float(x.std(ddof=1)) if x.size > 1 else 0.0
    return {"n": int(x.size), "mean": mean, "median": float(np.median(x)),
            "p90": float(np.percentile(x, 90)), "p99": float(np.percentile(x, 99)),
            "stdev": stdev, "cv": stdev / mean if mean else None,
            "min": float(x.min()), "max": float(x.max())}


def _rng(seed: int):
    return np.random.default_rng(seed)


def rate(work, times) -> float | None:
    """Work per second over the summed time: sum(work) / sum(times)."""
    total = float(np.sum(times))
    return float(np.sum(work)) / total if total > 0 else None


MAX_BLOCKS = 500  # longer runs are resampled in blocks of consecutive steps: memory stays bounded


def _blocks(work, times) -> tuple[np.ndarray, np.ndarray]:
    """Steps grouped into at most MAX_BLOCKS blocks of consecutive steps (sums of work and time)."""
    w, t = np.asarray(work, float), np.asarray(times, float)
    if t.size <= MAX_BLOCKS:
        return w, t
    edges = np.linspace(0, t.size, MAX_BLOCKS + 1).astype(int)
    return np.add.reduceat(w, edges[:-1]), np.add.reduceat(t, edges[:-1])


def _boot_total_rate(parts, rng) -> np.ndarray:
    """Bootstrap distribution of the summed rate of independent parts (one part per rank): each
    part's steps (or blocks of steps, for long runs) are resampled on their own, its rate taken,
    and the rates added. Memory: BOOTSTRAP_RESAMPLES x MAX_BLOCKS at most, whatever the steps."""
    total = np.zeros(BOOTSTRAP_RESAMPLES)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a resample of zero work: inf, dropped
        for work, times in parts:
            w, t = _blocks(work, times)
            idx = rng.integers(0, t.size, size=(BOOTSTRAP_RESAMPLES, t.size))
            total += w[idx].sum(axis=1) / t[idx].sum(axis=1)
    return total


def _total_rate(parts) -> float | None:
    rates = [rate(w, t) for w, t in parts]
    return None if not rates or any(r is None for r in rates) else float(sum(rates))


def _bounds(boots, level: float) -> tuple[float | None, float | None]:
    boots = boots[np.isfinite(boots)]
    if boots.size < 2:
        return None, None
    lo, hi = np.percentile(boots, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


def parts_rate_ci(parts, level: float = 0.95, seed: int = 0) -> dict:
    """Summed throughput of parts [(work, times), ...] with a percentile-bootstrap CI over steps."""
    value = _total_rate(parts)
    if value is None or any(len(t) < 2 for _, t in parts):
        return {"value": value, "ci_low": None, "ci_high": None, "level": level}
    lo, hi = _bounds(_boot_total_rate(parts, _rng(seed)), level)
    return {"value": value, "ci_low": lo, "ci_high": hi, "level": level}


def rate_ci(work, times, level: float = 0.95, seed: int = 0) -> dict:
    """Throughput sum(work)/sum(time) with a percentile-bootstrap CI over steps."""
    return parts_rate_ci([(work, times)], level, seed)


def parts_ratio_ci(parts_a, parts_b, level: float = 0.95, seed: int = 0) -> dict:
    """Summed rate of a over summed rate of b, bootstrap CI (sides resampled independently), verdict."""
    ra, rb = _total_rate(parts_a), _total_rate(parts_b)
    if not ra or not rb:
        return {"value": None, "ci_low": None, "ci_high": None, "significant": None, "level": level}
    if any(len(t) < 2 for _, t in list(parts_a) + list(parts_b)):
        return {"value": ra / rb, "ci_low": None, "ci_high": None, "significant": None, "level": level}
    rng = _rng(seed)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lo, hi = _bounds(_boot_total_rate(parts_a, rng) / _boot_total_rate(parts_b, rng), level)
    significant = None if lo is None else bool(lo > 1 or hi < 1)
    return {"value": ra / rb, "ci_low": lo, "ci_high": hi, "significant": significant, "level": level}


def ratio_ci(work_a, times_a, work_b, times_b, level: float = 0.95, seed: int = 0) -> dict:
    """rate(a) / rate(b) with a bootstrap CI (each side resampled independently) and a verdict."""
    return parts_ratio_ci([(work_a, times_a)], [(work_b, times_b)], level, seed)


def steady_state_start(times, tolerance: float = 0.10) -> int:
    """Number of leading steps slower than (1 + tolerance) x the median of the second half: steps
    that were still warming up. Only the first half is searched, so noise late in a run is not it."""
    x = np.asarray(times, float)
    if x.size < 6:
        return 0
    ref = float(np.median(x[x.size // 2:]))
    start = 0
    while start < x.size // 2 and x[start] > (1 + tolerance) * ref:
        start += 1
    return start


# ---- intervals over repeats (run-to-run variance) ---------------------------------------------------
# Kalibera & Jones, "Rigorous benchmarking in reasonable time" (ISMM 2013): the repeats of a benchmark
# in fresh processes are the independent unit; steps within one process share its state and are
# correlated, so an interval over steps leaves out the variance between runs. Throughputs are compared
# on the log scale (a ratio of geometric means), with Student's t, Welch's for two sides.


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (Numerical Recipes 6.4)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > 1e-300 else 1e-300
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > 1e-300 else 1e-300
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def _betai(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) (the binomial distribution's tail)."""
    return _betai(a, b, x)


def normal_quantile(p: float) -> float:
    """The standard normal quantile (bisection on erf)."""
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _chi2_quantile(p: float, df: float) -> float:
    """Wilson-Hilferty's approximation of a chi-square quantile (within 1 % from 2 degrees of freedom)."""
    z = normal_quantile(p)
    return df * max(0.0, 1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def count_rate_interval(count: int, span: float, level: float = 0.95) -> dict:
    """A rate of `count` events over `span` seconds with Garwood's interval for a Poisson count
    (chi-square quantiles by Wilson-Hilferty): the events' own randomness, not run-to-run variance."""
    if count <= 0 or not span > 0:
        return {"value": None, "ci_low": None, "ci_high": None, "level": level}
    a = (1 - level) / 2
    return {"value": count / span, "ci_low": _chi2_quantile(a, 2 * count) / (2 * span),
            "ci_high": _chi2_quantile(1 - a, 2 * count + 2) / (2 * span), "level": level}


def t_cdf(t: float, df: float) -> float:
    """Student's t distribution function."""
    tail = 0.5 * _betai(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile (bisection on t_cdf; df may be fractional, as Welch's is)."""
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _positive(rates) -> np.ndarray | None:
    """The rates as an array, or None where one is not a positive finite number (a run with no work,
    or steps too short to be real): no geometric mean and no interval then, rather than NaN."""
    x = np.asarray(rates, float)
    return x if x.size and np.all(np.isfinite(x)) and np.all(x > 0) else None


def log_variance(rates) -> float | None:
    """The sample variance of the rates' logs (what Welch's interval is made of); None without two
    rates, or where one is not a positive finite number."""
    r = _positive(rates)
    return float(np.log(r).var(ddof=1)) if r is not None and r.size >= 2 else None


def log_t_interval(rates, level: float = 0.95) -> dict:
    """Geometric mean of per-repeat throughputs with a t interval on the log scale."""
    r = _positive(rates)
    if r is None:
        return {"value": None, "ci_low": None, "ci_high": None, "level": level, "n": len(rates)}
    x = np.log(r)
    n = x.size
    center = float(np.exp(x.mean()))
    if n < 2:
        return {"value": center, "ci_low": None, "ci_high": None, "level": level, "n": n}
    half = t_quantile((1 + level) / 2, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return {"value": center, "ci_low": float(np.exp(x.mean() - half)), "ci_high": float(np.exp(x.mean() + half)),
            "level": level, "n": n}


def welch_ratio(rates_a, rates_b, level: float = 0.95) -> dict:
    """Ratio of geometric means a / b with Welch's t interval on the log scale (each side needs 2+)."""
    ra, rb = _positive(rates_a), _positive(rates_b)
    if ra is None or rb is None:
        return {"value": None, "ci_low": None, "ci_high": None, "level": level, "df": None}
    a, b = np.log(ra), np.log(rb)
    ratio = float(np.exp(a.mean() - b.mean()))
    if a.size < 2 or b.size < 2:
        return {"value": ratio, "ci_low": None, "ci_high": None, "level": level, "df": None}
    va, vb = float(a.var(ddof=1)) / a.size, float(b.var(ddof=1)) / b.size
    se = math.sqrt(va + vb)
    if se == 0.0:
        return {"value": ratio, "ci_low": ratio, "ci_high": ratio, "level": level, "df": math.inf}
    df = (va + vb) ** 2 / ((va**2 / (a.size - 1) if a.size > 1 else 0) + (vb**2 / (b.size - 1) if b.size > 1 else 0))
    half = t_quantile((1 + level) / 2, df) * se
    d = a.mean() - b.mean()
    return {"value": ratio, "ci_low": float(np.exp(d - half)), "ci_high": float(np.exp(d + half)), "level": level,
            "df": df}
