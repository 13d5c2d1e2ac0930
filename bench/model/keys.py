"""The telemetry vocabulary. Every sample key is `<source>.<metric>`: the source is a prefix the
report's telemetry.sources describes (`gpu0` -> an accelerator, with its UUID), the metric one of
METRICS, in base units. Analysis and rendering find keys through this table and the sources, never
by matching device names in key strings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    unit: str
    meaning: str
    numeric: bool = True


METRICS = {
    # accelerators
    "util_percent": Metric("%", "share of the last sampling period a kernel ran (NVML, HLML)"),
    "mem_util_percent": Metric("%", "share of time device memory was read or written (NVML)"),
    "mem_used_bytes": Metric("bytes", "memory in use"),
    "mem_total_bytes": Metric("bytes", "memory of the device"),
    "power_w": Metric("W", "power draw (NVML: a 1 s average on Ampere and newer; on a MIG instance the whole GPU's)"),
    "power_instant_w": Metric("W", "instantaneous power draw (NVML field NVML_FI_DEV_POWER_INSTANT, Hopper and newer)"),
    "energy_j": Metric("J", "cumulative energy counter (device, or RAPL packages on the host)"),
    "temp_c": Metric("°C", "temperature"),
    "sm_clock_hz": Metric("Hz", "streaming-multiprocessor clock"),
    "throttle_reasons": Metric("bitmask", "clock-event / throttle reason bits; their meaning is the vendor's "
                                          "(NVML clocks-event reasons, HLML throttle reasons)"),
    "processes": Metric("count", "compute processes on the device"),
    "other_processes": Metric("count", "compute processes on the device that are not this run's (null: cannot "
                                       "be told, as in a container that sees the host's process IDs)"),
    # host
    "cpu_percent": Metric("%", "CPU of the run's process tree (100 = one core)"),
    "rss_bytes": Metric("bytes", "resident memory of the run's process tree"),
    "sys_cpu_percent": Metric("%", "mean CPU use over all cores, every process"),
    "percpu_percent": Metric("%", "per-core CPU use (a list)"),
    "steal_percent": Metric("%", "CPU time the hypervisor gave to other guests"),
    "mem_percent": Metric("%", "host memory in use"),
    # any collector
    "error": Metric("", "why this tick of the collector failed", numeric=False),
}


def key(source: str, metric: str) -> str:
    if metric not in METRICS:
        raise KeyError(f"{metric!r} is not a telemetry metric (bench/model/keys.py)")
    return f"{source}.{metric}"


def split(name: str) -> tuple[str, str] | None:
    """(source, metric) of a sample key, or None for `t`, `workload`, `phase` and unknown keys."""
    source, dot, metric = name.partition(".")
    return (source, metric) if dot and metric in METRICS else None


def keys_of(telemetry, metric: str, role: str) -> list[str]:
    """The sample keys of one metric over every source with the given role."""
    return [f"{p}.{metric}" for p, src in sorted(telemetry.sources.items()) if src.role == role]
