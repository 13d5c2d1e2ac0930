"""Figures derived from a result's raw timing. Pure: the runner calls it when writing a report and the
comparer calls it again when loading one, so the numbers always follow from the raw step times."""

from __future__ import annotations

from bench.core import stats
from bench.model.report import Interval, Metrics, Mfu, RankResult, ResultWarning, Summary, Timing

NOISY_CV = 0.05
WORK = {"samples_per_s": "step_samples", "tokens_per_s": "step_tokens", "steps_per_s": None}


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


def core_metrics(timing: Timing, flops_per_step: float | None, peak: float | None, peak_source: str | None) -> Metrics:
    times = timing.step_times_s
    if not times:
        return Metrics()
    out = Metrics(step_time_s=summary(times))
    for metric in WORK:
        setattr(out, metric, interval(stats.parts_rate_ci(work_parts([timing], metric)), "bootstrap over steps"))
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
    """Global throughput of a multi-device run: the sum over ranks of each rank's rate over its own
    timed steps, with a bootstrap interval (each rank's steps resampled on their own)."""
    out = {}
    for metric in WORK:
        parts = work_parts([p.timing for p in per_rank], metric)
        if parts:
            out[metric] = interval(stats.parts_rate_ci(parts), "sum over ranks; bootstrap over steps", len(parts))
    return out


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
    slow = max((stats.steady_state_start(r.step_times_s) for r in timing.repeats), default=0)
    if slow:
        out.append(ResultWarning("not_steady", f"the first {slow} measured step{'s were' if slow > 1 else ' was'} "
                                              "slower than the rest: raise --warmup"))
    cv = metrics.step_time_s.cv if metrics.step_time_s else None
    if cv is not None and cv > NOISY_CV:
        out.append(ResultWarning("noisy", f"step times vary (CV {cv:.1%} > {NOISY_CV:.0%}): the machine may be shared"))
    if threads:
        low = [r.cpu_wall_ratio for r in timing.repeats if r.cpu_wall_ratio and r.cpu_wall_ratio < 0.75 * threads]
        if low:
            out.append(ResultWarning("noisy", f"CPU-time / wall-time {min(low):.2f} is well below the {threads} "
                                              "threads: other load took the cores"))
    if 0 < len(times) < 5:
        out.append(ResultWarning("few_steps", f"only {len(times)} measured steps: the confidence interval is weak"))
    return out
