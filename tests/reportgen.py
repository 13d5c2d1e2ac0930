"""Synthetic but schema-valid reports for compare tests (the numbers are chosen, not measured)."""

from __future__ import annotations

import random

from bench.metrics import core_metrics
from bench.schema import SCHEMA_VERSION, validate_report


def make_report(label, mean_s=0.1, n=20, params=None, workload="blender-finetune", device="cpu",
                device_name="Test CPU", seed=0, samples=8, util=None, host="host-a", warnings=()):
    rng = random.Random(seed)
    times = [max(1e-4, rng.gauss(mean_s, mean_s * 0.02)) for _ in range(n)]
    timing = {"setup_s": 1.0, "first_step_s": mean_s * 3, "warmup_s": mean_s * 4, "step_times_s": times,
              "step_samples": [samples] * n, "step_tokens": [samples * 20] * n,
              "repeats": [{"steps": n, "wall_s": sum(times), "cpu_s": sum(times), "cpu_wall_ratio": 1.0}]}
    summary = {} if util is None else {"measure": {"gpu0.util_percent": {"mean": util, "max": util, "min": util, "n": 5}}}
    p = {"model": "tiny", "parameters": 363264, "batch_size": samples, "precision": "fp32"}
    p.update(params or {})
    report = {"schema_version": SCHEMA_VERSION, "bench_version": "test", "run_id": f"{label}-{seed}-id",
              "created_at": "2026-11-28T00:00:00+00:00", "label": label, "origin": "measured", "status": "ok",
              "environment": {"host": {"hostname": host}, "device": {"backend": device, "device_name": device_name}},
              "config": {},
              "results": [{"workload": workload, "status": "ok", "error": None, "params": p,
                           "main_metric": "samples_per_s", "timing": timing,
                           "metrics": core_metrics(timing, 1e9, 1e12, "test peak"), "memory": {},
                           "flops_per_step": 1e9, "warnings": [dict(w) for w in warnings],
                           "telemetry_summary": summary}],
              "telemetry": {"sample_hz": 10, "collectors": {}, "phases": [
                  {"workload": workload, "phase": "measure", "start_s": 0.0, "end_s": sum(times)}],
                  "samples": [{"t": i * 0.1, "host.cpu_percent": 100.0} for i in range(10)]}}
    return validate_report(report)
