"""The Backend interface: what a workload and the runner need from a device."""

from __future__ import annotations

import contextlib
import os
import time

from bench.core.errors import DeviceUnavailable


def import_torch():
    """torch, or DeviceUnavailable saying why not. torch >= 2.5 loads out-of-tree device extensions at
    `import torch` (the "torch.backends" entry points) and turns any error of theirs into RuntimeError
    "Failed to load the backend extension"; the Gaudi bridge registers one (1.19 autoload/__init__.py),
    active with PT_HPU_AUTOLOAD=1, or in eager mode with it unset, and a bridge built for stock PyTorch
    fails an assert there in lazy mode."""
    try:
        import torch
    except RuntimeError as exc:
        if "backend extension" not in str(exc):
            raise
        cause = exc.__cause__
        why = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
        raise DeviceUnavailable(f"import torch failed: it loads device extensions at import, and one refused ({why}). "
                                "The Gaudi bridge is loaded so with PT_HPU_AUTOLOAD=1 (or in eager mode with it "
                                "unset); a bridge built for stock PyTorch runs eager only: set PT_HPU_LAZY_MODE=0 "
                                "(or --hpu-mode eager), or turn the loading off with PT_HPU_AUTOLOAD=0 or "
                                "TORCH_DEVICE_BACKEND_AUTOLOAD=0") from None
    return torch


class Backend:
    """What a workload and the runner need from a device. Subclasses fill in the device specifics."""

    name = "base"
    collectors: tuple[str, ...] = ("host",)
    static_shapes = False  # True where every new input shape costs a graph compile (Gaudi)

    def __init__(self, options, own=None, local_rank: int = 0, local_world: int = 1):
        self.options, self.own = options, own  # DeviceOptions, and the device's own group (or None)
        self.local_rank, self.local_world = local_rank, local_world
        self.torch = None

    # -- lifecycle -------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Import torch (and the vendor stack), pick the device, apply thread settings."""
        torch = import_torch()
        self.torch = torch
        if self.options.threads:
            torch.set_num_threads(self.options.threads)

    @property
    def device(self):
        return self.torch.device(self.device_str())

    def device_str(self) -> str:
        return "cpu"

    # -- timing ----------------------------------------------------------------------------------
    def synchronize(self) -> None:
        """Block until all queued device work is done. Called before every clock read."""

    def after_backward(self) -> None:
        """Hook a training step calls right after loss.backward()."""

    def after_optimizer_step(self) -> None:
        """Hook a training step calls right after optimizer.step()."""

    # -- numerics --------------------------------------------------------------------------------
    def autocast(self, precision: str):
        if precision == "fp32":
            return contextlib.nullcontext()
        dtype = {"bf16": self.torch.bfloat16, "fp16": self.torch.float16}[precision]
        return self.torch.autocast(device_type=self.torch_device_type, dtype=dtype)

    torch_device_type = "cpu"

    def grad_scaler(self, precision: str):
        """A GradScaler where the precision needs one (fp16 on cuda), else None."""
        return None

    @property
    def compiling(self) -> bool:
        return bool(self.options.compile)

    def compile_options(self) -> dict:
        return {}

    def wrap_train(self, model):
        if self.compiling:
            return self.torch.compile(model, **self.compile_options())
        return model

    def wrap_inference(self, model):
        """Compile the forward in place, so that model.generate() runs the compiled forward too
        (a compiled wrapper's .generate would call the eager one). Shapes grow while decoding:
        dynamic=True avoids a recompile per length."""
        if self.compiling:
            model.forward = self.torch.compile(model.forward, dynamic=True, **self.compile_options())
        return model

    def capture_graphs(self, module):
        """`module` whose forward is captured as a device graph per input shapes and replayed (Gaudi's HPU graphs),
        where the device does so and was asked to; None elsewhere (the module runs as it is)."""
        return None

    def compile_stats(self) -> dict | None:
        """Graph compiles of this process so far, where the device's stack counts them:
        {"graphs": int | None, "seconds": float | None, "source": str}, cumulative since the process
        started. None: nothing here counts compiles (eager CPU). The runner and the serving scenario read
        it around each phase; the difference is that phase's compiles (report: Repeat.compiles).
        Here: torch.compile's graphs, as dynamo counts them."""
        return dynamo_compiles() if self.compiling else None

    # -- memory ----------------------------------------------------------------------------------
    def reset_peak_memory(self) -> None:
        """Start a fresh peak-memory window (where the device allows it)."""

    def memory_stats(self) -> dict:
        return {"device_peak_bytes": None, "device_peak_reason": "not measured on this device"}

    def is_oom(self, exc: BaseException) -> bool:
        text = str(exc).lower()
        return "out of memory" in text or "can't allocate memory" in text

    # -- metadata --------------------------------------------------------------------------------
    def peak_flops(self, precision: str) -> tuple[float | None, str]:
        """(peak FLOP/s, where it came from) or (None, why unknown)."""
        return None, "no peak known for this device"

    def describe(self) -> dict:
        return {"backend": self.name, "device": self.device_str()}

    def arithmetic(self) -> dict | None:
        """What the precision's name does not say (report: Arithmetic fields): the autocast op lists in effect
        and how fp32 matmuls run. None where this device does not record them."""
        return None

    def collector_specs(self) -> list[dict]:
        return [{"name": "host", "pid": os.getpid()}]

    world_size = 1
    rank = 0

    def init_distributed(self) -> None:
        """Whatever must happen before torch.distributed.init_process_group (Gaudi registers hccl)."""

    def ddp_device_ids(self) -> list[int] | None:
        """device_ids for DistributedDataParallel (None: the module's own device)."""
        return None

    def threads(self) -> int | None:
        """The CPU threads the measured work should keep busy (None where the host only dispatches)."""
        return None

    def time_allreduce(self, numel: int, repeats: int = 5) -> dict:
        """Median time of a standalone all-reduce of a gradient-sized fp32 buffer, synced around it.
        DDP overlaps this communication with backward, so it bounds, not measures, the step's share."""
        import statistics

        import torch.distributed as dist

        buf = self.torch.zeros(numel, device=self.device)
        times = []
        for _ in range(repeats + 1):
            self.synchronize()
            t0 = time.perf_counter_ns()
            dist.all_reduce(buf)
            self.synchronize()
            times.append((time.perf_counter_ns() - t0) / 1e9)
        return {"allreduce_median_s": statistics.median(times[1:]), "bytes": numel * 4,
                "what": "standalone all-reduce of a gradient-sized fp32 buffer; DDP overlaps it with backward"}

    def energy_meter(self):
        """A function returning the device's cumulative energy counter in joules, read in this
        process right after a sync (None where the device has no counter)."""
        return None


