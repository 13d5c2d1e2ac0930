"""Validity checks that need telemetry: idle accelerator (the seed's failure), model not on the
device, throttling; plus the per-phase summaries and energy each result carries."""

from __future__ import annotations

import re

from bench.metrics import warn
from bench.telemetry.summary import (MIN_ENERGY_WINDOW_S, accelerator_utilization, energy_from_samples,
                                     in_window, phase_summaries)

IDLE_UTIL_PERCENT = 20.0
# NVML clock-event reasons that mean the clocks were held down: SW power cap, HW slowdown,
# SW thermal, HW thermal, HW power brake.
THROTTLE_MASK = 0x4 | 0x8 | 0x20 | 0x40 | 0x80
DEVICE_PREFIX = re.compile(r"^((?:gpu|hpu)\d+\.|cpu\.)energy_j$|^((?:gpu|hpu)\d+\.)power_w$")


def measure_window(telemetry: dict, workload: str) -> tuple[float, float] | None:
    for p in telemetry["phases"]:
        if p["workload"] == workload and p["phase"] == "measure":
            return p["start_s"], p["end_s"]
    return None


def energy_prefixes(samples: list[dict]) -> list[str]:
    found = set()
    for s in samples[:5]:
        for k in s:
            m = DEVICE_PREFIX.match(k)
            if m:
                found.add(m.group(1) or m.group(2))
    return sorted(found)


def per_work(result: dict, joules: float, window_s: float) -> dict:
    """Joules per sample and per token of the timed steps (the window also holds the syncs and
    bookkeeping between steps, so the energy is scaled to the steps' own share of it)."""
    times = result["timing"]
    samples_n, tokens_n = sum(times["step_samples"]), sum(times["step_tokens"])
    step_joules = joules * (sum(times["step_times_s"]) / window_s if window_s > 0 else 1.0)
    return {"per_sample_j": step_joules / samples_n if samples_n else None,
            "per_token_j": step_joules / tokens_n if tokens_n else None}


def workload_energy(result: dict, telemetry: dict, window) -> dict:
    direct = result.pop("energy_counter", None)
    if direct and direct["window_s"] >= MIN_ENERGY_WINDOW_S and direct["joules"] >= 0:
        return {"joules": direct["joules"], "window_s": direct["window_s"], "method": direct["method"],
                **per_work(result, direct["joules"], direct["window_s"])}
    samples = telemetry["samples"]
    prefixes = energy_prefixes(samples)
    if not prefixes:
        return {"joules": None, "reason": "nothing measured energy here (no device energy counter or "
                                          "power reading, no readable RAPL)"}
    parts = {p.rstrip("."): energy_from_samples(samples, window[0], window[1], p) for p in prefixes}
    known = [v["joules"] for v in parts.values() if v["joules"] is not None]
    if not known:
        return {"joules": None, "reason": "; ".join(v["reason"] for v in parts.values()), "devices": parts}
    joules, window_s = sum(known), window[1] - window[0]
    return {"joules": joules, "window_s": window_s, "devices": parts, **per_work(result, joules, window_s)}


def throttled(samples: list[dict]) -> int:
    bits = 0
    for s in samples:
        for k, v in s.items():
            if k.endswith(".clock_event_reasons") and isinstance(v, int):
                bits |= v & THROTTLE_MASK
    return bits


def telemetry_checks(result: dict, telemetry: dict, backend) -> None:
    name = result["workload"]
    result["telemetry_summary"] = phase_summaries(telemetry["samples"], telemetry["phases"], name)
    window = measure_window(telemetry, name)
    rss = [phase["host.rss_bytes"]["max"] for phase in result["telemetry_summary"].values()
           if "host.rss_bytes" in phase]
    result["memory"]["host_peak_rss_bytes"] = int(max(rss)) if rss else None
    if window is None or not result["timing"]["step_times_s"]:
        result["energy"] = {"joules": None, "reason": "no measured steps"}
        return
    result["energy"] = workload_energy(result, telemetry, window)
    if backend.name in ("cuda", "hpu"):
        _accelerator_checks(result, telemetry, window)
    device = result.get("model_device")
    if device is not None and backend.name != "cpu" and not device.startswith(backend.name):
        result["warnings"].append(warn("model_not_on_device",
                                       f"model parameters are on {device}, not on {backend.name}"))


def _accelerator_checks(result: dict, telemetry: dict, window) -> None:
    measure = result["telemetry_summary"].get("measure", {})
    util = accelerator_utilization(measure)
    if util is None:
        result["warnings"].append(warn("no_utilization", "device utilization was not sampled: nothing "
                                                         "proves the accelerator did the work"))
    elif util < IDLE_UTIL_PERCENT:
        result["warnings"].append(warn("idle_accelerator",
                                       f"mean device utilization {util:.0f} % during the measured steps "
                                       f"(< {IDLE_UTIL_PERCENT:.0f} %): the accelerator sat mostly idle"))
    bits = throttled(in_window(telemetry["samples"], *window))
    if bits:
        result["warnings"].append(warn("throttled", f"clock events during the measured steps "
                                                    f"(NVML reasons 0x{bits:x}): clocks were held down"))
