import pytest

from bench.model.report import Phase, Repeat, Result, Telemetry, TelemetrySource, Timing
from bench.devices.cpu.peaks import cpu_peak
from bench.measure.validity import telemetry_checks

from bench.devices.cpu.spec import SPEC as CPU
from bench.devices.cuda.spec import SPEC as CUDA


def result_with_steps(n=10, step=0.2):
    return Result("w", "ok", timing=Timing([Repeat(0, step_times_s=[step] * n, step_samples=[8] * n,
                                                  step_tokens=[80] * n)]))


def telemetry(util, start=1.0, end=3.0, extra=None):
    samples = []
    for i in range(41):
        s = {"t": i * 0.1, "gpu0.util_percent": util, "gpu0.power_w": 300.0, "gpu0.energy_j": 1000.0 + 300.0 * i * 0.1,
             "host.rss_bytes": 2**30}
        s.update(extra or {})
        samples.append(s)
    return Telemetry(10, sources={"gpu0": TelemetrySource("accelerator", "cuda", 0), "host": TelemetrySource("host")},
                     samples=samples, phases=[Phase("w", "warmup", 0.0, start), Phase("w", "measure", start, end)])


def codes(r):
    return r.codes()


def test_idle_accelerator_is_flagged():
    r = result_with_steps()
    telemetry_checks(r, telemetry(util=4.0), CUDA)
    assert "idle_accelerator" in codes(r)
    assert "4 %" in [w for w in r.warnings if w.code == "idle_accelerator"][0].message


def test_busy_accelerator_is_not_flagged():
    r = result_with_steps()
    telemetry_checks(r, telemetry(util=95.0), CUDA)
    assert codes(r) == set()
    assert r.telemetry_summary["measure"]["gpu0.util_percent"].mean == 95.0


def test_no_collector_for_the_accelerator_says_nothing_proves_it():
    r = result_with_steps()
    t = telemetry(util=99.0)
    t.sources.pop("gpu0")
    telemetry_checks(r, t, CUDA)
    assert "no_utilization" in codes(r)


def test_a_window_shorter_than_the_sampling_is_not_judged():
    r = result_with_steps(n=3, step=0.01)
    telemetry_checks(r, telemetry(util=3.0, start=1.0, end=1.03), CUDA)  # 30 ms: one sample at most
    assert "not_judged" in codes(r) and "idle_accelerator" not in codes(r)  # 0.1: no_utilization or idle
    # it says how long a judgement needs: 3 samples at 10 Hz, with the coverage's margin, in one repeat
    assert "--time-budget 0.6 (seconds per repeat)" in [w for w in r.warnings if w.code == "not_judged"][0].message


def test_a_device_that_cannot_report_utilization_is_not_judged():
    r = result_with_steps()
    t = telemetry(util=None)
    t.sources["gpu0"].mig = True
    telemetry_checks(r, t, CUDA)
    assert "not_judged" in codes(r) and "MIG" in r.warnings[0].message and "no_utilization" not in codes(r)


def test_cpu_runs_are_not_checked_for_accelerator_idleness():
    r = result_with_steps()
    telemetry_checks(r, telemetry(util=0.0), CPU)
    assert "idle_accelerator" not in codes(r)


def test_throttled_means_a_share_of_the_samples_not_one():
    r = result_with_steps()
    telemetry_checks(r, telemetry(util=99.0, extra={"gpu0.throttle_reasons": 0x40}), CUDA)
    assert "throttled" in codes(r) and "HW thermal" in [w for w in r.warnings if w.code == "throttled"][0].message
    r = result_with_steps()
    t = telemetry(util=99.0, extra={"gpu0.throttle_reasons": 0})
    t.samples[20]["gpu0.throttle_reasons"] = 0x40  # one 100 ms sample of 21 in the window: 0.1 flagged the run
    telemetry_checks(r, t, CUDA)
    assert "throttled" not in codes(r)


def test_running_at_the_power_cap_is_not_throttling():
    r = result_with_steps()
    telemetry_checks(r, telemetry(util=99.0, extra={"gpu0.throttle_reasons": 0x4}), CUDA)  # SW power cap
    assert "throttled" not in codes(r)  # a loaded A100/H100 runs at its cap; 0.1 flagged it
    r = result_with_steps()
    telemetry_checks(r, telemetry(util=99.0, extra={"gpu0.throttle_reasons": 0x1}), CUDA)  # idle bit only
    assert "throttled" not in codes(r)


