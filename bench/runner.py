"""The measurement loop: setup -> warm-up -> timed steps -> teardown, inside the collectors.

Every clock read is preceded by backend.synchronize(): timing an asynchronous device from the host
without a sync measures dispatch, not work.
"""

from __future__ import annotations

import contextlib
import time

from bench.core.errors import ConfigError, WorkloadSkipped
from bench.model.derive import core_metrics, timing_warnings
from bench.model.history import telemetry_sources
from bench.model.report import (SCHEMA_VERSION, CollectorStatus, Environment, Memory, Phase, Repeat, Report, Result,
                                Telemetry, TelemetrySource)


class PhaseLog:
    """Phase boundaries on the sampler's clock (CLOCK_MONOTONIC, seconds since the run's t0)."""

    def __init__(self, t0_ns: int):
        self.t0_ns = t0_ns
        self.phases: list[Phase] = []

    def now(self) -> float:
        return (time.monotonic_ns() - self.t0_ns) / 1e9

    @contextlib.contextmanager
    def phase(self, workload: str, phase: str):
        start = self.now()
        try:
            yield
        finally:
            self.phases.append(Phase(workload, phase, start, self.now()))


class NullProgress:
    def start(self, workload: str, total: int | None) -> None: ...
    def update(self, phase: str, done: int, total: int | None) -> None: ...
    def stop(self) -> None: ...


def timed_step(workload, backend):
    """One step between two synchronized clock reads: (StepResult, seconds)."""
    backend.synchronize()
    t0 = time.perf_counter_ns()
    result = workload.step()
    backend.synchronize()
    t1 = time.perf_counter_ns()
    return result, (t1 - t0) / 1e9


class Measurement:
    """Runs one workload and fills its Result, whatever happens."""

    def __init__(self, workload, backend, cfg, phases: PhaseLog, progress):
        self.wl, self.backend, self.cfg = workload, backend, cfg
        self.phases, self.progress = phases, progress
        self.result = Result(workload=workload.name, status="ok")
        self.setup = Repeat(index=0)
        self.steps = []
        self.energy_counter = None

    def run(self) -> Result:
        try:
            self._setup()
            self._warmup()
            self._measure()
            self._finish()
        except KeyboardInterrupt:
            self.result.status = "interrupted"
            self.result.error = "interrupted by the user (Ctrl-C or SIGTERM)"
            self._finish()
        except WorkloadSkipped as exc:
            self.result.status, self.result.error = "skipped", str(exc)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded as failed; the other workloads still run
            self.result.status, self.result.error = "failed", self._describe_error(exc)
        finally:
            self.progress.stop()
            with contextlib.suppress(Exception):
                self.wl.teardown()
        if not self.result.timing.repeats:
            self.result.timing.repeats.append(self.setup)
        return self.result

    def _describe_error(self, exc: Exception) -> str:
        if self.backend.is_oom(exc):
            return f"out of memory at batch size {self.cfg.batch_size} ({type(exc).__name__}); try a smaller --batch-size"
        return f"{type(exc).__name__}: {exc}"

    def _setup(self) -> None:
        with self.phases.phase(self.wl.name, "setup"):
            self.backend.synchronize()
            t0 = time.perf_counter_ns()
            self.wl.setup()
            self.backend.synchronize()
            self.setup.setup_s = (time.perf_counter_ns() - t0) / 1e9
        r = self.result
        model = getattr(self.wl, "model", None)
        first = next(model.parameters(), None) if hasattr(model, "parameters") else None
        r.model_device = str(first.device) if first is not None else None
        r.params = dict(self.wl.params())
        r.tokens_are, r.main_metric = self.wl.tokens_are, self.wl.main_metric
        r.flops_per_step = self.wl.flops_per_step()

    def _warmup(self) -> None:
        n = self.cfg.warmup
        self.progress.start(self.wl.name, self.cfg.steps)
        with self.phases.phase(self.wl.name, "warmup"):
            times = []
            for i in range(n):
                _, dt = timed_step(self.wl, self.backend)
                times.append(dt)
                self.progress.update("warmup", i + 1, n)
            if times:
                self.setup.first_step_s, self.setup.warmup_s = times[0], sum(times)
        self.backend.reset_peak_memory()

    def _more(self, n: int, started_ns: int) -> bool:
        if self.cfg.steps is not None:
            return n < self.cfg.steps
        elapsed = (time.perf_counter_ns() - started_ns) / 1e9
        return n < self.cfg.min_steps or elapsed < self.cfg.time_budget_s

    def _read_energy(self, meter):
        """Device sync, then the energy counter and the clock (None without a counter)."""
        self.backend.synchronize()
        joules = meter() if meter else None
        return joules, time.perf_counter_ns()

    def _measure(self) -> None:
        meter = self.backend.energy_meter() if hasattr(self.backend, "energy_meter") else None
        e0, t0 = self._read_energy(meter)
        try:
            self._measure_repeats()
        finally:
            e1, t1 = self._read_energy(meter)
            if e0 is not None and e1 is not None:
                self.energy_counter = {"joules": e1 - e0, "window_s": (t1 - t0) / 1e9,
                                       "method": "energy counter read after a device sync"}

    def _measure_repeats(self) -> None:
        with self.phases.phase(self.wl.name, "measure"):
            for i in range(self.cfg.repeats):
                rep = self.setup if i == 0 else Repeat(index=i)
                self.result.timing.repeats.append(rep)
                self._measure_one(rep)

    def _measure_one(self, rep: Repeat) -> None:
        n = 0
        cpu0 = time.process_time()
        self.backend.synchronize()
        w0 = time.perf_counter_ns()
        try:
            while self._more(n, w0):
                step, dt = timed_step(self.wl, self.backend)
                self.steps.append(step)
                rep.step_times_s.append(dt)
                rep.step_samples.append(step.samples)
                rep.step_tokens.append(step.tokens)
                if step.flops is not None:
                    rep.step_flops = (rep.step_flops or []) + [step.flops]
                n += 1
                self.progress.update("measure", len(self.steps), self._total())
        finally:
            self.backend.synchronize()
            rep.wall_s = (time.perf_counter_ns() - w0) / 1e9
            rep.cpu_s = time.process_time() - cpu0
            rep.cpu_wall_ratio = rep.cpu_s / rep.wall_s if rep.wall_s > 0 else None

    def _total(self) -> int | None:
        return self.cfg.steps * self.cfg.repeats if self.cfg.steps is not None else None

    def _finish(self) -> None:
        r = self.result
        with contextlib.suppress(Exception):
            r.memory = Memory(**self.backend.memory_stats())
        if not r.timing.step_times_s:
            return
        peak, source = self.backend.peak_flops(self.cfg.precision)
        if self.cfg.peak_tflops:
            peak, source = self.cfg.peak_tflops * 1e12, "--peak-tflops given by the user"
        r.metrics = core_metrics(r.timing, r.flops_per_step, peak, source)
        threads = self.backend.torch.get_num_threads() if self.backend.name == "cpu" else None
        for rep in r.timing.repeats:
            rep.threads = threads
        r.warnings.extend(timing_warnings(r.timing, r.metrics, threads))
        try:
            r.workload_metrics.update(self.wl.extra_metrics(self.steps, r.timing.step_times_s))
            r.series.update(self.wl.series())
        except Exception as exc:  # noqa: BLE001 - the core metrics stand; say what is missing
            r.warn("metrics_failed", f"workload metrics not computed: {type(exc).__name__}: {exc}")