def dynamo_compiles() -> dict:
    """torch.compile's cumulative counters: counters["stats"]["unique_graphs"] (one per graph dynamo hands
    to the compiler, recompiles included), the time of dynamo's compile entry point, recorded under
    "_compile.compile_inner" (torch 2.13) or "_compile.<locals>.compile_inner" (torch 2.1) in
    compilation_time_metrics, and the frames that hit the recompile limit (dynamo_eager_frames). Dynamo
    not imported yet: nothing compiled yet."""
    import sys

    utils = sys.modules.get("torch._dynamo.utils")
    source = "torch._dynamo counters (unique_graphs, compile time)"
    if utils is None:
        return {"graphs": 0, "seconds": 0.0, "eager_frames": 0, "source": source}
    times = [sum(v) for k, v in getattr(utils, "compilation_time_metrics", {}).items()
             if k.startswith("_compile") and k.endswith("compile_inner")]
    return {"graphs": int(utils.counters["stats"]["unique_graphs"]), "seconds": sum(times) if times else None,
            "eager_frames": dynamo_eager_frames(), "source": source}


# How dynamo names a frame it gave up on at its recompile limit, in counters["unimplemented"]: torch 2.13
# convert_frame.py raises Unsupported with gb_type "Dynamo recompile limit exceeded" (exc.py counts every
# Unsupported there, add_to_stats) and runs the frame eager from then on (FrameAction.RUN_ONLY) with one log
# warning, unless fail_on_recompile_limit_hit; torch 2.1-2.4 said "cache_size_limit reached".
EAGER_MARKS = ("recompile limit exceeded", "recompile_limit", "cache_size_limit", "cache limit exceeded")


def dynamo_eager_frames() -> int:
    """Frames dynamo stopped compiling at torch._dynamo.config.recompile_limit (8) or its accumulated limit,
    so far in this process: each runs eager from then on, silently but for one log line."""
    import sys

    utils = sys.modules.get("torch._dynamo.utils")
    if utils is None:
        return 0
    return sum(int(n) for k, n in utils.counters["unimplemented"].items()
               if any(m in str(k).lower() for m in EAGER_MARKS))


def _counter(collector_cls, device: dict):
    """A function reading the device's energy counter in joules, or None where there is none. A
    collector that cannot open (no library, no handle) means no counter, never a failed workload."""
    from bench.devices.collectors import CollectorUnavailable

    collector = collector_cls({"devices": [device]})
    try:
        collector.open()
    except CollectorUnavailable:
        return None
    except Exception:  # noqa: BLE001 - a vendor library's own error types: still no counter
        return None
    index = next(iter(collector.handles))
    return lambda: collector.energy_j(index)