def test_another_process_on_the_card_is_contention():
    r = result_with_steps()
    telemetry_checks(r, telemetry(util=99.0, extra={"gpu0.other_processes": 1}), CUDA)
    assert "contended" in codes(r) and "1 other process" in r.warnings[0].message


def test_model_not_on_device():
    r = result_with_steps()
    r.model_device = "cpu"
    telemetry_checks(r, telemetry(util=99.0), CUDA)
    assert "model_not_on_device" in codes(r)


def test_energy_per_sample_from_the_counter_scaled_to_step_time():
    r = result_with_steps(n=10, step=0.2)  # 2.0 s of steps in a 2.0 s window
    telemetry_checks(r, telemetry(util=99.0), CUDA)
    e = r.energy.device
    assert e.joules == pytest.approx(600.0) and e.parts["gpu0"].method == "energy counter"
    assert e.per_sample_j == pytest.approx(600.0 / 80) and e.per_token_j == pytest.approx(600.0 / 800)
    assert r.memory.host_peak_rss_bytes == 2**30
    assert r.energy.host.joules is None and "RAPL" in r.energy.host.reason  # host energy is its own figure


def test_energy_is_null_with_a_reason_when_nothing_measures_it():
    r = result_with_steps()
    t = telemetry(util=99.0)
    for s in t.samples:
        del s["gpu0.energy_j"], s["gpu0.power_w"]
    telemetry_checks(r, t, CUDA)
    assert r.energy.device.joules is None and "no energy counter or power samples for gpu0" in r.energy.device.reason


CPUINFO = """processor\t: 0
vendor_id\t: {vendor}
model name\t: Test CPU
cpu MHz\t\t: 2000.000
flags\t\t: fpu sse2 avx2 fma {flags}
"""


@pytest.mark.parametrize("vendor,flags,precision,per_cycle", [
    ("GenuineIntel", "avx512f", "fp32", 64), ("AuthenticAMD", "avx512f avx512_bf16", "fp32", 32),
    ("AuthenticAMD", "avx512f avx512_bf16", "bf16", 64), ("GenuineIntel", "avx512f amx_bf16", "bf16", 2048),
    ("GenuineIntel", "", "fp32", 32), ("GenuineIntel", "", "bf16", None),
])
def test_cpu_peak_estimate(vendor, flags, precision, per_cycle):
    peak, source = cpu_peak(2, precision, CPUINFO.format(vendor=vendor, flags=flags))
    if per_cycle is None:
        assert peak is None and "no bf16" in source
    else:
        assert peak == 2 * 2.0e9 * per_cycle and source.startswith("estimate")


def test_direct_counter_reading_wins_over_samples():
    r = result_with_steps(n=10, step=0.2)
    counter = {"joules": 500.0, "window_s": 2.5, "method": "energy counter read after a device sync"}
    telemetry_checks(r, telemetry(util=99.0), CUDA, [counter])
    assert r.energy.device.joules == 500.0 and "after a device sync" in r.energy.device.method
    assert r.energy.device.per_sample_j == pytest.approx(500.0 * (2.0 / 2.5) / 80)


def test_runner_reads_the_counter_after_syncs(tmp_path, monkeypatch):
    from conftest import measure
    from fakes import CountingWorkload, LoggingBackend

    from bench.measure.runner import Measurement

    log = []
    backend = LoggingBackend(log)
    counter = iter([100.0, 175.0])
    backend.energy_meter = lambda: (lambda: (log.append("energy"), next(counter))[1])
    out = Measurement(CountingWorkload(backend=backend), backend, measure(steps=3, warmup=0)).run()
    assert out.energy_counter["joules"] == 75.0
    for i, e in enumerate(log):
        if e == "energy":
            assert log[i - 1] == "sync"


def test_a_mig_instance_is_not_charged_the_whole_gpus_energy():
    """NVML's power and energy on MIG are the whole GPU's: no energy per token for the slice, the reading
    labelled as the whole GPU's."""
    for counters in (None, [{"joules": 600.0, "window_s": 2.0, "method": "energy counter read after a device sync"}]):
        r = result_with_steps()
        tel = telemetry(util=None)
        tel.sources["gpu0"] = TelemetrySource("accelerator", "cuda", 0, mig=True)
        telemetry_checks(r, tel, CUDA, counters)
        e = r.energy.device
        assert e.joules is None and e.per_token_j is None and e.per_sample_j is None  # 0.1: the GPU's, as the slice's
        assert "MIG instance" in e.reason
        assert e.parts["gpu0"].joules > 0 and "whole GPU" in e.parts["gpu0"].method
