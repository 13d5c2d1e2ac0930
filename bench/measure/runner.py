"""The measurement loop of one repeat: setup -> warm-up -> timed steps -> verify, whatever happens.

Every clock read is preceded by backend.synchronize(): timing an asynchronous device from the host
without a sync measures dispatch, not work. Each step's raw values are recorded after its closing
clock read; the fingerprint and live-model figures are computed after timing, never inside it.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field

from bench.core.errors import ConfigError, WorkloadSkipped
from bench.measure.compiles import CompileLog, read_stats
from bench.measure.contention import HostSnapshot, contention, needed_cores
from bench.measure.probe import host_speed_s
from bench.measure.warmup import GROUP_STEPS, until_steady
from bench.model.report import Memory, Phase, Repeat, Result, variant_label


class Clock:
    """The run's clock: CLOCK_MONOTONIC seconds since t0_ns, the same in every process of a run."""

    def __init__(self, t0_ns: int | None = None):
        self.t0_ns = time.monotonic_ns() if t0_ns is None else t0_ns

    def now(self) -> float:
        return (time.monotonic_ns() - self.t0_ns) / 1e9


class NullSink:
    """Where a repeat reports its phases and progress (the worker streams them to the parent), and the
    processes outside its tree it counts as its own (`own`: the launcher tells the sampler; a sink
    without it keeps the claim to this process's CPU judgement), and a device its work uses outside this
    process (`watch`: a server's card, for the sampler)."""

    def phase(self, phase: Phase) -> None: ...
    def progress(self, phase: str, done: int, total: int | None) -> None: ...
    def own(self, pids: tuple[int, ...], on_device: int) -> None: ...
    def watch(self, specs: list[dict]) -> None: ...


@dataclass
class Outcome:
    """One repeat's result (its timing holds exactly this repeat) and what the launcher combines."""

    result: Result
    energy_counter: dict | None = None
    phases: list[Phase] = field(default_factory=list)


def timed_step(workload, backend, handicap: float = 0.0):
    """One step between two synchronized clock reads: (StepResult, seconds). handicap > 0 adds that
    share of the step's time as busy compute on this thread, inside the timed region (a deliberate,
    recorded slow-down for testing comparisons; a sleep would look like contention)."""
    backend.synchronize()
    t0 = time.perf_counter_ns()
    result = workload.step()
    backend.synchronize()
    if handicap:
        _spin(t0, handicap)
    t1 = time.perf_counter_ns()
    return result, (t1 - t0) / 1e9


def _spin(t0: int, handicap: float) -> None:
    until = time.perf_counter_ns() + int((time.perf_counter_ns() - t0) * handicap)
    while time.perf_counter_ns() < until:
        pass


def declared_figures(workload):
    """The figures a workload's results declare with its options (workloads/base.py figures_for; a workload
    object of its own making, without it, declares its `figures`)."""
    of = getattr(type(workload), "figures_for", None)
    return of(workload.options) if of is not None else getattr(workload, "figures", ())


