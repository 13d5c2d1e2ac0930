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
from bench.model.derive import (HOST_DRIFT, contention_reasons, core_metrics, figure_value, repeat_rates,
                                threads_that_fit, work_parts)
from bench.model.report import Timing

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


FAILED_SHARE = 0.01  # beyond it, a p99 of the completed requests says nothing of the p99 of all of them


def requests_failed(run) -> Note | None:
    """Why a serving run's latency cannot carry a verdict: more than 1 % of its measured requests failed,
    so a percentile of the completed ones is not the service's (a server that fails its slowest requests
    would read faster)."""
    wm = run.result.workload_metrics or {}
    errors, done = wm.get("errors"), wm.get("requests")
    if type(errors) is not int or type(done) is not int or errors + done == 0:
        return None
    share = errors / (errors + done)
    return Note(code="requests_failed", values={"run": run.name, "share": share}) if share > FAILED_SHARE else None


def host_probe(run) -> float | None:
    """Median of the host's reference-kernel time over the run's measured repeats (measure/probe.py)."""
    values = sorted(r.host_probe_s for r in run.result.timing.measured if r.host_probe_s)
    return values[len(values) // 2] if values else None


def probe_threads(run) -> set[int | None]:
    """The torch threads the reference kernel ran on in the run's measured repeats (the worker's own)."""
    return {r.threads for r in run.result.timing.measured if r.host_probe_s}


def host_changed(run, base) -> Note | None:
    """Why two runs on the same machine cannot be compared: the machine's own speed moved between
    them (the same fixed kernel ran more than HOST_DRIFT apart), which the workload would read as a
    difference. Runs on different machines are compared on their workloads alone, and so are runs
    whose kernel ran on other thread counts: its time is how fast the threads hand work to each other,
    which differs by the count itself (one thread hands nothing over), not a change of the machine."""
    same = [run.report.environment.host.get(k) == base.report.environment.host.get(k) for k in ("hostname", "cpu_model")]
    same.append(len(probe_threads(run) | probe_threads(base)) == 1)
    a, b = host_probe(run), host_probe(base)
    if not all(same) or not a or not b or max(a, b) / min(a, b) <= 1 + HOST_DRIFT:
        return None
    slower = run if a > b else base
    return Note(code="host_changed", values={"run": slower.name, "factor": max(a, b) / min(a, b)})


def figure_values(run, spec_key: str) -> list[float]:
    """A declared figure in each measured repeat: as the run recorded it (`Repeat.figure_values`), or,
    for a `metrics.` figure of an older report, recomputed from the repeat's raw times. Empty where
    some repeat has none (no interval can be made from the rest without bias)."""
    out = []
    for rep in run.result.timing.judged:
        value = rep.figure_values.get(spec_key)
        if value is None and spec_key.startswith("metrics.") and rep.step_times_s:
            value = figure_value({}, core_metrics(Timing([rep]), None, None, None), spec_key)
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            return []
        out.append(float(value))
    return out


def sides(run, base, metric: str, spec_key: str | None = None) -> tuple[list[float], list[float]]:
    """The per-repeat values a speedup's interval is made of: each run's throughputs, or a declared
    figure's values."""
    if spec_key is None:
        return repeat_rates(timings(run), metric), repeat_rates(timings(base), metric)
    return figure_values(run, spec_key), figure_values(base, spec_key)


def figure_speedup(run, base, metric: str, spec_key: str, min_repeats: int = 3, min_effect: float = 0.02,
                   level: float = 0.95, lower: bool = False, why: Note | None = None) -> Speedup:
    """run / baseline of a declared figure (a latency, a recall), Welch's t on its repeats' logs; with
    `lower` (a figure better lower, led with) baseline / run, so that "faster" is the better side; `why`:
    a reason the caller knows that no verdict may be given."""
    a, b = sides(run, base, metric, spec_key)
    kw = {"metric": metric, "level": level, "repeats": (len(a), len(b)), "min_repeats": min_repeats,
          "min_effect": min_effect, "method": "welch"}  # (the run's, the baseline's), before a latency's swap
    if lower:
        a, b = b, a
    if not a or not b:
        return Speedup(ratio=None, ci_low=None, ci_high=None, verdict="no_verdict", reason=Note(code="no_values"), **kw)
    if all(x == 0 for x in a + b):  # a count that is none on both sides (errors 0 vs 0): exactly the same
        return _ratio(run, base, {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0}, kw, why)
    return _ratio(run, base, stats.welch_ratio(a, b, level), kw, why)


def zero_sided(values: tuple[list[float], list[float]], better: str) -> str | None:
    """A gate on a figure that can be zero (errors, SLO attainment, goodput), where a side is zero in
    every repeat and no ratio of logs exists: 'pass' where the run cannot be worse than its baseline
    — both none, a lower-is-better figure at zero in the run, a higher-is-better one at zero in the
    baseline; None where the ratio's rule decides (a run that went from none to some stays unsettled)."""
    a, b = values
    if not a or not b:
        return None
    run_zero, base_zero = all(x == 0 for x in a), all(x == 0 for x in b)
    return "pass" if (run_zero and base_zero) or (run_zero if better == "lower" else base_zero) else None


def speedup(run, base, metric: str, min_repeats: int = 3, min_effect: float = 0.02, level: float = 0.95) -> Speedup:
    a, b = sides(run, base, metric)
    n = (len(a), len(b))
    kw = {"metric": metric, "level": level, "repeats": n, "min_repeats": min_repeats, "min_effect": min_effect}
    if not a or not b:
        return _published(run, base, kw)
    if min(n) >= 2:
        d, method = stats.welch_ratio(a, b, level), "welch"
    else:
        d, method = stats.parts_ratio_ci(work_parts(timings(run), metric), work_parts(timings(base), metric), level), \
            "within_run"
    return _ratio(run, base, d, {**kw, "method": method})


def _ratio(run, base, d: dict, kw: dict, why: Note | None = None) -> Speedup:
    """The Speedup of a ratio with its interval: its verdict, or why it has none."""
    ratio, lo, hi = d["value"], d["ci_low"], d["ci_high"]
    if ratio is None or not math.isfinite(ratio) or ratio <= 0:
        return Speedup(ratio=None, ci_low=None, ci_high=None, verdict="no_verdict", reason=Note(code="no_ratio"), **kw)
    verdict, reason = judge(ratio, lo, hi, kw["repeats"], kw["min_repeats"], kw["min_effect"],
                            why or withheld(run) or withheld(base) or host_changed(run, base))
    return Speedup(ratio=ratio, ci_low=lo, ci_high=hi, verdict=verdict, reason=reason, **kw)


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


def gate(s: Speedup, limit: float, better: str = "higher") -> str:
    """--fail-on: 'fail' for a conclusive regression beyond the limit (a figure that is better higher:
    the whole interval below 1 - limit; better lower: the whole interval above 1 + limit),
    'inconclusive' when it cannot be ruled out, else 'pass'."""
    if s.ratio is None or s.ci_low is None or s.verdict == "no_verdict":
        return "inconclusive"
    if s.reason is not None and s.reason.code in WITHHELD:
        return "inconclusive"
    if better == "lower":
        worse, fine = s.ci_low > 1 + limit, s.ci_high <= 1 + limit
    else:
        worse, fine = s.ci_high < 1 - limit, s.ci_low >= 1 - limit
    return "fail" if worse else "pass" if fine else "inconclusive"


def gate_hint(s: Speedup, run, base, values: tuple[list[float], list[float]] = ((), ()), limit: float = 0.05,
              better: str = "higher") -> Note | None:
    """What would give an inconclusive gate a verdict: a quieter machine (or fewer threads, where they
    would leave the other load its cores), both runs again, more repeats, or a narrower interval
    (about how many more repeats per side, from the runs' variances: `settle`)."""
    code = s.reason.code if s.reason is not None else None
    if code == "contended":
        shared = run if withheld(run) is not None else base
        return Note(code="quieter", run=shared.name, values=_load_of(shared))
    if code in ("host_changed", "interrupted"):
        return Note(code="rerun", values={"why": code})
    if code in ("one_repeat", "few_repeats") or (s.ratio is not None and min(s.repeats) < s.min_repeats):
        return Note(code="more_repeats", values={"repeats": min(s.repeats), "needed": s.min_repeats})
    if s.ci_low is not None and s.ci_high is not None:
        edge = math.log(1 + limit) if better == "lower" else math.log(1 - limit)
        outlook = settle(s, *values, [edge]) or {}
        if outlook.get("toward"):
            outlook["toward"] = "pass" if (outlook["toward"] == "above") == (better == "higher") else "fail"
        return Note(code="narrower", values={"ci_low": s.ci_low, "ci_high": s.ci_high, "repeats": min(s.repeats),
                                             **outlook})
    return None


MAX_MORE = 100  # more repeats per side than this: not a plan anyone would follow


def settle(s: Speedup, a, b, edges: list[float]) -> dict | None:
    """About how many more repeats per side would bring Welch's interval of log(a / b) clear of every
    edge (log ratios: the band's ends, a gate's limit), were the ratio and each side's variance to
    stay as measured; `more` None where it would take over MAX_MORE (the ratio sits at an edge). With
    it, where the ratio lies (`toward`: above or below the edges, or between two), and the half-width
    each run would need (`target_ci`, a fraction, for `bench run --target-ci`). None without 2 repeats
    a side or a variance."""
    va, vb = stats.log_variance(a), stats.log_variance(b)
    if s.ratio is None or va is None or vb is None:
        return None
    d = math.log(s.ratio)
    room = min(abs(d - e) for e in edges)
    if va + vb == 0 or room == 0:
        return None
    above = sum(d > e for e in edges)
    toward = "above" if above == len(edges) else "below" if above == 0 else "between"
    more = next((m for m in range(1, MAX_MORE + 1) if _half(va, vb, len(a) + m, len(b) + m, s.level) < room), None)
    return {"more": more, "toward": toward, "target_ci": math.sinh(room / math.sqrt(2))}


def _half(va: float, vb: float, na: int, nb: int, level: float) -> float:
    """Welch's interval half-width (log scale) with these variances and repeats."""
    ea, eb = va / na, vb / nb
    df = (ea + eb) ** 2 / (ea**2 / (na - 1) + eb**2 / (nb - 1))
    return stats.t_quantile((1 + level) / 2, df) * math.sqrt(ea + eb)


def verdict_outlook(s: Speedup, values: tuple[list[float], list[float]]) -> dict | None:
    """`settle` for an unclear verdict: clear of both ends of the ±min_effect band; `toward` as the
    verdict it would then be (faster, slower, same)."""
    if s.verdict != "inconclusive" or s.reason is None or s.reason.code != "unclear":
        return None
    band = math.log(1 + s.min_effect)
    out = settle(s, *values, [-band, band])
    if out is not None:
        out["toward"] = {"above": "faster", "below": "slower", "between": "same"}[out["toward"]]
    return out


def _load_of(run) -> dict:
    """The other load a contended run saw, its threads, and the threads that would have fit."""
    reps = [r for r in run.result.timing.measured if r.contention and r.contention.reasons]
    loads = [r.contention.other_load_cores for r in reps if r.contention.other_load_cores is not None]
    load = sum(loads) / len(loads) if loads else None
    choice = run.report.environment.threads
    threads = next((r.threads for r in run.result.timing.measured if r.threads), None)
    fit = threads_that_fit(choice.cpus, load, choice.ranks) if choice and choice.cpus and load is not None else None
    return {"other_load": load, "cpus": choice.cpus if choice else None, "threads": threads, "fit": fit}
