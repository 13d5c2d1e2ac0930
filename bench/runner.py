"""The measurement loop: setup -> warm-up -> timed steps -> teardown, inside the collectors.

Every clock read is preceded by backend.synchronize(): timing an asynchronous device from the host
without a sync measures dispatch, not work.
"""

from __future__ import annotations

import contextlib
import time

from bench.errors import ConfigError, WorkloadSkipped
from bench.metrics import core_metrics, timing_warnings, warn


class PhaseLog:
    """Phase boundaries on the sampler's clock (CLOCK_MONOTONIC, seconds since the run's t0)."""

    def __init__(self, t0_ns: int):
        self.t0_ns = t0_ns
        self.phases: list[dict] = []

    def now(self) -> float:
        return (time.monotonic_ns() - self.t0_ns) / 1e9

    @contextlib.contextmanager
    def phase(self, workload: str, phase: str):
        start = self.now()
        try:
            yield
        finally:
            self.phases.append({"workload": workload, "phase": phase, "start_s": start, "end_s": self.now()})


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


def new_result(name: str) -> dict:
    return {"workload": name, "status": "ok", "error": None, "params": {}, "tokens_are": None, "main_metric": None,
            "timing": {"setup_s": None, "first_step_s": None, "warmup_s": None, "step_times_s": [],
                       "step_samples": [], "step_tokens": [], "repeats": []},
            "metrics": {}, "memory": {}, "flops_per_step": None, "warnings": []}


class Measurement:
    """Runs one workload and fills its result dict, whatever happens."""

    def __init__(self, workload, backend, cfg, phases: PhaseLog, progress):
        self.wl, self.backend, self.cfg = workload, backend, cfg
        self.phases, self.progress = phases, progress
        self.result = new_result(workload.name)
        self.steps = []

    def run(self) -> dict:
        try:
            self._setup()
            self._warmup()
            self._measure()
            self._finish()
        except KeyboardInterrupt:
            self.result["status"] = "interrupted"
            self.result["error"] = "interrupted by the user (Ctrl-C or SIGTERM)"
            self._finish()
        except WorkloadSkipped as exc:
            self.result.update(status="skipped", error=str(exc))
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded as failed; the other workloads still run
            self.result.update(status="failed", error=self._describe_error(exc))
        finally:
            self.progress.stop()
            with contextlib.suppress(Exception):
                self.wl.teardown()
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
            self.result["timing"]["setup_s"] = (time.perf_counter_ns() - t0) / 1e9
        model = getattr(self.wl, "model", None)
        first = next(model.parameters(), None) if hasattr(model, "parameters") else None
        self.result["model_device"] = str(first.device) if first is not None else None
        self.result["params"] = self.wl.params()
        self.result["tokens_are"] = self.wl.tokens_are
        self.result["main_metric"] = self.wl.main_metric
        self.result["flops_per_step"] = self.wl.flops_per_step()

    def _warmup(self) -> None:
        timing, n = self.result["timing"], self.cfg.warmup
        self.progress.start(self.wl.name, self.cfg.steps)
        with self.phases.phase(self.wl.name, "warmup"):
            times = []
            for i in range(n):
                _, dt = timed_step(self.wl, self.backend)
                times.append(dt)
                self.progress.update("warmup", i + 1, n)
            if times:
                timing["first_step_s"], timing["warmup_s"] = times[0], sum(times)
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
        timing = self.result["timing"]
        meter = self.backend.energy_meter() if hasattr(self.backend, "energy_meter") else None
        e0, t0 = self._read_energy(meter)
        try:
            self._measure_repeats(timing)
        finally:
            e1, t1 = self._read_energy(meter)
            if e0 is not None and e1 is not None:
                self.result["energy_counter"] = {"joules": e1 - e0, "window_s": (t1 - t0) / 1e9,
                                                 "method": "energy counter read after a device sync"}

    def _measure_repeats(self, timing) -> None:
        with self.phases.phase(self.wl.name, "measure"):
            for _ in range(self.cfg.repeats):
                n = 0
                cpu0 = time.process_time()
                self.backend.synchronize()
                w0 = time.perf_counter_ns()
                try:
                    while self._more(n, w0):
                        step, dt = timed_step(self.wl, self.backend)
                        self.steps.append(step)
                        timing["step_times_s"].append(dt)
                        timing["step_samples"].append(step.samples)
                        timing["step_tokens"].append(step.tokens)
                        if step.flops is not None:
                            timing.setdefault("step_flops", []).append(step.flops)
                        n += 1
                        self.progress.update("measure", len(self.steps), self._total())
                finally:
                    self.backend.synchronize()
                    wall = (time.perf_counter_ns() - w0) / 1e9
                    cpu = time.process_time() - cpu0
                    timing["repeats"].append({"steps": n, "wall_s": wall, "cpu_s": cpu,
                                              "cpu_wall_ratio": cpu / wall if wall > 0 else None})

    def _total(self) -> int | None:
        return self.cfg.steps * self.cfg.repeats if self.cfg.steps is not None else None

    def _finish(self) -> None:
        r, timing = self.result, self.result["timing"]
        with contextlib.suppress(Exception):
            r["memory"] = self.backend.memory_stats()
        if not timing["step_times_s"]:
            return
        peak, source = self.backend.peak_flops(self.cfg.precision)
        if self.cfg.peak_tflops:
            peak, source = self.cfg.peak_tflops * 1e12, "--peak-tflops given by the user"
        r["metrics"] = core_metrics(timing, r["flops_per_step"], peak, source)
        threads = self.backend.torch.get_num_threads() if self.backend.name == "cpu" else None
        r["warnings"].extend(timing_warnings(timing, r["metrics"], self.backend.name, threads))
        try:
            r["metrics"].update(self.wl.extra_metrics(self.steps, timing["step_times_s"]))
        except Exception as exc:  # noqa: BLE001 - the core metrics stand; say what is missing
            r["warnings"].append(warn("metrics_failed", f"workload metrics not computed: {type(exc).__name__}: {exc}"))


