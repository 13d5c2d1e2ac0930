"""A serving session's accelerator over its busy spans, and its energy per request with and without the idle gaps.

A session waits for its arrivals by design: at a low rate the accelerator idles between requests. Judged over
the whole window, every low-rate result looked like an idle accelerator, and energy per request, the window's
energy scaled by the busy share, was the idle power times the busy time — it ranked devices by idle power.

- Busy spans: the union of each request's span from its send to its end (the request log, on the run's clock);
  their time is the engine's steps in-process, the client's busy steps over HTTP (Repeat.step_times_s).
- Utilization while busy: a utilization counter's mean over a window is the share of it a kernel ran (NVML: "%
  of time ... a kernel was executing" over the past 1/6-1 s; HLML: over the past 1 s), all of it inside the busy
  spans; so the window's mean over the busy share, at most 100. Sampling inside short spans would not do: each
  sample reads the second before it, idle gaps included.
- Energy: the session's (counter or integrated power, as the steps scenario reads it) per completed request,
  and the busy energy apart: the session's less the idle power over the idle time. The idle power is fitted to
  the power readings against the busy share of the second each covers (NVML's power.draw is a 1-s average on
  Ampere and newer, FACTS.md; HLML's is taken as the same): at a low rate most readings are idle, at a high one
  the gaps between requests are shorter than a reading, and the fit needs neither to hold a pure idle second.
  Where its error leaves the busy energy uncertain by more than MAX_ERROR, the busy figure is null and says why.
"""

from __future__ import annotations

import bisect
import math
import statistics

from bench.model.report import Busy, Result, Telemetry

IDLE_LAG_S = 1.0  # a power or utilization reading covers the second before it
MIN_SAMPLES = 3
MAX_ERROR = 0.1  # the busy energy's 95 % error from the idle power's fit, at most this share of it
FULL_SHARE = 0.99  # busy for at least this share of the window: its energy is the busy energy


def serving(result: Result) -> bool:
    return any(rep.requests is not None for rep in result.timing.repeats)


def _summed(result: Result, name: str) -> float:
    """A per-step column summed over every repeat: the telemetry's measured spans and the energy read around
    them are every repeat's, those set aside included."""
    return float(sum(sum(getattr(rep, name)) for rep in result.timing.repeats))


def busy_spans(result: Result) -> list[tuple[float, float]]:
    """The merged spans, over every repeat, in which some request was in flight (sent, not yet ended)."""
    spans = []
    for rep in result.timing.repeats:
        log = rep.requests
        if log is None:
            continue
        sent = log.sent_s or [None] * len(log.arrival_s)
        for i, start in enumerate(log.start_s):
            a = sent[i] if sent[i] is not None else start
            stamps = (log.token_s or [[]] * len(log.arrival_s))[i]
            b = log.finish_s[i] if log.finish_s[i] is not None else max(stamps, default=None)
            if a is not None and b is not None and b >= a:
                spans.append((a, b))
    return merge_spans(spans)


