"""Validity checks that need telemetry: idle accelerator (the seed's failure), model not on the
device, throttling; plus the per-phase summaries and energy each result carries."""

from __future__ import annotations

import bisect
import math

from bench.measure import busy
from bench.model.report import (EnergyFigure, EnergyPart, PhaseCoverage, Result, SamplerHealth, Telemetry,
                                TelemetryStat, variant_label)
from bench.model.samples import (MIN_ENERGY_WINDOW_S, accelerator_utilization, energy_from_samples, in_window,
                                 phase_summaries)

IDLE_UTIL_PERCENT = 20.0
THROTTLE_SHARE = 0.20  # of the measured samples carrying a throttling reason
MIN_SAMPLES = 3  # utilization samples needed in the measured steps to judge them
COVERAGE = 0.5  # of the samples the rate promises
GAP_PERIODS = 5  # a span without samples longer than this many periods (and than MIN_GAP_S) is a gap
MIN_GAP_S = 1.0


def sampler_health(telemetry: Telemetry, period_s: float, fate: dict) -> SamplerHealth:
    """How the sampler covered each phase: samples per second and the longest span without one
    (the phase's edges included), plus whether its process lived to the end."""
    times = sorted(s["t"] for s in telemetry.samples)
    phases = []
    for p in sorted(telemetry.phases, key=lambda x: x.start_s):
        inside = times[bisect.bisect_left(times, p.start_s):bisect.bisect_right(times, p.end_s)]
        edges = [p.start_s, *inside, p.end_s]
        duration = p.end_s - p.start_s
        phases.append(PhaseCoverage(p.workload, p.phase, duration, len(inside), p.repeat,
                                    len(inside) / duration if duration > 0 else None,
                                    max(b - a for a, b in zip(edges, edges[1:], strict=False)), p.start_s, p.variant))
    return SamplerHealth(fate.get("alive_to_end"), fate.get("reason"), period_s, phases)


def gap_limit(period_s: float) -> float:
    return max(GAP_PERIODS * period_s, MIN_GAP_S)


def sampler_checks(result: Result, telemetry: Telemetry) -> bool:
    """`sampler_gaps` when the sampler missed part of this workload's measured steps (it died, froze
    or fell behind). Returns whether coverage was good enough to judge the telemetry by."""
    health = telemetry.health
    if health is None or not health.expected_period_s:
        return True
    limit = gap_limit(health.expected_period_s)
    last = max((s["t"] for s in telemetry.samples), default=float("-inf"))
    thin = []
    for c in health.phases:
        if c.workload != result.workload or c.variant != variant_label(result.variant) or c.phase != "measure":
            continue
        span = f"repeat {c.repeat}" if c.repeat is not None else "the measured steps"
        end = (c.start_s or 0.0) + c.duration_s
        if c.max_gap_s is not None and c.max_gap_s > limit:
            thin.append(f"{span}: no sample for {c.max_gap_s:.1f} s ({c.samples} in {c.duration_s:.1f} s)")
        elif health.alive_to_end is False and last < end:
            thin.append(f"{span}: ended after the last sample")
    if not thin:
        return True
    why = f"; {health.reason}" if health.reason else ""
    result.warn("sampler_gaps", f"telemetry missed part of the measured steps (a sample was due every "
                                f"{health.expected_period_s:g} s): {'; '.join(thin[:3])}"
                                f"{f' (and {len(thin) - 3} more)' if len(thin) > 3 else ''}{why}")
    return False


def measure_spans(telemetry: Telemetry, result: Result) -> list[tuple[float, float]]:
    """Each repeat's measured span of a result, on the run's clock."""
    variant = variant_label(result.variant)
    return [(p.start_s, p.end_s) for p in telemetry.phases
            if p.workload == result.workload and p.variant == variant and p.phase == "measure"]


def _prefixes(telemetry: Telemetry, roles: tuple[str, ...]) -> list[str]:
    return sorted(p for p, src in telemetry.sources.items() if src.role in roles)


def per_work(result: Result, joules: float, window_s: float) -> dict:
    """Joules per sample and per token of the timed steps (the window also holds the syncs and
    bookkeeping between steps, so the energy is scaled to the steps' own share of it)."""
    t = result.timing
    samples_n, tokens_n = sum(t.step_samples), sum(t.step_tokens)
    step_joules = joules * min(1.0, sum(t.step_times_s) / window_s) if window_s > 0 else joules
    return {"per_sample_j": step_joules / samples_n if samples_n else None,
            "per_token_j": step_joules / tokens_n if tokens_n else None}


def _part(samples, spans, prefix: str) -> dict:
    """One device's energy summed over the measured spans (every span must be measurable)."""
    parts = [energy_from_samples(samples, a, b, prefix + ".") for a, b in spans]
    missing = [p["reason"] for p in parts if p["joules"] is None]
    if missing:
        return {"joules": None, "method": None, "reason": missing[0]}
    methods = sorted({p["method"] for p in parts})
    return {"joules": sum(p["joules"] for p in parts), "method": ", ".join(methods), "reason": None}


