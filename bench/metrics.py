"""Metrics and validity warnings derived from a result's raw timing. Pure: the runner calls it when
writing a report and the comparer calls it again when loading one, so the numbers always follow
from the raw step times in the file."""

from __future__ import annotations

from bench import stats

NOISY_CV = 0.05


def core_metrics(timing: dict, flops_per_step: float | None, peak: float | None, peak_source: str) -> dict:
    times = timing["step_times_s"]
    if not times:
        return {}
    samples = timing.get("step_samples") or [0] * len(times)
    tokens = timing.get("step_tokens") or [0] * len(times)
    out = {"samples_per_s": stats.rate_ci(samples, times), "tokens_per_s": stats.rate_ci(tokens, times),
           "steps_per_s": stats.rate_ci([1] * len(times), times), "step_time_s": stats.summary(times)}
    step_flops = timing.get("step_flops")
    if step_flops and len(step_flops) == len(times):
        flops_per_step = sum(step_flops) / len(step_flops)
    if flops_per_step:
        achieved = flops_per_step * len(times) / sum(times)
        out["achieved_flops_per_s"] = achieved
        out["mfu"] = ({"value": achieved / peak, "peak_flops_per_s": peak, "peak_source": peak_source}
                      if peak else {"value": None, "peak_flops_per_s": None, "reason": peak_source})
    else:
        out["achieved_flops_per_s"] = None
        out["mfu"] = {"value": None, "reason": "FLOPs of this workload are not counted"}
    return out


def warn(code: str, message: str) -> dict:
    return {"code": code, "message": message}


def timing_warnings(timing: dict, metrics: dict, device: str, threads: int | None) -> list[dict]:
    """Warnings that follow from the timing alone: no warm-up, still warming, noisy, few steps."""
    out = []
    times = timing["step_times_s"]
    if timing.get("first_step_s") is None and times:
        out.append(warn("no_warmup", "no warm-up step: the first measured step includes one-time costs"))
    if len(times) >= 6 and stats.steady_state_start(times) > 0:
        out.append(warn("not_steady", f"the first {stats.steady_state_start(times)} measured steps were "
                                      "slower than the rest: raise --warmup"))
    cv = (metrics.get("step_time_s") or {}).get("cv")
    if cv is not None and cv > NOISY_CV:
        out.append(warn("noisy", f"step times vary (CV {cv:.1%} > {NOISY_CV:.0%}): the machine may be shared"))
    if device == "cpu" and threads:
        ratios = [r["cpu_wall_ratio"] for r in timing.get("repeats", []) if r.get("cpu_wall_ratio")]
        low = [r for r in ratios if r < 0.75 * threads]
        if low:
            out.append(warn("noisy", f"CPU-time / wall-time {min(low):.2f} is well below the {threads} "
                                     "threads: other load took the cores"))
    if 0 < len(times) < 5:
        out.append(warn("few_steps", f"only {len(times)} measured steps: the confidence interval is weak"))
    return out
