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
        self.requested = getattr(own, "hpu_mode", None)  # None: the environment's or the release's default
        self.graphs = bool(getattr(own, "hpu_graphs", False))
        self.env_lazy_mode = os.environ.get("PT_HPU_LAZY_MODE")
        self.mode = self.requested
        self.htcore = None
        self.hthpu = None

    def prepare(self) -> None:
        reason = probe()
        if reason:
            raise DeviceUnavailable(f"--device hpu: {reason}")
        if self.requested is not None:
            wanted = "1" if self.requested == "lazy" else "0"
            if "habana_frameworks.torch.core" in sys.modules and os.environ.get("PT_HPU_LAZY_MODE") != wanted:
                raise ConfigError(f"--hpu-mode {self.requested}: habana_frameworks was already imported with "
                                  f"PT_HPU_LAZY_MODE={os.environ.get('PT_HPU_LAZY_MODE')}; run bench in a new process")
            # Must be set before habana_frameworks is imported; read once, at import.
            os.environ["PT_HPU_LAZY_MODE"] = wanted
        super().prepare()
        self._import_bridge()
        lazy = _bridge_is_lazy()
        self.mode = "compile" if self.requested == "compile" else "lazy" if lazy else "eager"
        count = self.hthpu.device_count()
        if count < 1:
            raise DeviceUnavailable("--device hpu: habana_frameworks found no Gaudi device "
                                    "(hthpu.device_count() == 0); check the driver with hl-smi")
        if self.local_rank >= count:
            raise DeviceUnavailable(f"--device hpu: rank {self.local_rank} needs HPU {self.local_rank}, "
                                    f"only {count} present")

    def _import_bridge(self) -> None:
        try:
            if self.local_world > 1:  # its hccl module pins this rank's module before the device is touched
                importlib.import_module("habana_frameworks.torch.distributed.hccl")
            self.htcore = importlib.import_module("habana_frameworks.torch.core")
            self.hthpu = importlib.import_module("habana_frameworks.torch.hpu")
        except AssertionError as exc:  # a bridge built for stock PyTorch refuses lazy mode at import
            raise DeviceUnavailable(f"--device hpu: the Gaudi PyTorch bridge refused to load ({exc}). A bridge "
                                    "built for stock PyTorch runs eager or torch.compile only: use --hpu-mode "
                                    "eager or --hpu-mode compile") from None
        except ImportError as exc:
            raise DeviceUnavailable(f"--device hpu: habana_frameworks did not load ({exc})") from None

    @property
    def module_id(self) -> int | None:
        """The Gaudi module this process uses: HLS_MODULE_ID, set by the launcher before the bridge was
        imported (one process) or by the bridge's hccl from HABANA_VISIBLE_MODULES (several ranks)."""
        value = os.environ.get("HLS_MODULE_ID")
        return int(value) if value is not None and value.strip().isascii() and value.strip().isdigit() else None

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
                "hpu_mode_from": "--hpu-mode" if self.requested else
                                 "PT_HPU_LAZY_MODE as set" if self.env_lazy_mode is not None else "the release's default",
                "PT_HPU_LAZY_MODE": os.environ.get("PT_HPU_LAZY_MODE"), "module_id": self.module_id,
                "hpu_graphs": self.graphs, "software": _habana_version()}

    def identity(self) -> dict | None:
        """How telemetry finds this process's card: by module ID (the HLML index is another number)."""
        return {"module_id": self.module_id} if self.module_id is not None else None

    def collector_specs(self) -> list[dict]:
        ident = self.identity()
        return super().collector_specs() + ([{"name": "habana", "devices": [ident]}] if ident else [])

    def energy_meter(self):
        from bench.devices.hpu.collectors import HlmlCollector

        ident = self.identity()
        return _counter(HlmlCollector, ident) if ident else None


def _bridge_is_lazy() -> bool:
    """The mode the bridge loaded in: its own answer where it gives one, else the variable it read."""
    try:
        return bool(importlib.import_module("habana_frameworks.torch.utils.internal").is_lazy())
    except (ImportError, AttributeError):
        return os.environ.get("PT_HPU_LAZY_MODE", "0") != "0"


def _habana_version() -> str | None:
    from importlib import metadata

    for dist in ("habana-torch-plugin", "habana_frameworks", "habana-pyhlml"):
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return None
