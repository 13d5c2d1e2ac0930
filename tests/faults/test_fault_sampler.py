"""Fault class: a dead or frozen sampler, said in the report."""

from __future__ import annotations

import os
import signal

import pytest
from conftest import cli_run as run_cli
from faultkit import (
    ONE,
    fault_fixture,  # noqa: F401 - each case's own temporary directory
    leftovers,
    only_report,
)


@pytest.mark.slow
@pytest.mark.parametrize("sig,said", [(signal.SIGKILL, "killed by signal 9"), (signal.SIGSTOP, "frozen")])
def test_a_sampler_that_dies_or_freezes_is_in_the_report(sig, said, tmp_path, capsys, monkeypatch,
                                                          own_tmp_and_handlers):
    from bench.launch.launcher import Launcher
    from bench.measure import sampler

    # a stopped (SIGSTOP) sampler never ends by itself: how long stop() waits for it only adds to this test's time
    monkeypatch.setattr(sampler, "STOP_TIMEOUT_S", 0.5)
    real, hit = Launcher.on_event, []

    def on_event(self, event):
        real(self, event)
        if not hit and event["event"] == "progress" and event.get("phase") == "measure":
            hit.append(self.sampler.proc.pid)
            os.kill(self.sampler.proc.pid, sig)

    monkeypatch.setattr(Launcher, "on_event", on_event)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "run", "--device", "cpu", "--preset", "tiny", "--repeats", 1, "--warmup", 1, *ONE,
                           "--in-process", "--time-budget", 4, "--out", out)
    assert hit and code == 0, err
    report = only_report(out)
    health = report.telemetry.health
    assert said in health.reason
    assert health.alive_to_end is (sig == signal.SIGSTOP)  # a frozen one was alive, and then killed
    measured = [c for c in health.phases if c.phase == "measure"]
    assert measured and measured[0].max_gap_s > 3
    assert "sampler_gaps" in report.results[0].codes()
    assert leftovers(own_tmp_and_handlers) == []


def _telemetry(samples, phases, period=0.1, alive=True, reason=None, accel=False):
    from bench.measure.validity import sampler_health
    from bench.model.report import Phase, Telemetry, TelemetrySource

    sources = {"gpu0": TelemetrySource("accelerator", "cuda", 0)} if accel else {}
    t = Telemetry(sample_hz=1 / period, phases=[Phase("w", *p) for p in phases], sources=sources,
                  samples=[{"t": x, "gpu0.util_percent": 90.0} for x in samples])
    t.health = sampler_health(t, period, {"alive_to_end": alive, "reason": reason})
    return t


def test_coverage_is_per_phase_with_its_longest_gap():
    t = _telemetry([0.1 * i for i in range(1, 20)] + [6.0 + 0.1 * i for i in range(10)],
                   [("setup", 0.0, 2.0, 0), ("measure", 2.0, 7.0, 0)])
    setup, measure = t.health.phases
    assert setup.samples == 19 and setup.max_gap_s == pytest.approx(0.1)
    assert measure.samples == 10 and measure.max_gap_s == pytest.approx(4.0)
    assert measure.samples_per_s == pytest.approx(2.0)


def test_a_gap_in_the_measured_steps_warns_and_leaves_the_accelerator_unjudged():
    from bench.devices.registry import spec
    from bench.measure.validity import telemetry_checks
    from bench.model.report import Repeat, Result, Timing

    t = _telemetry([0.1 * i for i in range(30)] + [6.0 + 0.1 * i for i in range(10)],
                   [("measure", 0.0, 7.0, 0)], accel=True)
    result = Result("w", "ok", timing=Timing([Repeat(0, step_times_s=[0.5] * 10, step_samples=[1] * 10,
                                                     step_tokens=[1] * 10)]))
    telemetry_checks(result, t, spec("cuda"))
    assert {"sampler_gaps", "not_judged"} <= result.codes()
    assert "idle_accelerator" not in result.codes()


def test_a_steady_sampler_gives_no_warning():
    from bench.measure.validity import sampler_checks
    from bench.model.report import Result

    t = _telemetry([0.1 * i for i in range(71)], [("measure", 0.0, 7.0, 0)])
    result = Result("w", "ok")
    assert sampler_checks(result, t) and not result.warnings


def test_a_sampler_that_died_before_a_short_phase_ended_is_named():
    from bench.measure.validity import sampler_checks
    from bench.model.report import Result

    t = _telemetry([0.1 * i for i in range(5)], [("measure", 0.0, 0.6, 0)], alive=False,
                   reason="the sampler process ended before the run did (killed by signal 9)")
    result = Result("w", "ok")
    assert not sampler_checks(result, t)
    assert "ended after the last sample" in result.warnings[0].message
    assert "signal 9" in result.warnings[0].message
