"""Backends: cpu / cuda / hpu. Device, synchronize, autocast, memory, peaks, describe.

torch and habana_frameworks are imported lazily: `bench --help` and `bench compare` never load them.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import resource
import sys
import time

from bench.errors import ConfigError, DeviceUnavailable
from bench.peaks import cpu_peak, cuda_peak, hpu_peak


class Backend:
    """What a workload and the runner need from a device. Subclasses fill in the device specifics."""

    name = "base"
    collectors: tuple[str, ...] = ("host",)
    static_shapes = False  # True where every new input shape costs a graph compile (Gaudi)

    def __init__(self, cfg, local_rank: int = 0):
        self.cfg = cfg
        self.local_rank = local_rank
        self.torch = None

    # -- lifecycle -------------------------------------------------------------------------------
    @classmethod
    def probe(cls) -> str | None:
        """None when usable here, else what is missing (cheap: no heavy import where avoidable)."""
        return None

    def prepare(self) -> None:
        """Import torch (and the vendor stack), pick the device, apply thread settings."""
        import torch

        self.torch = torch
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)

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

    def wrap_train(self, model):
        if self.cfg.compile:
            return self.torch.compile(model)
        return model

    def wrap_inference(self, model):
        return self.wrap_train(model)

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

    def collector_specs(self) -> list[dict]:
        return [{"name": "host", "pid": os.getpid()}]

    world_size = 1
    rank = 0

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


def _counter(collector_cls, index: int):
    from bench.telemetry import CollectorUnavailable

    collector = collector_cls({"indices": [index]})
    try:
        collector.open()
    except CollectorUnavailable:
        return None
    return lambda: collector.energy_j(index)


class CpuBackend(Backend):
    name = "cpu"

    def prepare(self) -> None:
        super().prepare()
        if not self.cfg.threads:
            # Explicit, so that the report says how many threads did the work.
            self.torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                       else os.cpu_count() or 1)

    def memory_stats(self) -> dict:
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"device_peak_bytes": None,
                "device_peak_reason": "cpu has no device memory; see host_peak_rss_bytes",
                "process_max_rss_bytes": peak_kib * 1024}

    def peak_flops(self, precision: str):
        return cpu_peak(self.torch.get_num_threads(), precision)

    def energy_meter(self):
        from bench.telemetry.host import Rapl

        rapl = Rapl()
        return rapl.read_j if rapl.domains else None

    def describe(self) -> dict:
        return {"backend": "cpu", "device": "cpu", "device_name": _cpu_model(),
                "threads": self.torch.get_num_threads(),
                "interop_threads": self.torch.get_num_interop_threads()}


class CudaBackend(Backend):
    name = "cuda"
    torch_device_type = "cuda"
    collectors = ("host", "nvml")

    @classmethod
    def probe(cls) -> str | None:
        import torch

        if not torch.cuda.is_available():
            built = torch.version.cuda or "none (this torch is a CPU build)"
            return (f"torch.cuda.is_available() is False (torch {torch.__version__}, CUDA build: {built}). "
                    "Install a CUDA build of torch and the NVIDIA driver, or use --device cpu.")
        return None

    def prepare(self) -> None:
        super().prepare()
        reason = self.probe()
        if reason:
            raise DeviceUnavailable(f"--device cuda: {reason}")
        count = self.torch.cuda.device_count()
        if self.local_rank >= count:
            raise DeviceUnavailable(f"--device cuda: rank {self.local_rank} needs GPU {self.local_rank}, "
                                    f"only {count} visible")
        self.torch.cuda.set_device(self.local_rank)

    def device_str(self) -> str:
        return f"cuda:{self.local_rank}"

    def synchronize(self) -> None:
        self.torch.cuda.synchronize()

    def grad_scaler(self, precision: str):
        if precision == "fp16":
            return self.torch.amp.GradScaler("cuda")
        return None

    def reset_peak_memory(self) -> None:
        self.torch.cuda.reset_peak_memory_stats()

    def memory_stats(self) -> dict:
        cuda = self.torch.cuda
        return {"device_peak_bytes": cuda.max_memory_allocated(),
                "device_peak_reserved_bytes": cuda.max_memory_reserved(),
                "device_total_bytes": cuda.get_device_properties(self.local_rank).total_memory}

    def is_oom(self, exc: BaseException) -> bool:
        return isinstance(exc, self.torch.cuda.OutOfMemoryError) or super().is_oom(exc)

    def peak_flops(self, precision: str):
        tf32 = bool(self.torch.backends.cuda.matmul.allow_tf32)
        return cuda_peak(self.torch.cuda.get_device_name(self.local_rank), precision, tf32)

    def describe(self) -> dict:
        cuda = self.torch.cuda
        props = cuda.get_device_properties(self.local_rank)
        return {"backend": "cuda", "device": self.device_str(), "device_name": props.name,
                "capability": f"{props.major}.{props.minor}", "device_count": cuda.device_count(),
                "total_memory_bytes": props.total_memory, "cuda_runtime": self.torch.version.cuda,
                "cudnn": self.torch.backends.cudnn.version(), "driver": _nvidia_driver(),
                "tf32_matmul": bool(self.torch.backends.cuda.matmul.allow_tf32),
                "tf32_cudnn": bool(self.torch.backends.cudnn.allow_tf32),
                "compile": bool(self.cfg.compile)}

    def collector_specs(self) -> list[dict]:
        return super().collector_specs() + [{"name": "nvml", "indices": [self._physical_index()]}]

    def energy_meter(self):
        from bench.telemetry.nvml import NvmlCollector

        return _counter(NvmlCollector, self._physical_index())

    def _physical_index(self) -> int:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible:
            ids = [v.strip() for v in visible.split(",") if v.strip()]
            if self.local_rank < len(ids) and ids[self.local_rank].isdigit():
                return int(ids[self.local_rank])
        return self.local_rank


class HpuBackend(Backend):
    """Intel Gaudi through habana_frameworks (lazy, eager or torch.compile mode)."""

    name = "hpu"
    torch_device_type = "hpu"
    collectors = ("host", "habana")
    static_shapes = True

    def __init__(self, cfg, local_rank: int = 0):
        super().__init__(cfg, local_rank)
        self.mode = cfg.hpu_mode or "lazy"
        self.htcore = None
        self.hthpu = None

    @classmethod
    def probe(cls) -> str | None:
        if importlib.util.find_spec("habana_frameworks") is None:
            return ("habana_frameworks is not importable. Install the Intel Gaudi software stack "
                    "(its PyTorch build and habana_frameworks), or use --device cpu.")
        return None

    def prepare(self) -> None:
        reason = self.probe()
        if reason:
            raise DeviceUnavailable(f"--device hpu: {reason}")
        wanted = "1" if self.mode == "lazy" else "0"
        if "habana_frameworks.torch.core" in sys.modules and os.environ.get("PT_HPU_LAZY_MODE") != wanted:
            raise ConfigError(f"--hpu-mode {self.mode}: habana_frameworks was already imported with "
                              f"PT_HPU_LAZY_MODE={os.environ.get('PT_HPU_LAZY_MODE')}; run bench in a new process")
        # Must be set before habana_frameworks is imported; its default changed across releases.
        os.environ["PT_HPU_LAZY_MODE"] = wanted
        super().prepare()
        self.htcore = importlib.import_module("habana_frameworks.torch.core")
        self.hthpu = importlib.import_module("habana_frameworks.torch.hpu")
        count = self.hthpu.device_count()
        if count < 1:
            raise DeviceUnavailable("--device hpu: habana_frameworks found no Gaudi device "
                                    "(hthpu.device_count() == 0); check the driver with hl-smi")
        if self.local_rank >= count:
            raise DeviceUnavailable(f"--device hpu: rank {self.local_rank} needs HPU {self.local_rank}, "
                                    f"only {count} present")

    def device_str(self) -> str:
        return "hpu"

    @property
    def lazy(self) -> bool:
        return self.mode == "lazy"

    def synchronize(self) -> None:
        if self.lazy:
            self.htcore.mark_step()  # flush the accumulated graph; not a device sync by itself
        self.torch.hpu.synchronize()

    def after_backward(self) -> None:
        if self.lazy:
            self.htcore.mark_step()

    def after_optimizer_step(self) -> None:
        if self.lazy:
            self.htcore.mark_step()

    def autocast(self, precision: str):
        if precision == "fp16":
            raise ConfigError("--precision fp16: use bf16 on hpu (Gaudi autocast runs in bfloat16)")
        return super().autocast(precision)

    def wrap_train(self, model):
        if self.mode == "compile":
            return self.torch.compile(model, backend="hpu_backend")
        return model

    def wrap_inference(self, model):
        if self.cfg.hpu_graphs:
            if not self.lazy:
                raise ConfigError("--hpu-graphs: HPU graphs need --hpu-mode lazy")
            return self.hthpu.wrap_in_hpu_graph(model)
        return self.wrap_train(model)

    def reset_peak_memory(self) -> None:
        self.torch.hpu.reset_peak_memory_stats()

    def memory_stats(self) -> dict:
        hpu = self.torch.hpu
        stats = hpu.memory_stats()
        return {"device_peak_bytes": hpu.max_memory_allocated(),
                "device_total_bytes": stats.get("Limit"),
                "device_max_in_use_bytes": stats.get("MaxInUse")}

    def peak_flops(self, precision: str):
        return hpu_peak(self.hthpu.get_device_name(), precision)

    def describe(self) -> dict:
        return {"backend": "hpu", "device": "hpu", "device_name": self.hthpu.get_device_name(),
                "device_count": self.hthpu.device_count(), "hpu_mode": self.mode,
                "PT_HPU_LAZY_MODE": os.environ.get("PT_HPU_LAZY_MODE"),
                "hpu_graphs": bool(self.cfg.hpu_graphs), "software": _habana_version()}

    def collector_specs(self) -> list[dict]:
        return super().collector_specs() + [{"name": "habana", "indices": [self.local_rank]}]

    def energy_meter(self):
        from bench.telemetry.habana import HlmlCollector

        return _counter(HlmlCollector, self.local_rank)


BACKENDS = {"cpu": CpuBackend, "cuda": CudaBackend, "hpu": HpuBackend}


def detect_device() -> str:
    """auto: hpu if the Habana stack is importable, then cuda if torch sees a GPU, else cpu."""
    if HpuBackend.probe() is None:
        return "hpu"
    if CudaBackend.probe() is None:
        return "cuda"
    return "cpu"


def make_backend(cfg, local_rank: int = 0) -> Backend:
    """Build and prepare the backend for cfg.device; never falls back silently to another device."""
    backend = BACKENDS[cfg.device](cfg, local_rank)
    backend.prepare()
    return backend


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or None


def _nvidia_driver() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else version
    except Exception:  # noqa: BLE001 - optional metadata; absence is recorded as null
        return None


def _habana_version() -> str | None:
    from importlib import metadata

    for dist in ("habana-torch-plugin", "habana_frameworks", "habana-pyhlml"):
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return None
