"""hpu: Intel Gaudi through habana_frameworks, in lazy, eager or torch.compile mode."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from bench.core.errors import ConfigError, DeviceUnavailable
from bench.devices.base import Backend, _counter
from bench.devices.hpu.spec import probe
from bench.devices.hpu.peaks import hpu_peak


class HpuBackend(Backend):
    """Intel Gaudi through habana_frameworks (lazy, eager or torch.compile mode)."""

    name = "hpu"
    torch_device_type = "hpu"
    collectors = ("host", "habana")
    static_shapes = True

    def __init__(self, options, own=None, local_rank: int = 0, local_world: int = 1):
        super().__init__(options, own, local_rank, local_world)
        self.mode = getattr(own, "hpu_mode", None) or "lazy"
        self.graphs = bool(getattr(own, "hpu_graphs", False))
        self.htcore = None
        self.hthpu = None

    def prepare(self) -> None:
        reason = probe()
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

    def init_distributed(self) -> None:
        importlib.import_module("habana_frameworks.torch.distributed.hccl")  # registers the hccl backend

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

    @property
    def compiling(self) -> bool:
        return self.mode == "compile"

    def compile_options(self) -> dict:
        return {"backend": "hpu_backend"}

    def wrap_inference(self, model):
        if self.graphs:
            if not self.lazy:
                raise ConfigError("--hpu-graphs: HPU graphs need --hpu-mode lazy")
            return self.hthpu.wrap_in_hpu_graph(model)
        return super().wrap_inference(model)

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
                "hpu_graphs": self.graphs, "software": _habana_version()}

    def collector_specs(self) -> list[dict]:
        return super().collector_specs() + [{"name": "habana", "indices": [self.local_rank]}]

    def energy_meter(self):
        from bench.devices.hpu.collectors import HlmlCollector

        return _counter(HlmlCollector, {"index": self.local_rank})


def _habana_version() -> str | None:
    from importlib import metadata

    for dist in ("habana-torch-plugin", "habana_frameworks", "habana-pyhlml"):
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return None
