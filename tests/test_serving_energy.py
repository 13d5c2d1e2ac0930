"""Serving figures that do not mislead: utilization judged over the busy spans, and energy per request with the idle
gaps (the session's) and without them (the busy spans'), each named; the studies' decision table reads those names.

The fake device is a timeline read as the vendors document their counters: utilization, the share of the
second before each sample a kernel ran (HLML: "over the past 1 s"; NVML: "% of time over the past sample
period", 1/6-1 s), power a 1-s average (NVML's power.draw on Ampere and newer, FACTS.md; HLML's taken as the
same), energy a cumulative counter (nvmlDeviceGetTotalEnergyConsumption, hlmlDeviceGetTotalEnergyConsumption),
sampled at 10 Hz. The device draws `idle_w` with nothing to do and `busy_w` while it computes."""

from __future__ import annotations

import pytest

from bench.devices.cpu.spec import SPEC as CPU
from bench.devices.hpu.spec import SPEC as HPU
from bench.measure.validity import telemetry_checks
from bench.model.report import Phase, Repeat, RequestLog, Result, Telemetry, TelemetrySource, Timing

HZ, STEP_S = 10, 0.02


def timeline(starts, length_s: float):
    """Busy spans of `length_s` from each start."""
    return [(a, a + length_s) for a in starts]


def busy_in(spans, a: float, b: float) -> float:
    return sum(max(0.0, min(y, b) - max(x, a)) for x, y in spans)


def samples(spans, end: float, idle_w: float, busy_w: float, util_busy: float = 100.0, start: float = 0.0):
    out, joules, t = [], 0.0, start
    while t <= end + 1e-9:
        lookback = busy_in(spans, t - 1.0, t)
        joules = idle_w * (t - start) + (busy_w - idle_w) * busy_in(spans, start, t)
        out.append({"t": round(t, 6), "hpu0.util_percent": util_busy * lookback, "hpu0.power_w":
                    idle_w + (busy_w - idle_w) * lookback, "hpu0.energy_j": 1000.0 + joules})
        t += 1 / HZ
    return out


def session(spans, over_http: bool = False, tokens: int = 8, tail_s: float = 0.5):
    """A repeat serving one request per busy span: its log on the run's clock, its steps (engine steps
    in-process; over HTTP the client's busy steps, one per request)."""
    log = RequestLog(arrival_s=[a for a, _ in spans], start_s=[None if over_http else a for a, _ in spans],
                     first_token_s=[a + STEP_S for a, _ in spans], finish_s=[b for _, b in spans],
                     prompt_tokens=[16] * len(spans), new_tokens=[tokens] * len(spans), batch=[None] * len(spans),
                     token_s=[[a + (b - a) * (k + 1) / tokens for k in range(tokens)] for a, b in spans],
                     sent_s=[a for a, _ in spans], error=[None] * len(spans), session_start_s=0.0)
    rep = Repeat(0, requests=log, wall_s=max(b for _, b in spans) + tail_s)
    for a, b in spans:
        n = 1 if over_http else max(1, round((b - a) / STEP_S))
        rep.step_times_s += [(b - a) / n] * n
        rep.step_samples += [0] * (n - 1) + [1]
        rep.step_tokens += [tokens / n] * n
    return rep


def judged(rep, idle_w=60.0, busy_w=300.0, util_busy=100.0, device=HPU, counter=True):
    """The result as the launcher judges it: telemetry over the measured window, the energy counter read in-process
    around it where `counter`."""
    end = rep.wall_s
    spans = [(a, b) for a, b in zip(rep.requests.sent_s, rep.requests.finish_s, strict=True)]
    tel = Telemetry(HZ, sources={"hpu0": TelemetrySource("accelerator", "hpu", 0)} if device is HPU else {},
                    samples=samples(spans, end, idle_w, busy_w, util_busy) if device is HPU else [],
                    phases=[Phase("blender-serve", "measure", 0.0, end)])
    result = Result("blender-serve", "ok", timing=Timing([rep]))
    joules = idle_w * end + (busy_w - idle_w) * busy_in(spans, 0.0, end)
    telemetry_checks(result, tel, device, [{"joules": joules, "window_s": end, "method": "energy counter"}]
                     if counter and device is HPU else None)
    return result


LOW_RATE = timeline([2.0 * i + 0.5 for i in range(30)], 0.1)  # 1 request every 2 s, each 0.1 s: busy 5 %


# ---- utilization over the busy spans ---------------------------------------------------------------------------