# ---- a whole run -------------------------------------------------------------------------------

def run_workloads(cfg, workload_classes: dict, backend, progress=None) -> dict:
    """Run each workload inside the sampler; return the report dict (also when interrupted)."""
    import uuid
    from datetime import datetime, timezone

    import bench
    from bench.environment import collect_environment
    from bench.schema import SCHEMA_VERSION
    from bench.telemetry.sampler import Sampler

    progress = progress or NullProgress()
    t0_ns = time.monotonic_ns()
    phases = PhaseLog(t0_ns)
    report = {"schema_version": SCHEMA_VERSION, "bench_version": bench.__version__,
              "run_id": uuid.uuid4().hex, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "label": cfg.label, "origin": "measured", "status": "ok",
              "environment": collect_environment(backend), "config": cfg.to_dict(), "results": []}
    sampler = Sampler(backend.collector_specs(), cfg.sample_hz, t0_ns).start() if cfg.sample_hz else None
    try:
        for cls in workload_classes.values():
            result = Measurement(cls(cfg, backend), backend, cfg, phases, progress).run()
            report["results"].append(result)
            if result["status"] == "interrupted":
                report["status"] = "interrupted"
                break
    except KeyboardInterrupt:
        report["status"] = "interrupted"
    finally:
        status, samples = sampler.stop() if sampler else ({}, [])
        report["telemetry"] = {"sample_hz": cfg.sample_hz, "collectors": status,
                               "phases": phases.phases, "samples": samples}
    attach_telemetry(report, backend)
    if report["status"] == "ok" and any(r["status"] == "failed" for r in report["results"]):
        report["status"] = "failed"
    return report


def attach_telemetry(report: dict, backend) -> None:
    """Per-phase telemetry summaries, energy and telemetry-based validity warnings on each result."""
    from bench.validity import telemetry_checks

    tel = report["telemetry"]
    label_phases(tel["samples"], tel["phases"])
    for r in report["results"]:
        telemetry_checks(r, tel, backend)


def label_phases(samples: list[dict], phases: list[dict]) -> None:
    """Stamp each sample with the workload and phase it fell in (None between phases)."""
    spans = sorted(phases, key=lambda p: p["start_s"])
    i = 0
    for s in sorted(samples, key=lambda x: x["t"]):
        while i < len(spans) and spans[i]["end_s"] < s["t"]:
            i += 1
        inside = i < len(spans) and spans[i]["start_s"] <= s["t"] <= spans[i]["end_s"]
        s["workload"], s["phase"] = (spans[i]["workload"], spans[i]["phase"]) if inside else (None, None)
