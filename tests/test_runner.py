import time

import pytest
from fakes import CountingWorkload, LoggingBackend, logging_clock

from bench.runner import Measurement, NullProgress, PhaseLog


def measure(cfg, wl, backend):
    return Measurement(wl, backend, cfg, PhaseLog(time.monotonic_ns()), NullProgress()).run()


def test_every_clock_read_is_preceded_by_a_sync(cpu_cfg, monkeypatch):
    log = []
    backend = LoggingBackend(log)
    wl = CountingWorkload(cpu_cfg, backend, log=log)
    logging_clock(monkeypatch, log)
    result = measure(cpu_cfg, wl, backend)
    assert result.status == "ok"
    reads = [i for i, e in enumerate(log) if e == "clock"]
    assert reads, "the runner read no clock"
    for i in reads:
        assert log[i - 1] == "sync", f"clock read #{i} follows {log[i - 1]!r}, not a sync"
    # every step sits between a sync+clock pair on both sides
    for i, e in enumerate(log):
        if e == "step":
            assert log[i - 2:i] == ["sync", "clock"] and log[i + 1:i + 3] == ["sync", "clock"]


def test_raw_times_and_warmup_are_kept_apart(cpu_cfg, monkeypatch):
    logging_clock(monkeypatch, [], step_ns=2_000_000)
    wl = CountingWorkload(cpu_cfg, LoggingBackend([]))
    result = measure(cpu_cfg, wl, LoggingBackend([]))
    t = result.timing
    assert wl.calls == cpu_cfg.warmup + cpu_cfg.steps
    assert len(t.step_times_s) == cpu_cfg.steps
    assert t.step_times_s == [pytest.approx(0.002)] * cpu_cfg.steps
    assert t.first_step_s == pytest.approx(0.002)
    assert result.metrics.samples_per_s.value == pytest.approx(2 / 0.002)
    assert result.metrics.tokens_per_s.value == pytest.approx(10 / 0.002)


def test_repeats_each_record_cpu_over_wall(cpu_cfg):
    cfg = cpu_cfg
    cfg.repeats = 3
    result = measure(cfg, CountingWorkload(cfg, LoggingBackend([])), LoggingBackend([]))
    reps = result.timing.repeats
    assert [len(r.step_times_s) for r in reps] == [cfg.steps] * 3
    assert all(r.wall_s > 0 and r.cpu_wall_ratio is not None for r in reps)
    assert len(result.timing.step_times_s) == 3 * cfg.steps


def test_time_budget_runs_until_budget_and_at_least_min_steps(cpu_cfg, monkeypatch):
    cfg = cpu_cfg
    cfg.steps, cfg.time_budget_s, cfg.min_steps = None, 0.0105, 3
    logging_clock(monkeypatch, [], step_ns=1_000_000)
    result = measure(cfg, CountingWorkload(cfg, LoggingBackend([])), LoggingBackend([]))
    n = len(result.timing.step_times_s)
    # each loop costs 3 fake-clock reads (budget check + two around the step) of 1 ms each:
    # the budget check sees 1, 4, 7, 10, 13 ms elapsed -> four steps fit in 10.5 ms
    assert n == 4
    cfg.time_budget_s = 1e-9
    result = measure(cfg, CountingWorkload(cfg, LoggingBackend([])), LoggingBackend([]))
    assert len(result.timing.step_times_s) == 3


def test_failing_workload_is_recorded_with_its_message(cpu_cfg):
    result = measure(cpu_cfg, CountingWorkload(cpu_cfg, LoggingBackend([]), fail_at=3), LoggingBackend([]))
    assert result.status == "failed"
    assert "boom at step 3" in result.error


def test_out_of_memory_names_the_batch_size(cpu_cfg):
    class Oom(CountingWorkload):
        def step(self):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    result = measure(cpu_cfg, Oom(cpu_cfg, LoggingBackend([])), LoggingBackend([]))
    assert result.status == "failed"
    assert "out of memory" in result.error and f"batch size {cpu_cfg.batch_size}" in result.error


def test_interrupt_keeps_the_steps_so_far(cpu_cfg):
    cfg = cpu_cfg
    cfg.steps = 10
    wl = CountingWorkload(cfg, LoggingBackend([]), interrupt_at=cfg.warmup + 4)
    result = measure(cfg, wl, LoggingBackend([]))
    assert result.status == "interrupted"
    assert len(result.timing.step_times_s) == 3
    assert result.metrics.samples_per_s.value > 0


def test_no_warmup_is_flagged(cpu_cfg):
    cfg = cpu_cfg
    cfg.warmup = 0
    result = measure(cfg, CountingWorkload(cfg, LoggingBackend([])), LoggingBackend([]))
    assert result.timing.first_step_s is None
    assert "no_warmup" in result.codes()


def test_samples_are_stamped_with_their_phase():
    from bench.model.report import Phase
    from bench.runner import label_phases

    phases = [Phase("w", "setup", 0.0, 1.0), Phase("w", "measure", 1.5, 3.0)]
    samples = [{"t": 0.5}, {"t": 1.2}, {"t": 2.0}, {"t": 3.5}]
    label_phases(samples, phases)
    assert [(s["workload"], s["phase"]) for s in samples] == [("w", "setup"), (None, None), ("w", "measure"),
                                                              (None, None)]