@pytest.mark.parametrize("spans,http,util_busy,idle", [
    (LOW_RATE, False, 100.0, False),  # 0.1: idle_accelerator at every low rate (window mean 5 %)
    (LOW_RATE, True, 100.0, False),  # over HTTP: the client's busy spans
    (timeline([3.0 * i for i in range(20)], 0.3), False, 80.0, False),  # 10 % busy, 80 % utilized while busy
    (LOW_RATE, False, 10.0, True),  # busy, but the device barely worked (the model on the host): still idle
    (timeline([0.2 * i for i in range(100)], 0.2), False, 10.0, True),  # full load, 10 %: idle, as ever
])
def test_serving_utilization_is_judged_over_the_busy_spans(spans, http, util_busy, idle):
    result = judged(session(spans, over_http=http), util_busy=util_busy)
    assert ("idle_accelerator" in result.codes()) is idle
    share = sum(b - a for a, b in spans) / result.timing.repeats[0].wall_s
    assert result.busy.share == pytest.approx(share)
    assert result.busy.util_percent == pytest.approx(min(100.0, util_busy), rel=0.1)


# ---- energy per request: the session's and the busy spans' ----------------------------------------------------------

def test_two_devices_that_differ_only_in_idle_power_spend_the_same_busy_energy_per_request():
    low, high = judged(session(LOW_RATE), idle_w=60.0), judged(session(LOW_RATE), idle_w=150.0)
    busy_j = 300.0 * 0.1  # each request: 0.1 s at 300 W
    for r in (low, high):
        assert r.energy.busy_per_request_j == pytest.approx(busy_j, rel=0.02)
        assert r.energy.device.per_sample_j == r.energy.busy_per_request_j  # 0.1: the window's scaled by the busy share
    assert low.energy.idle_power_w == pytest.approx(60.0) and high.energy.idle_power_w == pytest.approx(150.0)
    window = low.timing.repeats[0].wall_s
    assert low.energy.session_per_request_j == pytest.approx((60.0 * window + 240.0 * 3.0) / 30)
    assert high.energy.session_per_request_j > low.energy.session_per_request_j  # idle included: what it cost


@pytest.mark.parametrize("counter", [True, False])  # read in-process around the window, or the sampled counter
def test_the_busy_energy_comes_from_either_counter(counter):
    r = judged(session(timeline([1.5 * i + 0.4 for i in range(12)], 0.25)), idle_w=80.0, busy_w=400.0,
               counter=counter)
    assert r.energy.busy_per_request_j == pytest.approx(400.0 * 0.25, rel=0.03)


def test_a_half_busy_session_with_gaps_shorter_than_a_reading_has_its_busy_energy():
    r = judged(session(timeline([0.8 * i for i in range(40)], 0.4)), idle_w=90.0)  # never a second without a request
    assert r.energy.idle_power_w == pytest.approx(90.0) and r.energy.busy_per_request_j == pytest.approx(0.4 * 300.0)


def test_a_session_busy_all_its_window_is_its_busy_energy():
    r = judged(session(timeline([0.2 * i for i in range(100)], 0.2), tail_s=0.0))
    assert r.energy.busy_j == pytest.approx(r.energy.device.joules) and r.energy.idle_power_w is None
    assert r.energy.per_request_reason is None


def test_readings_that_do_not_resolve_the_busy_energy_leave_it_null_and_say_why():
    import random

    rng = random.Random(7)
    rep = session(LOW_RATE)
    end = rep.wall_s
    tel = Telemetry(HZ, sources={"hpu0": TelemetrySource("accelerator", "hpu", 0)},
                    samples=[{"t": i / HZ, "hpu0.util_percent": 5.0, "hpu0.power_w": 60.0 + rng.gauss(0, 40.0)}
                             for i in range(int(end * HZ))], phases=[Phase("blender-serve", "measure", 0.0, end)])
    result = Result("blender-serve", "ok", timing=Timing([rep]))
    telemetry_checks(result, tel, HPU, [{"joules": 60.0 * end + 240.0 * 3.0, "window_s": end, "method": "counter"}])
    e = result.energy
    assert e.session_per_request_j is not None and e.busy_per_request_j is None and e.device.per_sample_j is None
    assert "the readings do not resolve it" in e.per_request_reason


def test_a_device_that_measured_no_energy_says_why_per_request():
    r = judged(session(LOW_RATE), device=CPU)
    assert r.energy.session_per_request_j is None and r.energy.busy_per_request_j is None
    assert r.energy.per_request_reason == "nothing measured device energy here"


# ---- the decision table reads the named fields --------------------------------------------------------------------------

def test_the_decision_table_reads_the_named_energy_per_request():
    from types import SimpleNamespace

    from bench.analysis.decision import energy

    r = judged(session(LOW_RATE), idle_w=150.0)
    got = energy(SimpleNamespace(result=r))
    assert got.session_j.value == r.energy.session_per_request_j and got.busy_j.value == r.energy.busy_per_request_j
    cpu = judged(session(LOW_RATE), device=CPU)
    got = energy(SimpleNamespace(result=cpu))
    assert got.session_j.value is None and got.busy_j.why == "not_measured"
    assert got.busy_j.detail == "nothing measured device energy here"
