"""Warm-up until successive windows of steps agree, bounded, recorded; the not_steady check is the
same as before and advises only what would help."""

from __future__ import annotations

import pytest
from conftest import measure
from fakes import CountingWorkload, LoggingBackend, logging_clock

from bench.core import stats
from bench.measure.runner import Measurement
from bench.measure.warmup import GROUP_STEPS, MAX_STEPS, WINDOW, until_steady
from bench.model.derive import timing_warnings
from bench.model.report import Contention, Metrics, Repeat, Timing


def steps(times):
    it = iter(times)
    return lambda: next(it)


def test_warm_up_ends_when_two_windows_agree():
    times = [5.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.02, 1.01, 99.0]
    w = until_steady(steps(times))
    assert w.steady is True and w.times == times[:1 + 3 * WINDOW]  # the first step, then 3 windows


def test_a_warm_up_that_never_settles_stops_at_its_bound_and_says_so():
    w = until_steady(steps([1.0, 2.0] * 100))
    assert w.steady is False and len(w.times) == MAX_STEPS


def test_a_warm_up_of_slow_steps_stops_at_its_time_bound():
    now = [0.0]

    def step():
        now[0] += 10.0
        return 10.0 + now[0] / 100  # still getting slower

    w = until_steady(step, clock=lambda: now[0], max_s=30.0)
    assert w.steady is False and len(w.times) == 3


def test_a_fixed_warm_up_runs_exactly_that_many():
    assert until_steady(steps([1.0] * 10), fixed=2).times == [1.0, 1.0]
    assert until_steady(steps([]), fixed=0).times == []


def test_the_runner_records_the_warm_up(monkeypatch):
    logging_clock(monkeypatch, [], step_ns=2_000_000)
    out = Measurement(CountingWorkload(backend=LoggingBackend()), LoggingBackend(), measure(steps=4)).run()
    rep = out.result.timing.repeats[0]
    assert rep.warmup_steady is True and rep.warmup_steps == 1 + 2 * WINDOW  # constant steps agree at once
    assert rep.warmup_s == pytest.approx(0.002 * rep.warmup_steps)


def test_ranks_of_a_group_warm_up_the_same_fixed_count(monkeypatch):
    """Each rank deciding alone when its windows agree left one rank in an all-reduce the other never
    joined (a gloo timeout at --scaling 1,2): a group runs GROUP_STEPS on every rank."""
    logging_clock(monkeypatch, [], step_ns=2_000_000)
    wl = CountingWorkload(backend=LoggingBackend())
    wl.world_size = 2
    rep = Measurement(wl, LoggingBackend(), measure(steps=4)).run().result.timing.repeats[0]
    assert rep.warmup_steps == GROUP_STEPS and rep.warmup_steady is None


def test_the_not_steady_check_is_not_loosened():
    assert stats.steady_state_start.__defaults__ == (0.10,)
    assert stats.steady_state_start([1.2, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]) == 1
    assert stats.steady_state_start([1.09, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]) == 0


def slow_start(index=0, contended=False, steady=True, warmup_steps=7, ratio=1.0):
    times = [0.2, 0.15] + [0.1] * 18
    return Repeat(index=index, first_step_s=0.3, warmup_s=0.9, warmup_steps=warmup_steps, warmup_steady=steady,
                  step_times_s=times, step_samples=[8] * 20, step_tokens=[8] * 20, cpu_wall_ratio=ratio,
                  contention=Contention(other_load_cores=1.2 if contended else 0.0,
                                        reasons=["other processes used 1.20 CPU cores"] if contended else []))


def not_steady(*repeats, threads=1):
    return next(w.message for w in timing_warnings(Timing(list(repeats)), Metrics(), threads) if w.code == "not_steady")


def test_not_steady_advises_only_what_would_help():
    shared = not_steady(slow_start(contended=True))
    assert "would not help" in shared and "--warmup" not in shared  # the other load was the cause
    low_cpu = not_steady(slow_start(ratio=0.4), threads=2)  # the cores were taken: noisy, not warming
    assert "would not help" in low_cpu
    assert not_steady(slow_start()).endswith("--warmup 9 would cover them")  # 7 run + 2 slow
    bound = not_steady(slow_start(steady=False, warmup_steps=60))
    assert "stopped at its bound after 60 steps" in bound and "--warmup 62" in bound
    mixed = not_steady(slow_start(0, contended=True), slow_start(1))  # one repeat was quiet: warming, then
    assert "--warmup" in mixed
