"""The format's history and the migrations that carry an old report to the current version.

| schema_version | change |
|---|---|
| 1 | first format (bench 0.1) |
| 2 | the report model: each repeat's step times kept apart; core metrics apart from the workload's own (dotted names, per-step series); declared figures; device and host energy as separate figures; telemetry sources, sampler health, base-unit keys (`sm_clock_hz`); provenance; room for fingerprints and per-request records |
| 3 | serving: per-request records move to each repeat (`Repeat.requests`, one open-loop session each); a result names its variant (`Result.variant`, e.g. the offered rate), and so do phases |
| 4 | graph compiles per phase of each repeat (`Repeat.compiles`), and a warning when graphs compiled while measuring; the device's memory apart from an allocator's pool (`Memory.device_pool_bytes`; hpu `device_total_bytes` is now the card's); the telemetry key `power_instant_w`; `other_processes` may be null (unknown); on a MIG instance the device energy is null, the whole GPU's kept per part; serving: each request's token times (`RequestLog.token_s`); `start_s` is when a request joined a batch, `batch` the static batch or the engine step it joined at; when it was sent, why it failed, whether it is in the measured window and its conversation turn (`RequestLog.sent_s`, `error`, `measured`, `turn`); which engine served (`Result.served_by`, where `static_shapes` moved from the identity); the warm-up's steps and whether it ended steady (`Repeat.warmup_steps`, `Repeat.warmup_steady`); the CPU threads each rank ran with and why (`Environment.threads`); each declared figure of each repeat alone (`Repeat.figure_values`); loading checks fields against each other and values against their names, every number within ±1e30 |
| 5 | serving figures by one definition each: nearest-rank percentiles, rates from the session's start; a serving result leads with its latency; a serving result's outcome (complete, partial, failed); the study and the plan a report belongs to; and the fields HISTORY lists |

A migration takes the plain JSON of version N and returns plain JSON of version N + 1; the model then
checks the result like any other report. Keep this table and MIGRATIONS in step with SCHEMA_VERSION.
"""

from __future__ import annotations

import dataclasses
import re

from bench.model.report import Interval, Metrics, Mfu, Summary

HISTORY = [
    (1, "first format (bench 0.1)"),
    (2, "the report model: each repeat's step times kept apart; core metrics apart from the workload's own "
        "(dotted names, per-step series); declared figures; device and host energy as separate figures; "
        "telemetry sources, sampler health and base-unit keys (`sm_clock_hz`, `throttle_reasons`); provenance; room for "
        "fingerprints and per-request records"),
    (3, "serving: per-request records move to each repeat (`Repeat.requests`, one open-loop session each); a result "
        "names its variant (`Result.variant`, e.g. the offered rate), and so do phases"),
    (4, "graph compiles per phase of each repeat (`Repeat.compiles`), and a warning when graphs compiled while "
        "measuring; the device's memory apart from an allocator's pool (`Memory.device_pool_bytes`; hpu "
        "`device_total_bytes` is now the card's); the telemetry key `power_instant_w`; `other_processes` may be "
        "null (unknown); on a MIG instance the device energy is null, the whole GPU's kept per part; "
        "serving: each request's token times (`RequestLog.token_s`); `start_s` is when a request joined a batch, "
        "`batch` the static batch or the engine step it joined at; when it was sent, why it failed, whether it is "
        "in the measured window and its conversation turn (`RequestLog.sent_s`, `error`, `measured`, `turn`); "
        "which engine served (`Result.served_by`, where `static_shapes` moved from the identity); the warm-up's "
        "steps and whether it ended steady (`Repeat.warmup_steps`, `Repeat.warmup_steady`); the CPU threads each "
        "rank ran with and why (`Environment.threads`); each declared figure of each repeat alone "
        "(`Repeat.figure_values`); loading checks what fields say of "
        "each other (a request's times in order, order statistics in order, each rank once) and what names say of "
        "values (`ttft_s` a duration, `slo.met` true or false, a measured run's `world_size` a whole number), "
        "every number within ±1e30 and every time from 1970 to 2261; how many repeats ran and why no further one "
        "did (`Result.stopping`: a fixed `--repeats`, or `--target-ci` until the interval is narrow enough or a "
        "bound), and repeats set aside as disturbed and redone, kept but left out of every figure "
        "(`Repeat.set_aside`)"),
    (5, "serving figures by one definition each (bench/serve/maths/): every serving p50/p90/p99 is LoadGen's nearest "
        "rank, the one its SLO verdict reads; the achieved rate, new tokens/s and goodput count from the session's "
        "start (arrivals kept as drawn: n - 1/B requests over the span, unbiased), goodput never above achieved; a "
        "serving result leads with the p99 of the latency its SLO names (its declared lead figure), the engine-busy "
        "rate kept beside it; a serving result whose measured requests mostly failed is `failed`, one cut short "
        "keeps its finished requests (`interrupted`), warnings `search_stopped` and `generator_late`; the arithmetic "
        "a precision's name does not say (`Environment.arithmetic`: the autocast "
        "op lists in effect, how fp32 matmuls ran); a repeat's CPU contention summed over the CPUs the run may use and "
        "judged against the cores it used, with what /proc/stat counted (`Contention.own_cores`, `free_cores`, `cpus`, "
        "`cpu_scope`, `in_container`), and its accelerator judged by the driver's own process list "
        "(`Contention.device_processes`); functions torch.compile ran eager past dynamo's recompile limit "
        "(`Compiles.eager_frames`, warning `ran_eager`); serving over HTTP: a request's tokens are what was streamed, "
        "up to what it asked (the server's usage is compared, warning `server_count_disagrees`), request errors "
        "`server_exited` and `server_stopped` (a server the run started that exited or was stopped; `bench serve` "
        "itself stopped before the request finished), and warning "
        "`prompts_cut` (an --arrivals prompt longer than --context-len); "
        "the study a run belongs to, resolved (its runs' options, "
        "prices, the samples an epoch means, its device-time budget), with the plan the box made of it "
        "(`Report.study`), a plain run's plan (`Report.plan`), and what a budget cut (stop reason `budget`, "
        "warning `budget_cut`); serving energy per request named twice, the session's with its idle gaps and the "
        "busy spans' alone (`Energy.session_per_request_j`, `busy_per_request_j`, `busy_j`, `idle_power_w`, "
        "`per_request_reason`), utilization judged over the busy spans (`Result.busy`), the card a run over HTTP "
        "watched as the server's (`ServedBy.device`) and HPU-graph decode (`ServedBy.hpu_graphs`); with a concurrency "
        "cap, when a request could be sent (`RequestLog.ready_s`); warning `prompts_as_ids` (bench's token ids sent "
        "to a server not declared to serve bench's model); in a serving result's identity, what it sent (sampling, "
        "a prompts file or synthetic lengths, the cap) and the reply vocabulary of the random-init presets "
        "(`reply_vocab`: replies drawn from the ids the shipped tokenizer has words for)"),
]