# ---- a whole run -------------------------------------------------------------------------------

def run_workloads(cfg, workload_classes: dict, backend, progress=None) -> Report:
    """Run each workload inside the sampler; return the report (also when interrupted)."""
    import uuid
    from datetime import datetime, timezone

    import bench
    from bench.environment import collect_environment
    from bench.telemetry.sampler import Sampler

    progress = progress or NullProgress()
    t0_ns = time.monotonic_ns()
    phases = PhaseLog(t0_ns)
    report = Report(schema_version=SCHEMA_VERSION, bench_version=bench.__version__, run_id=uuid.uuid4().hex,
                    created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), status="ok",
                    label=cfg.label, environment=Environment(**collect_environment(backend)),
                    config=cfg.to_dict())
    counters = {}
    sampler = Sampler(backend.collector_specs(), cfg.sample_hz, t0_ns).start() if cfg.sample_hz else None
    try:
        for cls in workload_classes.values():
            m = Measurement(cls(cfg, backend), backend, cfg, phases, progress)
            result = m.run()
            counters[result.workload] = m.energy_counter
            report.results.append(result)
            if result.status == "interrupted":
                report.status = "interrupted"
                break
    except KeyboardInterrupt:
        report.status = "interrupted"
    finally:
        status, samples = sampler.stop() if sampler else ({}, [])
        report.telemetry = Telemetry(sample_hz=cfg.sample_hz or 0,
                                     collectors={k: CollectorStatus(**v) for k, v in status.items()},
                                     sources={k: TelemetrySource(**v) for k, v in telemetry_sources(samples).items()},
                                     phases=phases.phases, samples=samples)
    attach_telemetry(report, backend, counters)
    if report.status == "ok" and any(r.status == "failed" for r in report.results):
        report.status = "failed"
    return report


def attach_telemetry(report: Report, backend, counters: dict | None = None) -> None:
    """Per-phase telemetry summaries, energy and telemetry-based validity warnings on each result."""
    from bench.validity import telemetry_checks

    tel = report.telemetry
    label_phases(tel.samples, tel.phases)
    for r in report.results:
        telemetry_checks(r, tel, backend, (counters or {}).get(r.workload))


def label_phases(samples: list[dict], phases: list[Phase]) -> None:
    """Stamp each sample with the workload and phase it fell in (None between phases)."""
    spans = sorted(phases, key=lambda p: p.start_s)
    i = 0
    for s in sorted(samples, key=lambda x: x["t"]):
        while i < len(spans) and spans[i].end_s < s["t"]:
            i += 1
        inside = i < len(spans) and spans[i].start_s <= s["t"] <= spans[i].end_s
        s["workload"], s["phase"] = (spans[i].workload, spans[i].phase) if inside else (None, None)
