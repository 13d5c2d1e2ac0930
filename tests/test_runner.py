import pytest
from conftest import measure
from fakes import CountingWorkload, LoggingBackend, logging_clock

from bench.measure.runner import Measurement


def run(wl, backend, m=None, **kw):
    return Measurement(wl, backend, m or measure(steps=4, warmup=1), **kw).run()


def test_every_clock_read_is_preceded_by_a_sync(monkeypatch):
    log = []
    backend = LoggingBackend(log)
    wl = CountingWorkload(backend=backend, log=log)
    logging_clock(monkeypatch, log)
    out = run(wl, backend)
    assert out.result.status == "ok"
    reads = [i for i, e in enumerate(log) if e == "clock"]
    assert reads, "the runner read no clock"
    for i in reads:
        assert log[i - 1] == "sync", f"clock read #{i} follows {log[i - 1]!r}, not a sync"
    for i, e in enumerate(log):  # every step sits between a sync+clock pair on both sides
        if e == "step":
            assert log[i - 2:i] == ["sync", "clock"] and log[i + 1:i + 3] == ["sync", "clock"]


def test_raw_times_and_warmup_are_kept_apart(monkeypatch):
    logging_clock(monkeypatch, [], step_ns=2_000_000)
    wl = CountingWorkload(backend=LoggingBackend())
    out = run(wl, LoggingBackend())
    rep = out.result.timing.repeats[0]
    assert wl.calls == 1 + 4
    assert rep.step_times_s == [pytest.approx(0.002)] * 4
    assert rep.first_step_s == pytest.approx(0.002) and rep.warmup_s == pytest.approx(0.002)
    assert rep.step_samples == [2] * 4 and rep.step_tokens == [10] * 4
    assert rep.wall_s > 0 and rep.cpu_wall_ratio is not None and rep.pid
    assert 0 < rep.host_probe_s < 1  # the machine's own speed, timed before the steps


def test_one_measurement_is_one_repeat_with_its_index():
    out = run(CountingWorkload(backend=LoggingBackend()), LoggingBackend(), index=2)
    assert [r.index for r in out.result.timing.repeats] == [2]
    assert [p.phase for p in out.phases] == ["setup", "warmup", "measure", "verify"]
    assert {p.repeat for p in out.phases} == {2}


def test_time_budget_runs_until_budget_and_at_least_min_steps(monkeypatch):
    logging_clock(monkeypatch, [], step_ns=1_000_000)
    m = measure(time_budget=0.0105, min_steps=3)
    out = run(CountingWorkload(backend=LoggingBackend()), LoggingBackend(), m)
    # each loop costs 3 fake-clock reads (budget check + two around the step) of 1 ms each:
    # the budget check sees 1, 4, 7, 10, 13 ms elapsed -> four steps fit in 10.5 ms
    assert len(out.result.timing.step_times_s) == 4
    out = run(CountingWorkload(backend=LoggingBackend()), LoggingBackend(), measure(time_budget=1e-9, min_steps=3))
    assert len(out.result.timing.step_times_s) == 3


def test_failing_workload_is_recorded_with_its_message():
    out = run(CountingWorkload(backend=LoggingBackend(), fail_at=3), LoggingBackend())
    assert out.result.status == "failed" and "boom at step 3" in out.result.error
    assert out.result.timing.repeats[0].status == "failed"


@pytest.mark.parametrize("exc,where", [(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "device memory"),
                                       (MemoryError(), "host memory")])
def test_out_of_memory_says_which_memory_and_what_to_lower(exc, where):
    class Oom(CountingWorkload):
        def step(self):
            raise exc

    out = run(Oom(backend=LoggingBackend()), LoggingBackend())
    assert out.result.status == "failed"
    assert f"out of {where}" in out.result.error and "--batch-size" in out.result.error


def test_interrupt_keeps_the_steps_so_far():
    wl = CountingWorkload(backend=LoggingBackend(), interrupt_at=1 + 4)
    out = run(wl, LoggingBackend(), measure(steps=10, warmup=1))
    assert out.result.status == "interrupted"
    assert len(out.result.timing.step_times_s) == 3


def test_a_nan_loss_becomes_null_with_a_warning():
    class Diverging(CountingWorkload):
        def series(self):
            return {"loss": [1.0, float("nan"), float("inf"), 2.0]}

    out = run(Diverging(backend=LoggingBackend()), LoggingBackend())
    assert out.result.timing.repeats[0].series["loss"] == [1.0, None, None, 2.0]
    assert "non_finite" in out.result.codes()
    from bench.model.fields import parse, plain
    from bench.model.report import Result

    assert parse(Result, plain(out.result)).status == "ok"  # and the result can be written


