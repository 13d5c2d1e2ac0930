"""One repeat of one workload, in a process of its own (`python -m bench.launch.worker JOB.json`),
or in the launcher's process for --in-process. It builds the backend and the workload anew, runs
the measurement and streams events (launch/events.py) to the parent."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from datetime import timedelta

from bench.core.errors import BenchError
from bench.core.proc import die_with_parent
from bench.model.fields import null_non_finite, plain
from bench.devices import registry as devices
from bench.launch import catalog
from bench.launch.config import RunConfig
from bench.launch.events import EventWriter
from bench.measure.environment import collect_environment
from bench.measure.runner import Clock
from bench.measure.signals import deferred, interrupt_on_sigterm
from bench.model.derive import core_metrics
from bench.model.report import Result

PROGRESS_EVERY_S = 0.1


class Sink:
    """Phases and progress as events (progress at most every PROGRESS_EVERY_S, and the last step)."""

    def __init__(self, emit, rank: int):
        self.emit, self.rank, self.last = emit, rank, 0.0

    def phase(self, phase) -> None:
        self.emit("phase", rank=self.rank, phase=plain(phase))

    def own(self, pids, on_device: int) -> None:
        """Processes outside the run's tree that are its own work (a local server), for the launcher's
        collectors: `on_device` of them use the accelerator (bench/devices/owned.py)."""
        self.emit("own", rank=self.rank, pids=list(pids), on_device=int(on_device))

    def watch(self, specs) -> None:
        """Collector specs of a device the repeat's work uses outside this process (a server's card), for the
        launcher's sampler."""
        self.emit("watch", rank=self.rank, watch=list(specs))

    def progress(self, phase: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_S or done == total or done == 0:
            self.last = now
            self.emit("progress", rank=self.rank, phase=phase, done=done, total=total, t=now)  # the view's pace


def run_job(job: dict, emit) -> tuple[dict, object]:
    """Run one repeat; every outcome, failure included, ends in a `result` event. Returns that
    event's data and the backend (None when the device could not be used)."""
    rank, local, world = job.get("rank", 0), job.get("local_rank", 0), job.get("world_size", 1)
    cfg = RunConfig.from_json(job["config"])
    if job.get("threads"):  # chosen by the launcher from what was free (bench/measure/threads.py)
        cfg = cfg.replace(device=cfg.device.replace(threads=job["threads"]))
    name, index = job["workload"], job["repeat"]
    variant = job.get("variant") or {}
    options = cfg.options_of(name).replace(**{k: tuple(v) if isinstance(v, list) else v for k, v in variant.items()})
    try:  # a worker that only sends work to a server takes no device: it watches the server's (devices/watching.py)
        backend = _backend(cfg, local, rank, world, job) if catalog.scenario(name).needs_device(options) \
            else devices.make_watching(cfg.device.device, cfg.device)
    except (BenchError, ImportError, RuntimeError) as exc:
        failed = Result(workload=name, status="failed", error=f"device not usable: {exc}")
        payload = {"rank": rank, "result": plain(failed), "energy_counter": None, "phases": []}
        emit("result", **payload)
        return payload, None
    emit("started", rank=rank, local_rank=local, pid=os.getpid(), device=backend.describe(),
         watch=[s for s in backend.collector_specs() if s["name"] != "host"],
         environment=plain(collect_environment(backend)))
    wl = catalog.load(name)(cfg.common, options, backend, rank, world)
    measurement = catalog.scenario(name).measurement(job, cfg, options)
    out = measurement(wl, backend, cfg.measure, index, Clock(job["t0_ns"]), Sink(emit, rank),
                   tree_root=job.get("tree_root"), variant=variant).run()
    peak, source = _peak(backend, cfg)
    out.result.metrics = core_metrics(out.result.timing, out.result.flops_per_step, peak, source)
    bad = null_non_finite(out.result)  # JSON has no NaN or infinity: the result must still reach the parent
    if bad:
        out.result.warn("non_finite", f"{len(bad)} value(s) were NaN or infinite and are null: {', '.join(bad[:3])}")
    payload = {"rank": rank, "result": plain(out.result), "energy_counter": out.energy_counter,
               "phases": [plain(p) for p in out.phases]}
    with deferred():
        emit("result", **payload)
    return payload, backend


def _backend(cfg: RunConfig, local: int, rank: int, world: int, job: dict):
    backend = devices.make_backend(cfg.device.device, cfg.device, cfg.device_own, local,
                                   job.get("local_world_size", 1))
    backend.rank, backend.world_size = rank, world
    if world > 1:
        _init_process_group(cfg, backend)
    return backend


def _init_process_group(cfg: RunConfig, backend) -> None:
    import torch.distributed as dist

    spec = devices.spec(cfg.device.device)
    backend.init_distributed()
    dist.init_process_group(spec.dist_backend, timeout=timedelta(seconds=cfg.launch.dist_timeout))


def _peak(backend, cfg: RunConfig):
    if cfg.device.peak_tflops:
        return cfg.device.peak_tflops * 1e12, "--peak-tflops given by the user"
    try:
        return backend.peak_flops(cfg.common.precision)
    except Exception as exc:  # noqa: BLE001 - MFU is then null with the reason
        return None, f"peak unknown ({type(exc).__name__}: {exc})"



def main(argv: list[str]) -> int:
    with open(argv[0], encoding="utf-8") as fh:
        job = json.load(fh)
    if "RANK" in os.environ:  # started by torchrun
        job.update(rank=int(os.environ["RANK"]), local_rank=int(os.environ["LOCAL_RANK"]),
                   world_size=int(os.environ["WORLD_SIZE"]),
                   local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"])))
        job["events"] = job["events"].replace("{rank}", str(job["rank"]))
    elif job.get("parent_pid"):
        die_with_parent(job["parent_pid"])
    interrupt_on_sigterm()
    try:
        writer = EventWriter(job["events"])
    except OSError as exc:
        print(f"OSError: the worker cannot create its event file ({exc.strerror or exc})", file=sys.stderr)
        return 3
    try:
        payload, backend = run_job(job, writer.emit)
        if job.get("world_size", 1) > 1:
            _distributed_tail(job, payload, backend, writer.emit)
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # the events could not be written (a full disk): say so in one line
        print(f"OSError: the worker could not write its results ({exc.strerror or exc})", file=sys.stderr)
        return 3
    finally:
        with contextlib.suppress(OSError, UnboundLocalError):
            writer.close()
    return 0


def _distributed_tail(job: dict, payload: dict, backend, emit) -> None:
    """A failed rank leaves at once, without a collective: torchrun then stops the group instead of
    the others waiting for it. Otherwise rank 0 gathers every rank's result (multi-node runs reach
    node 0 this way) and the group is closed."""
    import torch.distributed as dist

    from bench.launch.collective import gather_json

    if backend is None or payload["result"]["status"] != "ok" or not dist.is_initialized():
        sys.stdout.flush()
        os._exit(1)
    try:
        gathered = gather_json(payload, backend.device)
    except RuntimeError as exc:  # torch's DistBackendError, a timeout: this node must say it, not only node 0
        emit("gather_failed", rank=job["rank"], error=f"{type(exc).__name__}: {str(exc)[:400]}")
        sys.stdout.flush()
        os._exit(1)
    if job["rank"] == 0:
        emit("gathered", results=gathered)
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