def energy_of(result: Result, telemetry: Telemetry, spans, prefixes: list[str], what: str) -> EnergyFigure:
    if not prefixes:
        return EnergyFigure(reason=f"nothing measured {what} energy here")
    parts = {p: _part(telemetry.samples, spans, p) for p in prefixes}
    known = [v["joules"] for v in parts.values() if v["joules"] is not None]
    fig_parts = {p: EnergyPart(v["joules"], v["method"], v["reason"]) for p, v in parts.items()}
    if not known:
        return EnergyFigure(reason="; ".join(v["reason"] for v in parts.values()), parts=fig_parts)
    joules, window_s = sum(known), sum(b - a for a, b in spans)
    methods = sorted({v["method"] for v in parts.values() if v["method"]})
    return EnergyFigure(joules=joules, window_s=window_s, method=", ".join(methods),
                        estimate=any("estimate" in m for m in methods), parts=fig_parts,
                        **per_work(result, joules, window_s))


def device_energy(result: Result, telemetry: Telemetry, spans, counters: list[dict | None]) -> EnergyFigure:
    """The device counter read in-process after a sync, where every repeat read one over a long
    enough window; else the sampled counter or power; else null with the reason. Never a MIG
    instance's (whole_gpu_only)."""
    accel = _prefixes(telemetry, ("accelerator",))
    if counters and all(c and c["window_s"] >= MIN_ENERGY_WINDOW_S and c["joules"] >= 0 for c in counters):
        joules, window = sum(c["joules"] for c in counters), sum(c["window_s"] for c in counters)
        fig = EnergyFigure(joules=joules, window_s=window, method=counters[0]["method"],
                           **per_work(result, joules, window))
    else:
        fig = energy_of(result, telemetry, spans, accel, "device")
    mig = [p for p in accel if telemetry.sources[p].mig]
    return whole_gpu_only(fig, mig) if mig else fig


WHOLE_GPU = "the whole GPU's, shared by every MIG instance on it"


def whole_gpu_only(fig: EnergyFigure, prefixes: list[str]) -> EnergyFigure:
    """On a MIG instance NVML's power and energy counter are the whole GPU's (NVML docs; FACTS.md): a total
    would charge this instance with its neighbours' work, and energy per token with it. So no total and
    no per-work figures; what was measured stays, per part, labelled as the whole GPU's."""
    parts = {p: EnergyPart(v.joules, f"{v.method} ({WHOLE_GPU})" if v.method else None, v.reason)
             for p, v in fig.parts.items()}
    if fig.joules is not None and not parts:  # the in-process counter: one reading of the whole GPU
        parts = {prefixes[0]: EnergyPart(fig.joules, f"{fig.method} ({WHOLE_GPU})")}
    return EnergyFigure(window_s=fig.window_s, parts=parts,
                        reason=f"a MIG instance: NVML's power and energy are {WHOLE_GPU}; this instance's own "
                               "energy, and its energy per sample or token, cannot be measured")


def telemetry_checks(result: Result, telemetry: Telemetry, device, counters: list | None = None) -> None:
    """Summaries, energy and the warnings telemetry supports. device: the DeviceSpec (its name and
    whether it is an accelerator whose utilization must prove it did the work)."""
    name = result.workload
    summaries = phase_summaries(telemetry.samples, telemetry.phases, name, variant_label(result.variant))
    result.telemetry_summary = {ph: {k: TelemetryStat(**v) for k, v in keys.items()} for ph, keys in summaries.items()}
    rss = [phase["host.rss_bytes"]["max"] for phase in summaries.values() if "host.rss_bytes" in phase]
    result.memory.host_peak_rss_bytes = max(rss) if rss else None
    spans = measure_spans(telemetry, result)
    if not spans or not result.timing.step_times_s:
        result.energy.device = EnergyFigure(reason="no measured steps")
        return
    covered = sampler_checks(result, telemetry)
    result.energy.device = device_energy(result, telemetry, spans, counters or [])
    if not covered and result.energy.device.estimate:
        result.energy.device = EnergyFigure(reason="the power samples have gaps (sampler_gaps): no estimate")
    accel = _prefixes(telemetry, ("accelerator",))
    if busy.serving(result):  # judged over its busy spans (bench/measure/busy.py)
        result.busy = busy.busy_of(result, accelerator_utilization(result.telemetry_summary.get("measure", {}), accel))
        busy.per_request(result, telemetry, spans, accel)
    host = _prefixes(telemetry, ("host_energy",))
    result.energy.host = energy_of(result, telemetry, spans, host, "host") if host else \
        EnergyFigure(reason="no readable RAPL counter on this host")
    if device.accelerator and not covered:
        result.warn("not_judged", "device utilization and throttling not judged: the sampler missed part of "
                                  "the measured steps (see sampler_gaps)")
    elif device.accelerator:
        _accelerator_checks(result, telemetry, spans, device)
    where = result.model_device
    if device.accelerator and where is not None and not where.startswith(device.name):
        result.warn("model_not_on_device", f"model parameters are on {where}, not on {device.name}")


