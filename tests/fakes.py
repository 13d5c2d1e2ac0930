"""Fakes shared by the tests: a backend that logs syncs, a workload that counts, a clock that logs reads."""

from __future__ import annotations

import time
import types

from workloads.base import NoOptions, StepResult, Workload


class LoggingBackend:
    """Backend stand-in: records synchronize/mark_step order into a shared event log."""

    name = "cpu"
    torch_device_type = "cpu"
    static_shapes = False

    def __init__(self, log: list | None = None):
        self.log = log if log is not None else []
        self.torch = types.SimpleNamespace(get_num_threads=lambda: 1)

    def synchronize(self):
        self.log.append("sync")

    def after_backward(self):
        self.log.append("after_backward")

    def after_optimizer_step(self):
        self.log.append("after_optimizer_step")

    def reset_peak_memory(self):
        pass

    def memory_stats(self):
        return {"device_peak_bytes": None}

    def peak_flops(self, precision):
        return None, "fake"

    def is_oom(self, exc):
        return "out of memory" in str(exc)

    def threads(self):
        return None

    def energy_meter(self):
        return None

    def collector_specs(self):
        return []

    def describe(self):
        return {"backend": "cpu", "device": "cpu"}


class CountingWorkload(Workload):
    name = "counting"
    description = "does nothing, counts"

    def __init__(self, common=None, options=None, backend=None, fail_at=None, interrupt_at=None, log=None):
        super().__init__(common, options or NoOptions(), backend)
        self.fail_at, self.interrupt_at = fail_at, interrupt_at
        self.calls = 0
        self.log = log if log is not None else []

    def params(self):
        return {"model": "none", "batch_size": 2, "precision": "fp32"}

    def step(self):
        self.calls += 1
        self.log.append("step")
        if self.calls == self.fail_at:
            raise RuntimeError("boom at step %d" % self.calls)
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        return StepResult(samples=2, tokens=10)


def logging_clock(monkeypatch, log: list, step_ns: int = 1_000_000):
    """Replace time.perf_counter_ns with a fake that logs each read and advances step_ns."""
    state = {"now": 0}

    def fake():
        log.append("clock")
        state["now"] += step_ns
        return state["now"]

    monkeypatch.setattr(time, "perf_counter_ns", fake)
    return state
