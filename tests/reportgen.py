"""Synthetic reports for compare tests, built through the report model (the numbers are chosen, not
measured): a run of `repeats` repeats whose step times scatter around mean_s."""

from __future__ import annotations

import random

from bench.model.derive import core_metrics
from bench.model.report import (SCHEMA_VERSION, Environment, Phase, Repeat, Report, Result, ResultWarning,
                                Telemetry, TelemetrySource, TelemetryStat, Timing)


def make_repeat(index, rng, mean_s, n, samples, cv=0.02) -> Repeat:
    times = [max(1e-4, rng.gauss(mean_s, mean_s * cv)) for _ in range(n)]
    return Repeat(index=index, setup_s=1.0, first_step_s=mean_s * 3, warmup_s=mean_s * 4, step_times_s=times,
                  step_samples=[samples] * n, step_tokens=[samples * 20] * n, wall_s=sum(times), cpu_s=sum(times),
                  cpu_wall_ratio=1.0, threads=1)


def make_report(label, mean_s=0.1, n=20, params=None, workload="blender-finetune", device="cpu",
                device_name="Test CPU", seed=0, samples=8, util=None, host="host-a", warnings=(), repeats=1,
                cv=0.02, repeat_means=None, main_metric="samples_per_s", figures=(), workload_metrics=None,
                peak_mem=None, origin="measured") -> Report:
    rng = random.Random(seed)
    means = repeat_means or [mean_s] * repeats
    timing = Timing([make_repeat(i, rng, m, n, samples, cv) for i, m in enumerate(means)])
    summary = {} if util is None else {"measure": {"gpu0.util_percent": TelemetryStat(util, util, util, 5)}}
    p = {"model": "tiny", "parameters": 363264, "batch_size": samples, "precision": "fp32"}
    p.update(params or {})
    result = Result(workload=workload, status="ok", params=p, main_metric=main_metric, timing=timing,
                    metrics=core_metrics(timing, 1e9, 1e12, "test peak"), flops_per_step=1e9,
                    warnings=[ResultWarning(**w) for w in warnings], telemetry_summary=summary,
                    figures=list(figures), workload_metrics=dict(workload_metrics or {}))
    result.memory.device_peak_bytes = peak_mem
    total = sum(timing.step_times_s)
    sources = {"host": TelemetrySource("host", "cpu")}
    if util is not None:
        sources["gpu0"] = TelemetrySource("accelerator", "cuda", 0)
    telemetry = Telemetry(sample_hz=10, sources=sources, phases=[Phase(workload, "measure", 0.0, total)],
                          samples=[{"t": i * 0.1, "host.cpu_percent": 100.0} for i in range(10)])
    report = Report(schema_version=SCHEMA_VERSION, bench_version="test", run_id=f"{label}-{seed}-id",
                    created_at="2026-11-28T00:00:00+00:00", status="ok", label=label, origin=origin,
                    environment=Environment(host={"hostname": host},
                                            device={"backend": device, "device_name": device_name}),
                    results=[result], telemetry=telemetry)
    report.to_json()  # the model's own check: what tests build must be a valid report
    return report


def generation_report(label, mean_s=0.1, ttft_s=0.012, seed=0, **kw) -> Report:
    """A blender-generate run: tokens/s leads, TTFT and request latency as the workload declares them."""
    from workloads.blender_generate import GENERATION_FIGURES

    from bench.model.report import Summary

    def lat(median):
        return Summary(n=40, mean=median * 1.05, median=median, p90=median * 1.4, p99=median * 1.9, min=median * 0.8,
                       max=median * 2.0)

    metrics = {"ttft_s": lat(ttft_s), "request_latency_s": lat(mean_s), "token_latency_s": lat(mean_s / 20),
               "decode_tokens_per_s": 20 / mean_s}
    return make_report(label, mean_s, workload="blender-generate", main_metric="tokens_per_s", seed=seed,
                       figures=GENERATION_FIGURES, workload_metrics=metrics, **kw)


def serving_report(label, rates, seed=0, device="cpu", served_by=None):
    """One run of blender-serve: a result per (offered rate, SLO met), 60 requests each (none over
    the bound where it was met, 3 over where not)."""
    from bench.model.report import Summary

    r = make_report(label, 0.05, repeats=3, workload="blender-serve", seed=seed, device=device)
    r.results = []
    for q, met in rates:
        res = make_report(label, 0.05, repeats=3, workload="blender-serve", seed=seed).results[0]
        res.variant, res.params["qps"] = {"qps": [q]}, q
        res.workload_metrics = {"offered_qps": q, "achieved_qps": q, "slo.met": met, "slo.ttft_s": 0.5,
                                "slo.valid": False, "slo.ttft.n": 60, "slo.ttft.over": 0 if met else 3,
                                "slo.ttft.p99_s": 0.4 if met else 0.9,
                                "ttft_s": Summary(n=60, median=0.1, p99=0.4 if met else 0.9)}
        res.served_by = served_by
        r.results.append(res)
    return r