def merge_spans(spans) -> list[tuple[float, float]]:
    """The union of (start, end) spans: sorted, apart, overlapping ones joined."""
    merged: list[list[float]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def busy_of(result: Result, window_util: float | None) -> Busy | None:
    """The busy spans' time and share of the measured window, and the utilization over them."""
    seconds, window = _summed(result, "step_times_s"), sum(r.wall_s or 0.0 for r in result.timing.repeats)
    if window <= 0:
        return None
    share = min(1.0, seconds / window)
    util = min(100.0, window_util / share) if window_util is not None and share > 0 else None
    return Busy(seconds=seconds, share=share, util_percent=util)


def _busy_within(busy: list[tuple[float, float]], ends: list[float], lo: float, hi: float) -> float:
    """Busy seconds within [lo, hi]: only the spans that reach into it (found by bisection), not every span for
    every reading (an hour at 10 readings a second and a request a second took a minute)."""
    total = 0.0
    for x, y in busy[bisect.bisect_right(ends, lo):]:
        if x >= hi:
            break
        total += max(0.0, min(y, hi) - max(x, lo))
    return total


def idle_power(telemetry: Telemetry, windows, busy, prefixes: list[str]) -> tuple[float | None, float | None, int]:
    """The accelerators' summed power with nothing in flight, its standard error, and the readings it rests on:
    each power reading inside a measured window against the busy share of the second it covers, fitted by least
    squares (power = idle + (busy - idle) x share: a device drawing one power idle and another at work); the
    intercept is the idle power. (None, None, n) where the shares never vary (a session always busy)."""
    keys = [f"{p}.power_w" for p in prefixes]
    xs, ys = [], []
    ends = [b for _, b in busy]  # the merged spans are sorted and apart: their ends are sorted too
    for s in telemetry.samples:
        t, watts = s.get("t"), [s.get(k) for k in keys]
        inside = isinstance(t, int | float) and any(a <= t - IDLE_LAG_S and t <= b for a, b in windows)
        if inside and all(isinstance(w, int | float) and not isinstance(w, bool) for w in watts):
            xs.append(_busy_within(busy, ends, t - IDLE_LAG_S, t) / IDLE_LAG_S)
            ys.append(sum(watts))
    n = len(xs)
    mx, my = (statistics.fmean(xs), statistics.fmean(ys)) if n else (0.0, 0.0)
    sxx = sum((x - mx) ** 2 for x in xs)
    if n < MIN_SAMPLES or sxx <= 1e-12:
        return None, None, n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    idle = my - slope * mx
    sigma = math.sqrt(sum((y - idle - slope * x) ** 2 for x, y in zip(xs, ys, strict=True)) / (n - 2)) if n > 2 else 0
    return idle, sigma * math.sqrt(1 / n + mx * mx / sxx), n


def per_request(result: Result, telemetry: Telemetry, windows, prefixes: list[str]) -> None:
    """The session's energy per completed request and the busy energy apart (Energy's serving fields); the
    device figure's per-sample and per-token values become the busy energy's (never the window's scaled)."""
    e, fig = result.energy, result.energy.device
    done, tokens = _summed(result, "step_samples"), _summed(result, "step_tokens")
    if fig is None or fig.joules is None or not fig.window_s:
        e.per_request_reason = (fig.reason if fig is not None else None) or "the device's energy was not measured"
    elif not done:
        e.per_request_reason = "no request completed in the session"
    else:
        e.session_per_request_j = fig.joules / done
        e.busy_j, e.idle_power_w, e.per_request_reason = _busy_energy(result, telemetry, windows, prefixes)
        e.busy_per_request_j = e.busy_j / done if e.busy_j is not None else None
    if fig is not None:
        fig.per_sample_j = e.busy_per_request_j
        fig.per_token_j = e.busy_j / tokens if e.busy_j is not None and tokens else None


def _busy_energy(result: Result, telemetry: Telemetry, windows, prefixes):
    """(busy joules, idle watts, why null): the session's less the idle power over the idle time, where the fit
    resolves it (its 95 % error over the idle time within MAX_ERROR of the busy energy)."""
    fig, busy_s = result.energy.device, _summed(result, "step_times_s")
    idle_s = max(0.0, fig.window_s - busy_s)
    watts, se, n = idle_power(telemetry, windows, busy_spans(result), prefixes)
    if watts is None:
        if idle_s <= (1 - FULL_SHARE) * fig.window_s:
            return fig.joules, None, None  # busy all but a sliver of the window: the session's energy is the busy one
        return None, None, (f"the idle power could not be read: {n} power reading(s) of {IDLE_LAG_S:g} s inside the "
                            f"window, none with another busy share (idle {idle_s:.1f} s of {fig.window_s:.1f} s)")
    joules, error = fig.joules - watts * idle_s, 2 * se * idle_s
    if watts < 0 or joules <= 0 or error > MAX_ERROR * joules:
        return None, None, (f"the idle power fitted to {n} power readings, {watts:.3g} ± {2 * se:.2g} W, over the idle "
                            f"{idle_s:.1f} s leaves {joules:.3g} ± {error:.2g} J of busy energy: the readings do not "
                            "resolve it")
    return joules, watts, None
