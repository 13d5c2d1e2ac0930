"""A speedup and its verdict, with run-to-run variance in the interval.

Each run's repeats (fresh processes) are the independent unit: the ratio of the two runs' geometric-
mean throughputs, with Welch's t interval on the per-repeat log throughputs (Kalibera & Jones,
"Rigorous benchmarking in reasonable time", ISMM 2013; a bootstrap over 3 clusters is far too
narrow: ~19 % false verdicts at 5 % CV in a simulation). A verdict needs `min_repeats` per side
(default 3), neither run contended nor interrupted, and an interval clear of the practical band
±min_effect (default 2 %):

    faster        the whole interval above 1 + min_effect
    slower        the whole interval below 1 / (1 + min_effect)
    same          the whole interval inside the band ("same within 2 %")
    inconclusive  anything else, or a contended or interrupted run, or a machine whose own speed moved
                  between two runs on it (saying which and why)
    no_verdict    fewer repeats than a verdict needs (one repeat: run-to-run variance unknown)

Human text puts the interval in the headline's direction: "1.56x slower (95 % CI 1.52-1.61x)".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.core import stats
from bench.model.derive import WITHIN_RUN, contention_reasons, repeat_rates, work_parts

VERSION = 2  # the analysis method; reports record the version they were written with


@dataclass
class Speedup:
    """run / baseline for one throughput metric."""

    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    level: float
    method: str
    repeats: tuple[int, int]  # (run, baseline)
    verdict: str  # faster | slower | same | inconclusive | no_verdict
    text: str

    @property
    def conclusive(self) -> bool:
        return self.verdict in ("faster", "slower", "same")


def timings(run) -> list:
    result = run.result
    return [p.timing for p in result.per_rank if p.timing.step_times_s] if result.per_rank else [result.timing]


def withheld(run) -> str | None:
    """Why a run cannot carry a verdict: it was interrupted, or shared with other work."""
    if run.result.status == "interrupted":
        return f"{run.name} was interrupted"
    shared = contention_reasons(run.result.timing)
    shared += [w.message for w in run.result.warnings if w.code == "contended" and "accelerator" in w.message]
    return f"{run.name} was contended ({shared[0]})" if shared else None


HOST_DRIFT = 0.10  # the reference kernel's spread on one quiet machine is ~2 %; a changed machine moved 25 %


def host_probe(run) -> float | None:
    """Median of the host's reference-kernel time over the run's measured repeats (measure/probe.py)."""
    values = sorted(r.host_probe_s for r in run.result.timing.measured if r.host_probe_s)
    return values[len(values) // 2] if values else None


def host_changed(run, base) -> str | None:
    """Why two runs on the same machine cannot be compared: the machine's own speed moved between
    them (the same fixed kernel ran more than HOST_DRIFT apart), which the workload would read as a
    difference. Runs on different machines are compared on their workloads alone."""
    same = [run.report.environment.host.get(k) == base.report.environment.host.get(k) for k in ("hostname", "cpu_model")]
    a, b = host_probe(run), host_probe(base)
    if not all(same) or not a or not b or max(a, b) / min(a, b) <= 1 + HOST_DRIFT:
        return None
    slower = run if a > b else base
    return (f"the machine itself ran {max(a, b) / min(a, b):.2f}x slower during {slower.name} (a fixed reference "
            "kernel, same host): its speed changed between the runs; run both again")


def _span(lo: float, hi: float) -> str:
    return f"{lo:.2f}–{hi:.2f}x"


def speedup(run, base, metric: str, min_repeats: int = 3, min_effect: float = 0.02, level: float = 0.95) -> Speedup:
    a, b = repeat_rates(timings(run), metric), repeat_rates(timings(base), metric)
    n = (len(a), len(b))
    if not a or not b:
        return _published(run, base, metric, n, level)
    if min(n) >= 2:
        d = stats.welch_ratio(a, b, level)
        method = f"Welch t on log throughputs, {n[0]} vs {n[1]} repeats"
    else:
        d = stats.parts_ratio_ci(work_parts(timings(run), metric), work_parts(timings(base), metric), level)
        method = WITHIN_RUN
    ratio, lo, hi = d["value"], d["ci_low"], d["ci_high"]
    if ratio is None or not math.isfinite(ratio) or ratio <= 0:
        return Speedup(None, None, None, level, method, n, "no_verdict",
                       "no ratio: a run's throughput is zero or not a finite number (no work measured?)")
    ci = f"95 % CI {_span(lo, hi)}" if lo is not None else "no interval"
    for why in (withheld(run), withheld(base), host_changed(run, base)):
        if why:
            return Speedup(ratio, lo, hi, level, method, n, "inconclusive", f"inconclusive: {why}")
    if min(n) < min_repeats:
        unknown = "1 repeat: run-to-run variance unknown" if min(n) == 1 else \
            f"{min(n)} repeats: a verdict needs {min_repeats} per side (--min-repeats)"
        return Speedup(ratio, lo, hi, level, method, n, "no_verdict",
                       f"{ratio:.2f}x ({unknown}; within-run {ci})" if min(n) == 1 else f"{ratio:.2f}x ({unknown}; {ci})")
    if lo is None or hi is None:
        return Speedup(ratio, lo, hi, level, method, n, "inconclusive", f"no clear difference: {ratio:.2f}x (no interval)")
    band_hi, band_lo = 1 + min_effect, 1 / (1 + min_effect)
    if lo > band_hi:
        return Speedup(ratio, lo, hi, level, method, n, "faster", f"{ratio:.2f}x faster ({ci})")
    if hi < band_lo:
        return Speedup(ratio, lo, hi, level, method, n, "slower",
                       f"{1 / ratio:.2f}x slower (95 % CI {_span(1 / hi, 1 / lo)})")
    if lo >= band_lo and hi <= band_hi:
        return Speedup(ratio, lo, hi, level, method, n, "same", f"same within {min_effect * 100:g} % ({ci})")
    return Speedup(ratio, lo, hi, level, method, n, "inconclusive", f"no clear difference: {ratio:.2f}x ({ci})")


def _published(run, base, metric, n, level) -> Speedup:
    a = getattr(run.metrics, metric, None)
    b = getattr(base.metrics, metric, None)
    ratio = a.value / b.value if a and b and a.value and b.value else None
    text = "no throughput to compare" if ratio is None else f"{ratio:.2f}x (published figures: no raw times, no interval)"
    return Speedup(ratio, None, None, level, "published figures", n, "no_verdict", text)


def short(code: str, s: Speedup | None) -> str:
    """The verdict in a few words for a table cell; the full sentence (why a verdict is withheld)
    goes in the notes under the table."""
    if code in ("baseline", "not_comparable", "failed") or s is None or s.ratio is None:
        return {"not_comparable": "not comparable", "no_verdict": "no verdict"}.get(code, code)
    ci = f" [{s.ci_low:.2f}–{s.ci_high:.2f}]" if s.ci_low is not None and s.ci_high is not None else ""
    if code == "faster":
        return f"{s.ratio:.2f}x faster{ci}"
    if code == "slower":
        inv = f" [{1 / s.ci_high:.2f}–{1 / s.ci_low:.2f}]" if ci else ""
        return f"{1 / s.ratio:.2f}x slower{inv}"
    if code == "same":
        return f"same{ci}"
    return f"{s.ratio:.2f}x, {code.replace('_', ' ')}"


def gate(s: Speedup, limit: float) -> str:
    """--fail-on: 'fail' for a conclusive regression beyond the limit (the whole interval below
    1 - limit), 'inconclusive' when it cannot be ruled out, else 'pass'."""
    if s.ratio is None or s.ci_low is None:
        return "inconclusive"
    if s.verdict == "inconclusive" and s.text.startswith("inconclusive:"):
        return "inconclusive"  # contended, interrupted, or the machine changed: no judgement either way
    if s.verdict == "no_verdict":
        return "inconclusive"
    if s.ci_high < 1 - limit:
        return "fail"
    if s.ci_low >= 1 - limit:
        return "pass"
    return "inconclusive"
