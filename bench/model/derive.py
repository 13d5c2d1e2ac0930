"""Figures derived from a result's raw timing. Pure: the runner calls it when writing a report and the
comparer calls it again when loading one, so the numbers always follow from the raw step times."""

from __future__ import annotations

from bench.core import stats
from bench.model.report import FigureSpec, Interval, Metrics, Mfu, RankResult, ResultWarning, Summary, Timing

NOISY_CV = 0.05
WORK = {"samples_per_s": "step_samples", "tokens_per_s": "step_tokens", "steps_per_s": None}
OTHER_LOAD_CORES = 0.25  # other processes' CPU above this shares a machine's cores (a core counts as taken)
PREFIXES = ("workload_metrics.", "metrics.")


def figure_key(spec_key: str) -> str:
    """A declared figure's key as every output names it: without the `metrics.` or
    `workload_metrics.` prefix (`ttft_s.p99`, `parlai.exps`)."""
    for prefix in PREFIXES:
        if spec_key.startswith(prefix):
            return spec_key[len(prefix):]
    return spec_key


def figure_value(workload_metrics: dict, metrics, key: str):
    """A figure's raw value: `metrics.<name>[.<stat>]` from the (recomputed) metrics,
    `workload_metrics.<name>[.<stat>]` from the workload's own (a Summary's stat, an Interval's value)."""
    if key.startswith("metrics."):
        path = key[len("metrics."):].split(".")
        value = getattr(metrics, path[0], None)
        return _pick(value, path[1] if len(path) > 1 else None)
    name = figure_key(key)
    if name in workload_metrics:
        return _pick(workload_metrics[name], None)
    head, _, stat = name.rpartition(".")
    if head in workload_metrics:
        return _pick(workload_metrics[head], stat)
    return None


def _pick(value, stat: str | None):
    if isinstance(value, Interval):
        return value.value if stat in (None, "value") else getattr(value, stat, None)
    if isinstance(value, Summary):
        return getattr(value, stat or "median", None)
    if hasattr(value, "__dataclass_fields__"):
        return getattr(value, stat, None) if stat else None
    return value


def threads_that_fit(cpus: float, other_load: float, ranks: int = 1) -> int:
    """Threads per rank that leave other load its cores: the free cores shared among the ranks, at
    least one (a core counts as taken when other load uses more than OTHER_LOAD_CORES of it)."""
    import math

    return max(1, math.floor((cpus - other_load + OTHER_LOAD_CORES) / ranks))


def lead_spec(result) -> FigureSpec:
    """The figure a result leads with — its value first, compared, gated and stopped on: its declared lead
    (a serving result's latency at its offered rate), or its throughput `metrics.<main_metric>`."""
    return lead_of(result.figures, result.main_metric)


def lead_of(figures, main_metric: str | None) -> FigureSpec:
    declared = next((f for f in figures if f.lead), None)
    metric = main_metric or "samples_per_s"
    if declared is not None and not (declared.key.startswith("metrics.") and figure_key(declared.key) in WORK):
        return declared
    return FigureSpec(f"metrics.{metric}", declared.label if declared else metric.replace("_per_s", "/s"),
                      declared.unit if declared else metric.replace("_per_s", "/s"), "higher", lead=True)


def is_throughput(spec: FigureSpec) -> bool:
    return spec.key.startswith("metrics.") and figure_key(spec.key) in WORK


