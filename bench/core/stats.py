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


def _boot_total_rate(parts, rng) -> np.ndarray:
    """Bootstrap distribution of the summed rate of independent parts (one part per rank): each
    part's steps are resampled on their own, its rate taken, and the rates added."""
    total = np.zeros(BOOTSTRAP_RESAMPLES)
    for work, times in parts:
        w, t = np.asarray(work, float), np.asarray(times, float)
        idx = rng.integers(0, t.size, size=(BOOTSTRAP_RESAMPLES, t.size))
        total += w[idx].sum(axis=1) / t[idx].sum(axis=1)
    return total


def _total_rate(parts) -> float | None:
    rates = [rate(w, t) for w, t in parts]
    return None if not rates or any(r is None for r in rates) else float(sum(rates))


def _bounds(boots, level: float) -> tuple[float, float]:
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
    lo, hi = _bounds(_boot_total_rate(parts_a, rng) / _boot_total_rate(parts_b, rng), level)
    return {"value": ra / rb, "ci_low": lo, "ci_high": hi, "significant": bool(lo > 1 or hi < 1), "level": level}


def ratio_ci(work_a, times_a, work_b, times_b, level: float = 0.95, seed: int = 0) -> dict:
    """rate(a) / rate(b) with a bootstrap CI (each side resampled independently) and a verdict."""
    return parts_ratio_ci([(work_a, times_a)], [(work_b, times_b)], level, seed)


def mann_whitney_p(a, b) -> float | None:
    """Two-sided Mann-Whitney U p-value (normal approximation with tie correction)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    n1, n2 = a.size, b.size
    if n1 < 2 or n2 < 2:
        return None
    both = np.concatenate([a, b])
    order = both.argsort(kind="mergesort")
    ranks = np.empty_like(both)
    ranks[order] = np.arange(1, both.size + 1)
    _, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]  # average ranks for ties
    u = ranks[:n1].sum() - n1 * (n1 + 1) / 2
    n = n1 + n2
    tie = (counts ** 3 - counts).sum() / (n * (n - 1))
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie))
    if sigma == 0:
        return 1.0
    z = (abs(u - n1 * n2 / 2) - 0.5) / sigma
    return float(math.erfc(max(z, 0) / math.sqrt(2)))


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