_CORE = {f.name for f in dataclasses.fields(Metrics)}
_INTERVAL = {f.name for f in dataclasses.fields(Interval)}
_SUMMARY = {f.name for f in dataclasses.fields(Summary)}
_MFU = {f.name for f in dataclasses.fields(Mfu)}
_MEMORY = ("device_peak_bytes", "device_peak_reason", "device_peak_reserved_bytes", "device_total_bytes",
           "device_max_in_use_bytes", "process_max_rss_bytes", "host_peak_rss_bytes")
_ACCEL = re.compile(r"^(gpu|hpu)(\d+)$")
_SERIES_RENAMES = {"losses": "loss"}


def _scalar(value):
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _flat_scalars(data: dict | None, prefix: str = "") -> dict:
    """Nested dicts -> dotted keys; lists -> comma-separated text (v1 maps were loosely typed)."""
    out = {}
    for key, value in (data or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat_scalars(value, name + "."))
        elif isinstance(value, list):
            out[name] = ", ".join(str(v) for v in value)
        else:
            out[name] = _scalar(value)
    return out


def _interval(value: dict) -> dict:
    out = {k: value.get(k) for k in ("value", "ci_low", "ci_high", "level") if k in value}
    if value.get("how"):
        out["method"] = value["how"]
    if value.get("ranks") is not None:
        out["ranks"] = value["ranks"]
    return out


def _split_metrics(metrics: dict) -> tuple[dict, dict, dict]:
    """v1's one metrics object -> (core Metrics, workload metrics by dotted name, per-step series)."""
    core, figures, series = {}, {}, {}
    for key, value in (metrics or {}).items():
        if key in ("samples_per_s", "tokens_per_s", "steps_per_s") and isinstance(value, dict):
            core[key] = _interval(value)
        elif key == "step_time_s" and isinstance(value, dict):
            core[key] = {k: v for k, v in value.items() if k in _SUMMARY}
        elif key == "mfu" and isinstance(value, dict):
            core[key] = {k: v for k, v in value.items() if k in _MFU}
        elif key == "achieved_flops_per_s":
            core[key] = value
        else:
            _flatten_figure(key, value, figures, series)
    return core, figures, series