def lead_estimate(result, metrics: Metrics | None = None, interval=None) -> Interval:
    """The lead's value with its interval: a throughput's (metrics); else the declared figure as the result
    holds it — one figure, one value everywhere (a serving p99 is the pooled requests') — with the interval
    `interval(result, spec)` gives, where a reader can make one ((low, high), or None)."""
    spec = lead_spec(result)
    metrics = metrics if metrics is not None else result.metrics
    if is_throughput(spec):
        return getattr(metrics, figure_key(spec.key), None) or Interval(None)
    value = figure_value(result.workload_metrics or {}, metrics, spec.key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return Interval(None)
    bounds = interval(result, spec) if interval is not None else None
    if bounds is None:
        return Interval(float(value), method="no interval")
    return Interval(float(value), bounds[0], bounds[1], 0.95, "distribution-free 95 % interval of the pooled requests' "
                                                                "percentile (order statistics)")


def summary(values) -> Summary:
    return Summary(**stats.summary(values))


def interval(d: dict, method: str | None = None, ranks: int | None = None) -> Interval:
    return Interval(d["value"], d["ci_low"], d["ci_high"], d.get("level"), method, ranks)


def work_parts(timings: list[Timing], metric: str) -> list[tuple[list, list]]:
    """[(work per step, step times)] per timing (one per rank) for a throughput metric."""
    key = WORK[metric]
    parts = []
    for t in timings:
        times = t.step_times_s
        if times:
            parts.append((getattr(t, key) if key else [1] * len(times), times))
    return parts


WITHIN_RUN = "1 repeat: a bootstrap over its steps; the run-to-run variance is unknown"


def repeat_rates(timings: list[Timing], metric: str) -> list[float]:
    """Throughput of each repeat (work over its summed step time); with several ranks (timings), the
    sum over ranks of each rank's rate in that repeat. Repeats some rank lacks are left out."""
    key = WORK[metric]
    by_index: dict[int, list[float]] = {}
    for t in timings:
        for r in t.measured:
            work = sum(getattr(r, key)) if key else len(r.step_times_s)
            by_index.setdefault(r.index, []).append(work / sum(r.step_times_s))
    return [sum(v) for i, v in sorted(by_index.items()) if len(v) == len(timings)]


def rate_interval(timings: list[Timing], metric: str) -> Interval:
    """A run's throughput: with 2+ repeats, the geometric mean of the repeats' throughputs with a t
    interval on the log scale (run-to-run variance included); with one, the pooled rate and a
    bootstrap over its steps, labelled as within-run."""
    rates = repeat_rates(timings, metric)
    ranks = len(timings) if len(timings) > 1 else None
    if len(rates) >= 2:
        d = stats.log_t_interval(rates)
        return Interval(d["value"], d["ci_low"], d["ci_high"], d["level"],
                        f"t interval over {len(rates)} repeats (log scale)", ranks)
    return interval(stats.parts_rate_ci(work_parts(timings, metric)), WITHIN_RUN, ranks)


def core_metrics(timing: Timing, flops_per_step: float | None, peak: float | None, peak_source: str | None) -> Metrics:
    times = timing.step_times_s
    if not times:
        return Metrics()
    out = Metrics(step_time_s=summary(times))
    for metric in WORK:
        setattr(out, metric, rate_interval([timing], metric))
    step_flops = timing.step_flops
    if step_flops and len(step_flops) == len(times):
        flops_per_step = sum(step_flops) / len(step_flops)
    if flops_per_step:
        achieved = flops_per_step * len(times) / sum(times)
        out.achieved_flops_per_s = achieved
        out.mfu = (Mfu(achieved / peak, peak, peak_source) if peak
                   else Mfu(None, None, None, peak_source or "no peak known for this device"))
    else:
        out.mfu = Mfu(reason="FLOPs of this workload are not counted")
    return out


def global_metrics(per_rank: list[RankResult]) -> dict[str, Interval]:
    """Global throughput of a multi-device run: in each repeat, the sum over ranks of each rank's rate
    over its own timed steps; the interval as for one rank (over repeats, or within the one repeat)."""
    timings = [p.timing for p in per_rank if p.timing.step_times_s]
    return {metric: rate_interval(timings, metric) for metric in WORK} if timings else {}


def recompute(result, peak: float | None = None, peak_source: str | None = None) -> Metrics:
    """A result's core metrics from its raw times (the file's own figures are not trusted blindly).
    Published results without raw times keep their transcribed figures."""
    if not result.timing.step_times_s:
        return result.metrics
    mfu = result.metrics.mfu or Mfu()
    fresh = core_metrics(result.timing, result.flops_per_step, peak or mfu.peak_flops_per_s,
                         peak_source or mfu.peak_source or mfu.reason)
    if result.per_rank:
        for metric, value in global_metrics(result.per_rank).items():
            setattr(fresh, metric, value)
    return fresh


def timing_warnings(timing: Timing, metrics: Metrics, threads: int | None) -> list[ResultWarning]:
    """Warnings that follow from the timing alone: no warm-up, still warming, noisy, few steps.
    threads: the CPU threads the work should have kept busy (None: not a CPU-bound device)."""
    out = []
    times = timing.step_times_s
    if timing.first_step_s is None and times:
        out.append(ResultWarning("no_warmup", "no warm-up step: the first measured step includes one-time costs"))
    # serving: a step's time follows its rows, joiners and lengths, not the machine's noise or a warm-up
    serving = any(r.requests for r in timing.counted)
    slow = {} if serving else {r.index: stats.steady_state_start(r.step_times_s) for r in timing.counted}
    if any(slow.values()):
        k = max(slow.values())
        first = f"first {k} measured steps were" if k > 1 else "first measured step was"
        hit = [r for r in timing.counted if slow[r.index]]
        out.append(ResultWarning("not_steady", f"the {first} slower than the rest: {steady_advice(hit, k, threads)}"))
    out += _noise_warnings(timing, metrics, threads, serving)
    if 0 < len(times) < 5:
        out.append(ResultWarning("few_steps", f"only {len(times)} measured step{'s' if len(times) > 1 else ''}: the "
                                              "confidence interval is weak (5 or more: --steps 5)"))
    return out


def _noise_warnings(timing: Timing, metrics: Metrics, threads: int | None, serving: bool) -> list[ResultWarning]:
    """Steps that vary (not judged for serving, whose steps follow their batches), or CPU time short of the threads."""
    out = []
    cv = metrics.step_time_s.cv if metrics.step_time_s else None
    if cv is not None and cv > NOISY_CV and not serving:
        out.append(ResultWarning("noisy", f"step times vary (CV {cv:.1%} > {NOISY_CV:.0%}): the machine may be shared"))
    if threads:
        low = [r.cpu_wall_ratio for r in timing.counted if r.cpu_wall_ratio and r.cpu_wall_ratio < 0.75 * threads]
        if low:
            out.append(ResultWarning("noisy", f"CPU-time / wall-time {min(low):.2f} is well below the {threads} "
                                              f"thread{'s' if threads > 1 else ''}: other load took the cores"))
    return out


def steady_advice(repeats, slow: int, threads: int | None) -> str:
    """What would help measured steps that started slow: nothing a warm-up can do where other load
    shared those repeats; else a warm-up that covers the slow steps."""
    def shared(r):
        low = threads and r.cpu_wall_ratio is not None and r.cpu_wall_ratio < 0.75 * threads
        return bool(r.contention and r.contention.reasons) or bool(low)

    if all(shared(r) for r in repeats):
        return "other load shared those repeats (see contended, noisy), so a longer warm-up would not help"
    ran = max((r.warmup_steps or 0) for r in repeats)
    bound = any(r.warmup_steady is False for r in repeats)
    why = f"the warm-up stopped at its bound after {ran} steps before its windows agreed; " if bound else ""
    return f"{why}--warmup {ran + slow} would cover them"


HOST_DRIFT = 0.10  # the reference kernel's spread on one quiet machine is ~2 %; a changed machine moved 25 %


def half_width(rates: list[float]) -> float | None:
    """Half the width of the 95 % t interval (log scale) of the geometric-mean throughput over these
    repeats, as a fraction of it: what `rate_interval` and a comparison's Welch interval are made of."""
    d = stats.log_t_interval(rates)
    if d["ci_low"] is None or not d["value"]:
        return None
    return (d["ci_high"] - d["ci_low"]) / (2 * d["value"])


def repeat_flags(rep, clean: list) -> list[str]:
    """Why one repeat counts as disturbed, judged as `contention_reasons` and a comparison's host check
    judge a run: what it recorded of other load (its contention reasons), step times that varied
    CV_OUTLIER times the clean repeats' norm, and a host reference kernel (measure/probe.py) more than
    HOST_DRIFT off the clean repeats' median (both against at least two clean repeats before it)."""
    reasons = list(rep.contention.reasons) if rep.contention else []
    if len(clean) < 2:
        return reasons
    cv = stats.summary(rep.step_times_s)["cv"] or 0.0
    norm = _median([stats.summary(r.step_times_s)["cv"] or 0.0 for r in clean])
    if cv > NOISY_CV and cv > CV_OUTLIER * max(norm, 1e-9):
        reasons.append(f"its steps varied {cv:.0%} (CV), {cv / max(norm, 1e-9):.1f}x the clean repeats'")
    probes = [r.host_probe_s for r in clean if r.host_probe_s]
    if rep.host_probe_s and len(probes) >= 2:
        ref = _median(probes)
        factor = max(ref, rep.host_probe_s) / min(ref, rep.host_probe_s)
        if factor > 1 + HOST_DRIFT:
            reasons.append(f"the host's reference kernel ran {factor:.2f}x apart from the clean repeats' (the "
                           "machine's own speed moved)")
    return reasons


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


CV_OUTLIER = 3.0  # a repeat whose step times vary this many times more than its repeats' norm was disturbed


def contention_reasons(timing: Timing) -> list[str]:
    """Why the measured repeats of a result count as shared with other work: what each repeat
    recorded (other processes' CPU, steal, others on the accelerator), and any repeat whose step-time
    CV is far above its repeats' norm."""
    measured = timing.measured
    reasons = [f"repeat {r.index}: {why}" for r in measured for why in (r.contention.reasons if r.contention else [])]
    cvs = [stats.summary(r.step_times_s)["cv"] or 0.0 for r in measured]
    if len(cvs) >= 3:
        norm = sorted(cvs)[len(cvs) // 2]
        for r, cv in zip(measured, cvs, strict=True):
            if cv > NOISY_CV and cv > CV_OUTLIER * max(norm, 1e-9):
                reasons.append(f"repeat {r.index}: its steps varied {cv:.0%} (CV), {cv / max(norm, 1e-9):.1f}x "
                               "the other repeats'")
    return reasons