def _accelerator_checks(result: Result, telemetry: Telemetry, spans, device) -> None:
    accel = _prefixes(telemetry, ("accelerator",))
    measured = [x for a, b in spans for x in in_window(telemetry.samples, a, b)]
    if not _utilization_judged(result, telemetry, spans, accel, measured):
        return
    util = accelerator_utilization(result.telemetry_summary.get("measure", {}), accel)
    spans_busy = result.busy
    if spans_busy is not None and spans_busy.util_percent is not None:  # serving: waiting for arrivals is not idling
        if spans_busy.util_percent < IDLE_UTIL_PERCENT:
            result.warn("idle_accelerator", f"mean device utilization {spans_busy.util_percent:.0f} % over the busy "
                                            f"spans (< {IDLE_UTIL_PERCENT:.0f} %; the measured window's {util:.0f} % "
                                            f"over a busy share of {spans_busy.share:.0%}): the accelerator sat mostly "
                                            "idle while it served")
    elif util is not None and util < IDLE_UTIL_PERCENT:
        result.warn("idle_accelerator", f"mean device utilization {util:.0f} % during the measured steps "
                                        f"(< {IDLE_UTIL_PERCENT:.0f} %): the accelerator sat mostly idle")
    _throttling(result, measured, accel, device)
    _other_processes(result, measured, accel)


def _utilization_judged(result, telemetry, spans, accel, measured) -> bool:
    """Whether the samples can say if the device did the work: `no_utilization` when nothing sampled
    it at all, `not_judged` (with why) when the samples are too few or the device cannot report it."""
    if not accel:
        result.warn("no_utilization", "device utilization was not sampled (no collector for this device): "
                                      "nothing proves the accelerator did the work")
        return False
    values = [s.get(f"{p}.util_percent") for s in measured for p in accel]
    known = [v for v in values if isinstance(v, int | float)]
    duration = sum(b - a for a, b in spans)
    expected = duration * (telemetry.sample_hz or 0)
    if values and not known:
        mig = any(telemetry.sources[p].mig for p in accel)
        why = "the device cannot report it on a MIG instance" if mig else "the device did not report it"
        result.warn("not_judged", f"device utilization not judged: {why}; its power and memory are in the report")
        return False
    if len(known) < MIN_SAMPLES and len(known) >= COVERAGE * expected * len(accel):
        budget = math.ceil(MIN_SAMPLES / (telemetry.sample_hz * len(spans)) / COVERAGE * 10) / 10
        result.warn("not_judged", f"device utilization not judged: the measured steps lasted {duration:.2f} s in "
                                  f"all and hold {len(known)} utilization sample(s) at {telemetry.sample_hz:g} Hz; a "
                                  f"judgement needs {MIN_SAMPLES}: --time-budget {budget:g} (seconds per repeat)")
        return False
    if len(known) < MIN_SAMPLES or len(known) < COVERAGE * expected * len(accel):
        result.warn("not_judged", f"device utilization not judged: the measured steps lasted {duration:.2f} s in "
                                  f"all and hold {len(known)} utilization sample(s) at {telemetry.sample_hz:g} Hz, "
                                  f"fewer than half of those due: the device's collector fell behind")
        return False
    return True


def _throttling(result, measured, accel, device) -> None:
    """`throttled` when at least THROTTLE_SHARE of the measured samples carry a reason the device's
    vendor counts as throttling (one 100 ms sample at a limit is not a throttled run)."""
    reasons = [s.get(f"{p}.throttle_reasons") for s in measured for p in accel]
    known = [int(v) for v in reasons if isinstance(v, int | float) and not isinstance(v, bool)]
    if not known or not device.throttle_mask:
        return
    hit = [v & device.throttle_mask for v in known if v & device.throttle_mask]
    share = len(hit) / len(known)
    if share >= THROTTLE_SHARE:
        bits = 0
        for v in hit:
            bits |= v
        names = ", ".join(n for b, n in sorted(device.throttle_names.items()) if bits & b) or f"0x{bits:x}"
        result.warn("throttled", f"{share:.0%} of the measured samples carried a throttling reason ({names}): "
                                 "the clocks were held down")


def _other_processes(result, measured, accel) -> None:
    """`contended` when another job's process was on the accelerator; `not_judged` when processes were
    listed whose owner could not be told (NVML's host-namespace PIDs, seen from inside a container)."""
    others = [s.get(f"{p}.other_processes") for s in measured for p in accel]
    seen = max((v for v in others if isinstance(v, int | float)), default=0)
    if seen:
        result.warn("contended", f"{int(seen)} other process(es) ran on the accelerator during the measured "
                                 "steps: the figures are shared with another job")
        return
    listed = [s.get(f"{p}.processes") for s in measured for p in accel]
    unknown = [n for n, o in zip(listed, others, strict=True) if isinstance(n, int | float) and n and o is None]
    if unknown:
        result.warn("not_judged", "whether another job used the accelerator is unknown: the driver lists process "
                                  "IDs of another PID namespace (a container without --pid=host) and no more "
                                  "processes than this run's own; run with --pid=host to have it judged")