def test_step_records_are_kept_per_step_and_per_item():
    class Recording(CountingWorkload):
        def record(self, step):
            return {"per_step": self.calls * 1.0, "per_token": [0.1, 0.2]}

    rep = run(Recording(backend=LoggingBackend()), LoggingBackend()).result.timing.repeats[0]
    assert rep.series["per_step"] == [2.0, 3.0, 4.0, 5.0] and len(rep.series["per_token"]) == 8


class ShapeShifting(CountingWorkload):
    """A torch.compile'd function whose input grows at step `grow_at`: a recompile while measuring."""

    def __init__(self, backend, grow_at=None):
        super().__init__(backend=backend)
        self.grow_at = grow_at

    def setup(self):
        import torch

        self.fn = self.backend.torch.compile(lambda x: (x * 2).sin(), **self.backend.compile_options())
        self.torch = torch

    def step(self):
        out = super().step()
        self.fn(self.torch.ones(3 + (self.calls >= (self.grow_at or 10**9))))
        return out


def test_a_torch_compile_recompile_while_measuring_is_counted_and_warned(monkeypatch):
    from conftest import cpu_backend

    b = cpu_backend(compile=True)
    monkeypatch.setattr(b, "compile_options", lambda: {"backend": "eager"})  # dynamo counts; no C++ build here
    result = run(ShapeShifting(b, grow_at=4), b, measure(steps=3, warmup=2)).result
    by_phase = {c.phase: c for c in result.timing.repeats[0].compiles}
    assert by_phase["warmup"].graphs >= 1 and by_phase["measure"].graphs >= 1
    assert by_phase["measure"].seconds > 0 and "torch._dynamo" in by_phase["measure"].source
    assert "compiled_while_measuring" in result.codes()
    steady = run(ShapeShifting(b), b, measure(steps=3, warmup=2)).result
    assert {c.phase: c.graphs for c in steady.timing.repeats[0].compiles}["measure"] == 0
    assert "compiled_while_measuring" not in steady.codes()


class Respecialising(CountingWorkload):
    """A compiled function whose every call guards on a new string: dynamo recompiles each step until its
    recompile limit (torch/_dynamo/config.py recompile_limit = 8), then runs the frame eager from there on
    (convert_frame.py: FrameAction.RUN_ONLY), with one log warning and no error."""

    def setup(self):
        import torch

        def scaled(x, tag):
            return x * len(tag) if tag.startswith("a") else x - len(tag)

        self.fn, self.torch = self.backend.torch.compile(scaled, **self.backend.compile_options()), torch

    def step(self):
        out = super().step()
        self.fn(self.torch.ones(3), "a" * self.calls + "b")
        return out


def test_a_compiled_function_past_the_recompile_limit_is_recorded_as_run_eager(monkeypatch):
    from conftest import cpu_backend

    b = cpu_backend(compile=True)
    monkeypatch.setattr(b, "compile_options", lambda: {"backend": "eager"})  # dynamo counts; no C++ build here
    logging_clock(monkeypatch, [], step_ns=2_000_000)
    result = run(Respecialising(backend=b), b, measure(steps=12, warmup=10)).result
    by_phase = {c.phase: c for c in result.timing.repeats[0].compiles}
    assert by_phase["warmup"].eager_frames == 1 and by_phase["measure"].eager_frames == 0
    [w] = [w for w in result.warnings if w.code == "ran_eager"]  # 0.1: recorded as compiled, nothing said
    assert "recompile limit" in w.message and "warmup" in w.message


def test_nothing_is_recorded_where_nothing_counts_compiles():
    from conftest import cpu_backend

    b = cpu_backend()  # eager: no torch.compile
    assert b.compile_stats() is None
    assert run(CountingWorkload(backend=b), b).result.timing.repeats[0].compiles == []


def test_compile_counts_and_times_reach_the_written_report(monkeypatch):
    """A stack counter that counts one graph (0.5 s) per read: every phase compiled, the measured one too."""
    import json

    from conftest import run_inline

    from bench.devices.cpu.backend import CpuBackend
    from bench.model.report import Report

    reads = []

    def stats(self):
        reads.append(1)
        return {"graphs": len(reads), "seconds": 0.5 * len(reads), "source": "a test counter"}

    monkeypatch.setattr(CpuBackend, "compile_stats", stats)
    report = run_inline("--workload", "blender-finetune")
    loaded = Report.from_json(json.loads(json.dumps(report.to_json())))
    [res] = loaded.results
    [rep] = res.timing.repeats
    assert [(c.phase, c.graphs, c.seconds, c.source) for c in rep.compiles] == [
        (p, 1, 0.5, "a test counter") for p in ("setup", "warmup", "measure", "verify")]
    assert "compiled_while_measuring" in res.codes()