class Measurement:
    """Runs one repeat of one workload and fills its Outcome, whatever happens."""

    own_pids: tuple[int, ...] = ()  # processes outside the run's tree whose CPU is this run's work (a local server)
    on_device: int = 0  # how many of them hold the accelerator (a server the run talks to on its device)

    def __init__(self, workload, backend, measure, index: int = 0, clock: Clock | None = None, sink=None,
                 tree_root: int | None = None, variant: dict | None = None):
        self.wl, self.backend, self.m = workload, backend, measure
        self.tree_root = tree_root  # the run's own process tree: CPU used outside it is other load
        self.clock, self.sink = clock or Clock(), sink or NullSink()
        self.repeat = Repeat(index=index, pid=os.getpid())
        self.result = Result(workload=workload.name, status="ok", figures=list(declared_figures(workload)),
                             variant=dict(variant or {}))
        self.variant = variant_label(self.result.variant)
        self.result.timing.repeats.append(self.repeat)
        self.out = Outcome(self.result)
        self.compiles = CompileLog(backend, self.repeat.compiles)
        self.steps = []

    def claim(self, pids, on_device: int = 0) -> None:
        """Count `pids` (a local server found by its port, a PID the user named: as this machine or NVML sees
        them) and their children as this run's own, for its CPU contention and, through the sink, for the
        device's process count; `on_device` of them use the accelerator. Replaces an earlier claim."""
        self.own_pids = tuple(dict.fromkeys(int(p) for p in pids))
        self.on_device = max(0, int(on_device))
        tell = getattr(self.sink, "own", None)
        if tell is not None:
            tell(self.own_pids, self.on_device)

    def watch(self, specs) -> None:
        """Have the run's telemetry watch these devices too (collector specs of a server's card the run found)."""
        tell = getattr(self.sink, "watch", None)
        if tell is not None and specs:
            tell(list(specs))

    @contextlib.contextmanager
    def phase(self, name: str):
        start = self.clock.now()
        try:
            with self.compiles.phase(name):
                yield
        finally:
            p = Phase(self.wl.name, name, start, self.clock.now(), self.repeat.index, self.variant)
            self.out.phases.append(p)
            self.sink.phase(p)

    def run(self) -> Outcome:
        r = self.result
        try:
            self._setup()
            self._warmup()
            self._measure()
            self._verify()
        except KeyboardInterrupt:
            r.status = self.repeat.status = "interrupted"
            r.error = self.repeat.error = "interrupted (Ctrl-C or SIGTERM)"
        except WorkloadSkipped as exc:
            r.status, r.error = "skipped", str(exc)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded as failed; the other workloads still run
            r.status = self.repeat.status = "failed"
            r.error = self.repeat.error = self._describe_error(exc)
        finally:
            with contextlib.suppress(Exception):  # the repeat's outcome is recorded; teardown frees only
                self.wl.teardown()
        return self.out

    def _describe_error(self, exc: Exception) -> str:
        if self.backend.is_oom(exc) or isinstance(exc, MemoryError):
            where = "host memory (MemoryError)" if isinstance(exc, MemoryError) else "device memory"
            flags = type(self.wl).memory_flags
            lower = ", ".join(flags[:-1]) + " or " + flags[-1] if len(flags) > 1 else flags[0]
            return f"out of {where} ({type(exc).__name__}: {str(exc)[:200]}); lower {lower}"
        return f"{type(exc).__name__}: {exc}"

    def _setup(self) -> None:
        with self.phase("setup"):
            self.backend.synchronize()
            t0 = time.perf_counter_ns()
            self.wl.setup()
            self.backend.synchronize()
            self.repeat.setup_s = (time.perf_counter_ns() - t0) / 1e9
        r = self.result
        model = getattr(self.wl, "model", None)
        first = next(model.parameters(), None) if hasattr(model, "parameters") else None
        r.model_device = str(first.device) if first is not None else None
        r.params = dict(self.wl.params())
        r.tokens_are, r.main_metric = self.wl.tokens_are, self.wl.main_metric
        r.flops_per_step = self.wl.flops_per_step()
        self.repeat.threads = self.backend.threads()

    def _warmup(self) -> None:
        n = self.m.warmup  # None: until steady (bench/measure/warmup.py), where one rank decides alone
        if n is None and getattr(self.wl, "world_size", 1) > 1:
            n = GROUP_STEPS
        with self.phase("warmup"):
            self.sink.progress("warmup", 0, n)
            done = until_steady(lambda: timed_step(self.wl, self.backend)[1], n,
                                lambda i: self.sink.progress("warmup", i, n),
                                compiles=lambda: (read_stats(self.backend) or {}).get("graphs"))
            times = done.times
            if times:
                self.repeat.first_step_s, self.repeat.warmup_s = times[0], sum(times)
            self.repeat.warmup_steps, self.repeat.warmup_steady = len(times), done.steady
        self.backend.reset_peak_memory()
        self.wl.start_measuring()

    def _more(self, n: int, started_ns: int) -> bool:
        if self.m.steps is not None:
            return n < self.m.steps
        elapsed = (time.perf_counter_ns() - started_ns) / 1e9
        return n < self.m.min_steps or elapsed < self.m.time_budget

    def _read_energy(self, meter):
        """Device sync, then the energy counter and the clock (None without a counter)."""
        self.backend.synchronize()
        joules = meter() if meter else None
        return joules, time.perf_counter_ns()

    def _measure(self) -> None:
        before = self.repeat.host_probe_s = host_speed_s()  # the machine's own speed (bench/measure/probe.py)
        meter = self.backend.energy_meter()
        e0, t0 = self._read_energy(meter)
        try:
            with self.phase("measure"):
                self._steps()
        finally:
            e1, t1 = self._read_energy(meter)
            if e0 is not None and e1 is not None:
                self.out.energy_counter = {"joules": e1 - e0, "window_s": (t1 - t0) / 1e9,
                                           "method": "energy counter read after a device sync"}
            self._after_steps()
        after = host_speed_s()  # and again after the steps: the machine's state can turn within a repeat
        self.repeat.host_probe_s = (before + after) / 2 if before and after else before or after

    def _steps(self) -> None:
        """The measured steps (a serving scenario replaces them with its session: bench/serve/scenario.py)."""
        rep, n = self.repeat, 0
        handicap = getattr(self.m, "handicap", 0.0) / 100.0
        self.sink.progress("measure", 0, self.m.steps)  # before the clocks: the view shows the phase began
        with self.timed_window() as w0:
            while self._more(n, w0):
                step, dt = timed_step(self.wl, self.backend, handicap)
                rep.step_times_s.append(dt)
                rep.step_samples.append(step.samples)
                rep.step_tokens.append(step.tokens)
                if step.flops is not None:
                    rep.step_flops = (rep.step_flops or []) + [step.flops]
                self._record(self.wl.record(step))
                n += 1
                self.sink.progress("measure", n, self.m.steps)

    @contextlib.contextmanager
    def timed_window(self, busy_only: bool = False):
        """Wall time, CPU time and other load around the measured part; yields its start (ns).
        busy_only: the CPU is judged over the steps' own time (a serving session waits for arrivals
        by design: idle, not cores taken by others)."""
        rep = self.repeat
        host0 = HostSnapshot.take(self.tree_root, self.own_pids)
        cpu0 = time.process_time()
        self.backend.synchronize()
        w0 = time.perf_counter_ns()
        try:
            yield w0
        finally:
            self.backend.synchronize()
            rep.wall_s = (time.perf_counter_ns() - w0) / 1e9
            rep.cpu_s = time.process_time() - cpu0
            busy = sum(rep.step_times_s) if busy_only else rep.wall_s
            rep.cpu_wall_ratio = rep.cpu_s / busy if busy > 0 else None
            ranks = int(os.environ.get("LOCAL_WORLD_SIZE") or 1)  # torchrun's ranks on this node
            rep.contention = contention(host0, HostSnapshot.take(self.tree_root, self.own_pids),
                                        needed_cores(rep.threads, ranks))

    def _record(self, values: dict) -> None:
        for name, value in values.items():
            column = self.repeat.series.setdefault(name, [])
            if isinstance(value, list | tuple):
                column.extend(value)
            else:
                column.append(value)

    def _after_steps(self) -> None:
        try:
            self.result.memory = Memory(**self.backend.memory_stats())
        except Exception as exc:  # noqa: BLE001 - the timing stands without the memory record; say why
            self.result.warn("memory_failed", f"memory not read: {type(exc).__name__}: {exc}")
        compiled = self.compiles.while_measuring()
        if compiled:
            self.result.warn("compiled_while_measuring", compiled)
        eager = self.compiles.ran_eager()
        if eager:
            self.result.warn("ran_eager", eager)
        try:
            self.repeat.series.update(self.wl.series())
        except Exception as exc:  # noqa: BLE001 - the timing stands; say what is missing
            self.result.warn("metrics_failed", f"per-step values not read: {type(exc).__name__}: {exc}")
        self._drop_non_finite()

    def _drop_non_finite(self) -> None:
        """A diverging loss or an overflow is NaN or infinite: null in the report, with a warning."""
        for name, column in self.repeat.series.items():
            bad = [i for i, v in enumerate(column) if v is not None and not math.isfinite(v)]
            for i in bad:
                column[i] = None
            if bad:
                self.result.warn("non_finite", f"{len(bad)} value(s) of {name} were NaN or infinite (a diverging "
                                               "loss or an overflow); they are null in the report")

    def _verify(self) -> None:
        with self.phase("verify"):
            try:
                fingerprint, figures = self.wl.verify()
            except Exception as exc:  # noqa: BLE001 - the measurement stands without it
                self.result.warn("metrics_failed", f"output fingerprint not computed: {type(exc).__name__}: {exc}")
                return
        if fingerprint is not None and all(math.isfinite(v) for v in fingerprint.values + fingerprint.margins):
            self.result.fingerprint = fingerprint
        elif fingerprint is not None:
            self.result.warn("non_finite", "the output fingerprint held NaN or infinite values: the model's "
                                           "outputs overflowed")
        self.repeat.figures.update(figures)
