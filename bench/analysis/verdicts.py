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
                  between two runs on it (the reason says which and why)
    no_verdict    fewer repeats than a verdict needs (one repeat: run-to-run variance unknown)

The reason is a code with values (`Speedup.reason`); bench/render/words.py says it in words.
"""

from __future__ import annotations

import math

from bench.analysis.comparison import Note, Speedup
from bench.core import stats
from bench.model.derive import contention_reasons, repeat_rates, work_parts

def timings(run) -> list:
    result = run.result
    return [p.timing for p in result.per_rank if p.timing.step_times_s] if result.per_rank else [result.timing]


def withheld(run) -> Note | None:
    """Why a run cannot carry a verdict: it was interrupted, or shared with other work."""
    if run.result.status == "interrupted":
        return Note(code="interrupted", values={"run": run.name})
    shared = contention_reasons(run.result.timing)
    shared += [w.message for w in run.result.warnings if w.code == "contended" and "accelerator" in w.message]
    return Note(code="contended", values={"run": run.name, "detail": shared[0]}) if shared else None


HOST_DRIFT = 0.10  # the reference kernel's spread on one quiet machine is ~2 %; a changed machine moved 25 %


def host_probe(run) -> float | None:
    """Median of the host's reference-kernel time over the run's measured repeats (measure/probe.py)."""
    values = sorted(r.host_probe_s for r in run.result.timing.measured if r.host_probe_s)
    return values[len(values) // 2] if values else None


def host_changed(run, base) -> Note | None:
    """Why two runs on the same machine cannot be compared: the machine's own speed moved between
    them (the same fixed kernel ran more than HOST_DRIFT apart), which the workload would read as a
    difference. Runs on different machines are compared on their workloads alone."""
    same = [run.report.environment.host.get(k) == base.report.environment.host.get(k) for k in ("hostname", "cpu_model")]
    a, b = host_probe(run), host_probe(base)
    if not all(same) or not a or not b or max(a, b) / min(a, b) <= 1 + HOST_DRIFT:
        return None
    slower = run if a > b else base
    return Note(code="host_changed", values={"run": slower.name, "factor": max(a, b) / min(a, b)})


def speedup(run, base, metric: str, min_repeats: int = 3, min_effect: float = 0.02, level: float = 0.95) -> Speedup:
    a, b = repeat_rates(timings(run), metric), repeat_rates(timings(base), metric)
    n = (len(a), len(b))
    kw = {"metric": metric, "level": level, "repeats": n, "min_repeats": min_repeats, "min_effect": min_effect}
    if not a or not b:
        return _published(run, base, kw)
    if min(n) >= 2:
        d, method = stats.welch_ratio(a, b, level), "welch"
    else:
        d, method = stats.parts_ratio_ci(work_parts(timings(run), metric), work_parts(timings(base), metric), level), \
            "within_run"
    ratio, lo, hi = d["value"], d["ci_low"], d["ci_high"]
    if ratio is None or not math.isfinite(ratio) or ratio <= 0:
        return Speedup(ratio=None, ci_low=None, ci_high=None, method=method, verdict="no_verdict",
                       reason=Note(code="no_ratio"), **kw)
    verdict, reason = judge(ratio, lo, hi, n, min_repeats, min_effect, withheld(run) or withheld(base)
                            or host_changed(run, base))
    return Speedup(ratio=ratio, ci_low=lo, ci_high=hi, method=method, verdict=verdict, reason=reason, **kw)


def judge(ratio, lo, hi, n, min_repeats, min_effect, why: Note | None) -> tuple[str, Note | None]:
    """(verdict, reason) of a ratio and its interval."""
    if why is not None:
        return "inconclusive", why
    if min(n) < min_repeats:
        few = Note(code="few_repeats", values={"repeats": min(n), "needed": min_repeats})
        return "no_verdict", Note(code="one_repeat") if min(n) == 1 else few
    if lo is None or hi is None:
        return "inconclusive", Note(code="no_interval")
    band_hi, band_lo = 1 + min_effect, 1 / (1 + min_effect)
    if lo > band_hi:
        return "faster", None
    if hi < band_lo:
        return "slower", None
    if lo >= band_lo and hi <= band_hi:
        return "same", None
    return "inconclusive", Note(code="unclear")


def _published(run, base, kw) -> Speedup:
    a, b = run.throughput(kw["metric"]), base.throughput(kw["metric"])
    ratio = a.value / b.value if a.value and b.value else None
    reason = Note(code="no_throughput" if ratio is None else "no_raw_times")
    return Speedup(ratio=ratio, ci_low=None, ci_high=None, method="published", verdict="no_verdict", reason=reason,
                   **kw)


WITHHELD = ("interrupted", "contended", "host_changed")  # no judgement either way, for a verdict or a gate


def gate(s: Speedup, limit: float) -> str:
    """--fail-on: 'fail' for a conclusive regression beyond the limit (the whole interval below
    1 - limit), 'inconclusive' when it cannot be ruled out, else 'pass'."""
    if s.ratio is None or s.ci_low is None or s.verdict == "no_verdict":
        return "inconclusive"
    if s.reason is not None and s.reason.code in WITHHELD:
        return "inconclusive"
    if s.ci_high < 1 - limit:
        return "fail"
    if s.ci_low >= 1 - limit:
        return "pass"
    return "inconclusive"