def _flatten_figure(name: str, value, figures: dict, series: dict) -> None:
    if isinstance(value, dict):
        keys = set(value)
        if keys and keys <= _SUMMARY and "n" in keys:
            figures[name] = value
        elif keys and keys <= _INTERVAL | {"how"} and "value" in keys:
            figures[name] = _interval(value)
        else:
            for k, v in value.items():
                _flatten_figure(f"{name}.{k}", v, figures, series)
    elif isinstance(value, list):
        if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in value):
            series[_SERIES_RENAMES.get(name, name)] = value
        else:
            figures[name] = ", ".join(map(str, value))
    else:
        figures[name] = _scalar(value)


def _repeats(timing: dict) -> list[dict]:
    """v1 kept all repeats' steps in one list, with per-repeat step counts beside it."""
    times = list(timing.get("step_times_s") or [])
    samples = list(timing.get("step_samples") or [0] * len(times))
    tokens = list(timing.get("step_tokens") or [0] * len(times))
    flops = timing.get("step_flops")
    counts = [r.get("steps", 0) for r in timing.get("repeats") or []]
    if not counts or sum(counts) != len(times):
        counts = [len(times)]
        extra = [{}]
    else:
        extra = timing["repeats"]
    out, start = [], 0
    for i, (n, meta) in enumerate(zip(counts, extra, strict=True)):
        rep = {"index": i, "step_times_s": times[start:start + n], "step_samples": samples[start:start + n],
               "step_tokens": tokens[start:start + n],
               "step_flops": flops[start:start + n] if flops and len(flops) == len(times) else None,
               "wall_s": meta.get("wall_s"), "cpu_s": meta.get("cpu_s"), "cpu_wall_ratio": meta.get("cpu_wall_ratio")}
        if i == 0:
            rep.update(setup_s=timing.get("setup_s"), first_step_s=timing.get("first_step_s"),
                       warmup_s=timing.get("warmup_s"))
        out.append(rep)
        start += n
    if not times:
        out[0] = {k: v for k, v in out[0].items() if not k.startswith("step_")} | {"index": 0}
    return out


def _energy(energy: dict | None) -> dict:
    """v1 summed accelerators and RAPL under one name; v2 keeps device and host apart."""
    energy = energy or {}
    if energy.get("joules") is None:
        reason = energy.get("reason") or "not measured"
        return {"device": {"joules": None, "reason": reason}, "host": None}
    if "devices" not in energy:  # a counter read in-process: the device's
        return {"device": {k: energy.get(k) for k in ("joules", "window_s", "method", "per_sample_j", "per_token_j")},
                "host": None}
    parts = energy["devices"]
    scale = {k: (energy[k] / energy["joules"] if energy.get(k) is not None and energy["joules"] else None)
             for k in ("per_sample_j", "per_token_j")}
    return {side: _energy_side({p: v for p, v in parts.items() if (p == "cpu") == (side == "host")},
                               energy.get("window_s"), scale)
            for side in ("device", "host")}


def _energy_side(parts: dict, window_s, scale: dict) -> dict | None:
    """One side (device or host) of a v1 energy record: its parts summed, their methods named."""
    mine = {p: {k: v.get(k) for k in ("joules", "method", "reason")} for p, v in parts.items()}
    if not mine:
        return None
    known = [v["joules"] for v in mine.values() if v["joules"] is not None]
    joules = sum(known) if known else None
    methods = {v["method"] for v in mine.values() if v["method"]}
    return {"joules": joules, "window_s": window_s, "parts": mine, "method": ", ".join(sorted(methods)) or None,
            "estimate": any("estimate" in m for m in methods),
            **{k: (joules * f if joules is not None and f is not None else None) for k, f in scale.items()}}


def _result_v1(res: dict) -> dict:
    core, figures, series = _split_metrics(res.get("metrics"))
    out = {"workload": res["workload"], "status": res["status"], "error": res.get("error"),
           "params": _flat_scalars(res.get("params")), "tokens_are": res.get("tokens_are"),
           "main_metric": res.get("main_metric"), "model_device": res.get("model_device"),
           "flops_per_step": res.get("flops_per_step"),
           "timing": {"repeats": _repeats(res.get("timing") or {})}, "metrics": core,
           "workload_metrics": figures, "series": series,
           "memory": {k: v for k, v in (res.get("memory") or {}).items() if k in _MEMORY},
           "energy": _energy(res.get("energy")), "warnings": res.get("warnings") or [],
           "telemetry_summary": res.get("telemetry_summary") or {}}
    if res.get("per_rank"):
        out["per_rank"] = [{"rank": p["rank"], "status": p["status"], "error": p.get("error"),
                            "timing": {"repeats": _repeats(p.get("timing") or {})},
                            "memory": {k: v for k, v in (p.get("memory") or {}).items() if k in _MEMORY},
                            "energy": _energy(p.get("energy")) if p.get("energy") else None,
                            "warnings": p.get("warnings") or []} for p in res["per_rank"]]
    return out


