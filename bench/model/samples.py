"""Pure functions over samples and phase marks: per-phase summaries, energy of a window."""

from __future__ import annotations

import numpy as np

MIN_ENERGY_WINDOW_S = 1.0


def in_window(samples: list[dict], start: float, end: float) -> list[dict]:
    return [s for s in samples if start <= s["t"] <= end]


def summarize(samples: list[dict]) -> dict:
    """{key: {mean, max, min, n}} for every numeric key (lists and strings skipped)."""
    values: dict[str, list[float]] = {}
    for s in samples:
        for k, v in s.items():
            if k != "t" and isinstance(v, (int, float)) and not isinstance(v, bool):
                values.setdefault(k, []).append(float(v))
    return {k: {"mean": float(np.mean(v)), "max": float(np.max(v)), "min": float(np.min(v)), "n": len(v)}
            for k, v in values.items()}


def phase_summaries(samples: list[dict], phases, workload: str, variant: str | None = None) -> dict:
    """{phase: summary} over every span of that phase of the workload's result (all repeats together)."""
    spans: dict[str, list] = {}
    for p in phases:
        if p.workload == workload and p.variant == variant:
            spans.setdefault(p.phase, []).append(p)
    return {name: summarize([s for p in ps for s in in_window(samples, p.start_s, p.end_s)])
            for name, ps in spans.items()}


def accelerator_utilization(summary: dict, prefixes: list[str]) -> float | None:
    """Mean utilization over the accelerators sampled in a phase summary, or None if none was."""
    means = []
    for p in prefixes:
        stat = summary.get(p + ".util_percent")
        mean = stat.mean if hasattr(stat, "mean") else (stat or {}).get("mean")
        if mean is not None:
            means.append(mean)
    return float(np.mean(means)) if means else None


def _interp(samples: list[dict], key: str, t: float) -> float | None:
    pts = [(s["t"], s[key]) for s in samples if isinstance(s.get(key), (int, float))]
    if len(pts) < 2 or not pts[0][0] <= t <= pts[-1][0]:
        return None
    ts, vs = zip(*pts, strict=True)
    return float(np.interp(t, ts, vs))


# Which power key a fallback integrates, first found first: NVML_FI_DEV_POWER_INSTANT (field 186, nvidia-ml-py
# pynvml.py) where the collector sampled it, since nvmlDeviceGetPowerUsage (`power_w`) is a 1-s average on
# Ampere and newer (FACTS.md) that lags a window's edges and smears its changes; else `power_w`.
POWER_KEYS = (("power_instant_w", "integrated instantaneous power samples (estimate)"),
              ("power_w", "integrated power samples (estimate)"))


def energy_from_samples(samples: list[dict], start: float, end: float, prefix: str) -> dict:
    """Energy of one device over [start, end]: the energy-counter delta (interpolated to the window
    edges) if the device has one, else integrated power samples (labelled: the instantaneous field where
    it was sampled, else the power reading), else null with a reason."""
    duration = end - start
    if duration < MIN_ENERGY_WINDOW_S:
        return {"joules": None, "method": None,
                "reason": f"measured window {duration:.2f} s is shorter than {MIN_ENERGY_WINDOW_S:.0f} s: "
                          f"--time-budget {MIN_ENERGY_WINDOW_S:g} (seconds per repeat) or more"}
    a, b = _interp(samples, prefix + "energy_j", start), _interp(samples, prefix + "energy_j", end)
    if a is not None and b is not None and b >= a:
        return {"joules": b - a, "method": "energy counter", "reason": None}
    for key, method in POWER_KEYS:
        joules = _integrated(in_window(samples, start, end), prefix + key, duration)
        if joules is not None:
            return {"joules": joules, "method": method, "reason": None}
    return {"joules": None, "method": None, "reason": f"no energy counter or power samples for {prefix.rstrip('.')}"}


def _integrated(window: list[dict], key: str, duration: float) -> float | None:
    """Trapezoids over the samples of `key`, scaled from the span they cover to `duration`; None with
    fewer than two samples."""
    pts = [(s["t"], s[key]) for s in window if isinstance(s.get(key), (int, float)) and not isinstance(s[key], bool)]
    if len(pts) < 2:
        return None
    ts, ws = zip(*pts, strict=True)
    covered = ts[-1] - ts[0]
    area = sum((ws[i] + ws[i + 1]) / 2 * (ts[i + 1] - ts[i]) for i in range(len(ts) - 1))
    return area * duration / covered if covered > 0 else None
