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
    w = until_steady(steps([0.01, 0.02] * 100))
    assert w.steady is False and len(w.times) == MAX_STEPS


def test_a_warm_up_of_slow_steps_stops_at_its_time_bound():
    now = [0.0]

    def step():
        now[0] += 10.0
        return 10.0 + now[0] / 100  # still getting slower

    w = until_steady(step, max_s=30.0)
    assert w.steady is False and len(w.times) == 4  # the first step, then 30 s of steps after it


def test_a_40_s_first_step_ends_the_warm_up_with_a_compile_free_window():
    """A first step of 40 s (the compile: Gaudi lazy mode without a recipe cache), a second that compiles
    again (AdamW creates its state in the first step(): torch/optim/adam.py _init_group), and a late graph
    in step 5. 0.1 ended the warm-up after the first step (its 30 s bound counted the compile)."""
    plan = [(40.0, 1), (20.0, 1), (1.0, 0), (1.0, 0), (3.0, 1)] + [(1.0, 0)] * 20  # (seconds, graphs compiled)
    graphs, done = [0], []

    def step():
        seconds, compiled = plan[len(done)]
        graphs[0] += compiled
        done.append(graphs[0])
        return seconds

    w = until_steady(step, compiles=lambda: graphs[0])
    assert w.steady is True and len(w.times) == 1 + 3 * WINDOW  # windows agreed at 7, but the last one compiled
    assert done[-1] == done[-1 - WINDOW] == 3  # the last window compiled nothing: nothing is left to compile


def test_the_time_bound_waits_for_a_window_without_compiles():
    graphs = [0]

    def step():  # a graph every other step, and windows that never agree
        graphs[0] += 1 if len(seen) % 2 else 0
        seen.append(1)
        return 10.0 + len(seen) % 3

    seen = []
    w = until_steady(step, compiles=lambda: graphs[0], max_steps=12)
    assert w.steady is False and len(w.times) == 12  # not at 30 s: only the step bound ended a compiling warm-up
    seen.clear()
    assert len(until_steady(step, max_steps=12).times) == 4  # uncounted: the time bound, after the first step


def test_the_runner_measures_nothing_a_long_first_step_left_to_compile(monkeypatch):
    """A static-shape device as Gaudi's lazy mode (tests/fakes.py shape_counting_backend: a graph is what runs
    between two syncs; a new one compiles) whose compiles take 40 s each; a
    tiny AdamW fine-tune step, whose second step is a new graph (the optimizer's state appears in the first).
    0.1 stopped warming up after the 40 s first step and compiled step 2's graph inside the measured steps."""
    from conftest import common
    from fakes import shape_counting_backend

    from workloads.blender_finetune import BlenderFinetune, FinetuneOptions

    backend = shape_counting_backend(static_shapes=True)
    now = {"ns": 0}
    real_sync = backend.synchronize

    def sync():  # each sync costs 0.5 s of device time, and each new graph a 40 s compile
        before = len(backend.graphs)
        real_sync()
        now["ns"] += int(5e8) + int(40e9) * (len(backend.graphs) - before)

    backend.synchronize = sync
    monkeypatch.setattr("time.perf_counter_ns", lambda: now["ns"])
    wl = BlenderFinetune(common("tiny"), FinetuneOptions.build({}, "tiny"), backend)
    with backend.queue:
        out = Measurement(wl, backend, measure(steps=3)).run()
    assert out.result.status == "ok", out.result.error
    rep = out.result.timing.repeats[0]
    graphs = {c.phase: c.graphs for c in rep.compiles}
    assert rep.first_step_s >= 40 and rep.warmup_steps >= 1 + 1 + WINDOW and graphs["warmup"] >= 2
    assert graphs["measure"] == 0 and not [w for w in out.result.warnings if w.code == "compiled_while_measuring"]


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


def test_the_runner_warms_up_until_the_device_stops_compiling(monkeypatch):
    """The runner hands the device's compile count to the warm-up: five 40 s steps that each compile (a
    graph per new shape), then 1 s steps. Without the count the time bound ends the warm-up after two steps
    and three graphs compile inside the measured steps."""
    now, graphs = {"ns": 0}, {"n": 0}

    class Compiling(LoggingBackend):
        def compile_stats(self):
            return {"graphs": graphs["n"], "seconds": None, "source": "fake: a graph per step until step 5"}

    class Step(CountingWorkload):
        def step(self):
            out = super().step()
            compiling = self.calls <= 5
            graphs["n"] += compiling
            now["ns"] += int(40e9) if compiling else int(1e9)
            return out

    monkeypatch.setattr("time.perf_counter_ns", lambda: now["ns"])
    out = Measurement(Step(backend=Compiling()), Compiling(), measure(steps=4)).run()
    rep = out.result.timing.repeats[0]
    assert {c.phase: c.graphs for c in rep.compiles}["measure"] == 0 and rep.warmup_steps >= 5 + WINDOW
    assert not [w for w in out.result.warnings if w.code == "compiled_while_measuring"]