def _sample_v1(sample: dict) -> dict:
    out = {}
    for key, value in sample.items():
        if key.endswith(".sm_clock_mhz"):
            out[key[: -len("mhz")] + "hz"] = None if value is None else value * 1e6
        elif key.endswith(".clock_event_reasons"):
            out[key[: -len("clock_event_reasons")] + "throttle_reasons"] = value
        else:
            out[key] = value
    return out


def telemetry_sources(samples_or_keys) -> dict:
    """What each key prefix stands for (v1 left it to regexes over the key names)."""
    keys = [k for s in samples_or_keys[:50] for k in (s if isinstance(s, dict) else [s])]
    found = {}
    for prefix in dict.fromkeys(k.split(".", 1)[0] for k in keys if "." in k):
        m = _ACCEL.match(prefix)
        if m:
            found[prefix] = {"role": "accelerator", "device": "cuda" if m.group(1) == "gpu" else "hpu",
                             "index": int(m.group(2))}
        elif prefix == "host":
            found[prefix] = {"role": "host", "device": "cpu"}
        elif prefix == "cpu":
            found[prefix] = {"role": "host_energy", "device": "cpu"}
    return found


def _telemetry_v1(tel: dict, summary_keys=()) -> dict:
    samples = [_sample_v1(s) for s in tel.get("samples") or []]
    collectors = {}
    for name, st in (tel.get("collectors") or {}).items():
        collectors[name] = {"available": bool(st.get("available")), "source": st.get("source"),
                            "reason": st.get("reason"), "fallback_reasons": list(st.get("fallback_reasons") or [])}
    out = {"sample_hz": tel.get("sample_hz") or 0, "collectors": collectors, "sources": telemetry_sources(samples[:50] + list(summary_keys)),
           "phases": tel.get("phases") or [], "samples": samples}
    if tel.get("other_ranks"):
        out["other_ranks"] = {k: _telemetry_v1(v) for k, v in tel["other_ranks"].items()}
    return out


def _summary_keys(report: dict) -> list[str]:
    return [k for r in report.get("results") or [] for phase in (r.get("telemetry_summary") or {}).values()
            for k in phase]


def v1_to_v2(report: dict) -> dict:
    env = report.get("environment") or {}
    out = {"schema_version": 2, "bench_version": report.get("bench_version"), "run_id": report.get("run_id"),
           "created_at": report.get("created_at"), "status": report.get("status", "ok"),
           "label": report.get("label"), "origin": report.get("origin", "measured"), "source": report.get("source"),
           "provenance": {"bench_version": report.get("bench_version"), "analysis_version": 1},
           "environment": {"host": _flat_scalars(env.get("host")), "python": _flat_scalars(env.get("python")),
                           "packages": {k: (None if v is None else str(v)) for k, v in (env.get("packages") or {}).items()},
                           "torch": _flat_scalars(env.get("torch")),
                           "env_vars": {k: str(v) for k, v in (env.get("env_vars") or {}).items()},
                           "device": _flat_scalars(env.get("device"))},
           "config": report.get("config") or {},
           "results": [_result_v1(r) for r in report.get("results") or []],
           "telemetry": _telemetry_v1(report.get("telemetry") or {}, _summary_keys(report))}
    if report.get("distributed"):
        out["distributed"] = report["distributed"]
    return out


def v2_to_v3(report: dict) -> dict:
    """Version 2 had a request log per result that nothing filled: it goes; the rest is unchanged."""
    out = dict(report, schema_version=3)
    out["results"] = [{k: v for k, v in r.items() if k != "requests"} if isinstance(r, dict) else r
                      for r in report.get("results", [])]
    return out


def v3_to_v4(report: dict) -> dict:
    """Version 4 only adds fields (with defaults): a version 3 report is a version 4 one."""
    return dict(report, schema_version=4)


def v4_to_v5(report: dict) -> dict:
    """Version 5 only adds fields (with defaults) and defines serving figures anew; a version 4 report's
    serving figures are recomputed from its request log when compared (bench/analysis/runs.py), so that
    report reads as a version 5 one."""
    return dict(report, schema_version=5)


MIGRATIONS = {1: v1_to_v2, 2: v2_to_v3, 3: v3_to_v4, 4: v4_to_v5}  # from_version -> function(plain JSON) -> plain JSON of from_version + 1
