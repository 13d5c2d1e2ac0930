"""hpu: Intel Gaudi through habana_frameworks, in lazy, eager or torch.compile mode."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys

from bench.core.errors import ConfigError, DeviceUnavailable
from bench.devices.base import Backend, _counter, dynamo_eager_frames
from bench.devices.hpu.peaks import hpu_peak
from bench.devices.hpu.spec import MIN_RELEASE, bridge_env, probe, recipe_cache


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
        self.card: dict = {}

    def prepare(self) -> None:
        reason = probe()
        if reason:
            raise DeviceUnavailable(f"--device hpu: {reason}")
        check_release(_habana_version())
        self._set_bridge_env()
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
        self.card = acquired_card(self.torch)

    def _set_bridge_env(self) -> None:
        """PT_HPU_LAZY_MODE and the recipe cache, before habana_frameworks is imported (it reads them once)."""
        env = bridge_env(self.own)
        wanted = env.get("PT_HPU_LAZY_MODE")
        if wanted is not None and "habana_frameworks.torch.core" in sys.modules \
                and os.environ.get("PT_HPU_LAZY_MODE") != wanted:
            raise ConfigError(f"--hpu-mode {self.requested}: habana_frameworks was already imported with "
                              f"PT_HPU_LAZY_MODE={os.environ.get('PT_HPU_LAZY_MODE')}; run bench in a new process")
        where = recipe_cache(env.get("PT_HPU_RECIPE_CACHE_CONFIG")).get("recipe_cache_dir")
        if where:
            try:
                os.makedirs(where, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"--hpu-recipe-cache: cannot create {where!r} ({exc.strerror or exc})") from None
        os.environ.update(env)

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
        """The Gaudi module this process uses: the acquired card's, where it was read, else HLS_MODULE_ID
        (set by the launcher before the bridge was imported, or by the bridge's hccl for several ranks)."""
        if self.card.get("module_id") is not None:
            return self.card["module_id"]
        return _requested_module()

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
        graphs = self.capture_graphs(model)
        return graphs if graphs is not None else super().wrap_inference(model)

    def capture_graphs(self, module):
        """--hpu-graphs in lazy mode: `module` wrapped in HPU graphs (bridge 1.19 hpu/graphs.py wrap_in_hpu_graph: a
        graph captured per input shapes and hash() of the other arguments, and on a hit replayed without running the
        Python forward); None without --hpu-graphs. A caller must keep every tensor the forward reads or writes
        outside its arguments at one address (caches allocated once) and its shapes static."""
        if not self.graphs:
            return None
        if not self.lazy:
            raise ConfigError("--hpu-graphs: HPU graphs need --hpu-mode lazy")
        return self.hthpu.wrap_in_hpu_graph(module)

    def compile_stats(self) -> dict | None:
        """The bridge's own count (1.19 hpu/metrics): metric_global("graph_compilation").stats() gives
        TotalNumber graphs and TotalTime in microseconds. synapse_helpers/graph.cpp emits the event for
        non-eager graphs only: in eager mode op-by-op compiles go uncounted, so there the count is null."""
        source = "habana_frameworks.torch.hpu.metrics graph_compilation"
        if self.mode == "eager":
            return {"graphs": None, "seconds": None,
                    "source": f"{source}: eager mode's op compiles are not counted by the bridge"}
        metric = importlib.import_module("habana_frameworks.torch.hpu.metrics").metric_global("graph_compilation")
        stats = dict(metric.stats())
        eager = dynamo_eager_frames() if self.mode == "compile" else None  # torch.compile's own limit applies
        return {"graphs": int(stats["TotalNumber"]), "seconds": stats["TotalTime"] / 1e6, "eager_frames": eager,
                "source": source}

    def reset_peak_memory(self) -> None:
        self.torch.hpu.reset_peak_memory_stats()

    def memory_stats(self) -> dict:
        """device_total_bytes is the card's memory (synDeviceInfo dramSize); memory_stats()'s Limit is the
        allocator's pool, a smaller figure, kept apart as device_pool_bytes."""
        hpu = self.torch.hpu
        stats = hpu.memory_stats()
        return {"device_peak_bytes": hpu.max_memory_allocated(), "device_total_bytes": self.card.get("dram_bytes"),
                "device_pool_bytes": stats.get("Limit"), "device_max_in_use_bytes": stats.get("MaxInUse")}

    def is_oom(self, exc: BaseException) -> bool:
        # The bridge's allocator (1.19 synapse_helpers/device_memory.cpp) fails with PT_DEVMEM_FATAL
        # "Allocation failed for size::N (X)MB", a RuntimeError that says nothing of "out of memory".
        return "Allocation failed for size" in str(exc) or super().is_oom(exc)

    def peak_flops(self, precision: str):
        return hpu_peak(self.hthpu.get_device_name(), precision)

    def describe(self) -> dict:
        return {"backend": "hpu", "device": "hpu", "device_name": self.hthpu.get_device_name(),
                "device_count": self.hthpu.device_count(), "hpu_mode": self.mode,
                "hpu_mode_from": "--hpu-mode" if self.requested else
                                 "PT_HPU_LAZY_MODE as set" if self.env_lazy_mode is not None else "the release's default",
                "PT_HPU_LAZY_MODE": os.environ.get("PT_HPU_LAZY_MODE"), "hpu_graphs": self.graphs,
                "recipe_cache": os.environ.get("PT_HPU_RECIPE_CACHE_CONFIG"),
                **recipe_cache(os.environ.get("PT_HPU_RECIPE_CACHE_CONFIG")), "software": _habana_version(),
                **self._card_description()}

    def arithmetic(self) -> dict:
        """The bridge's autocast lists as it loaded them (bench/devices/hpu/autocast.py); how fp32 matmuls run on
        the card is not recorded."""
        from bench.devices.hpu.autocast import autocast_lists

        return autocast_lists()

    def _card_description(self) -> dict:
        """Which card: the one the bridge acquired, and the module that was asked for where it differs."""
        requested = _requested_module()
        out = {"module_id": self.module_id, "card_index": self.card.get("index"), "card_node": self.card.get("node"),
               "module_requested": requested}
        if requested is not None and self.card.get("module_id") not in (None, requested):
            out["module_fallback"] = (f"module {requested} was not free (Gaudi is one process per card): the "
                                      f"bridge acquired module {self.card['module_id']} instead")
        return out

    def identity(self) -> dict | None:
        """How telemetry finds this process's card: by the HLML index of the card acquired (found from its
        device node's minor number), else by module ID."""
        if self.card.get("index") is not None:
            return {"index": self.card["index"]}
        return {"module_id": self.module_id} if self.module_id is not None else None

    def collector_specs(self) -> list[dict]:
        ident = self.identity()
        return super().collector_specs() + ([{"name": "habana", "devices": [ident]}] if ident else [])

    def energy_meter(self):
        from bench.devices.hpu.collectors import HlmlCollector

        ident = self.identity()
        return _counter(HlmlCollector, ident) if ident else None


def _requested_module() -> int | None:
    value = os.environ.get("HLS_MODULE_ID")
    return int(value) if value is not None and value.strip().isascii() and value.strip().isdigit() else None


def acquired_card(torch) -> dict:
    """The card the bridge acquired: get_device_properties() prints synDeviceInfo (1.19
    synapse_helpers/device.cpp), whose fd is this process's open device file, /dev/hl<N> or
    /dev/accel/accel<N>, N the node's minor number; and whose dramSize is the card's memory. HLML links N to
    a card by hlmlDeviceGetMinorNumber (collectors.card_at_node), which gives its HLML index, module ID,
    UUID and name; N is not the HLML index. {} where the bridge does not say."""
    try:
        text = str(torch.hpu.get_device_properties())
    except RuntimeError as exc:
        if "acquire" in str(exc).lower():
            raise DeviceUnavailable(f"--device hpu: the bridge could not acquire a Gaudi card ({exc}). Gaudi runs "
                                    "one process per card; the module asked for (HLS_MODULE_ID, or entry r of "
                                    "HABANA_VISIBLE_MODULES) is held by another process. Free it, or name a free "
                                    "one with HLS_MODULE_ID") from None
        return {}
    except (AttributeError, TypeError):
        return {}
    out = {}
    dram = re.search(r"\bdramSize=(\d+)", text)
    if dram:
        out["dram_bytes"] = int(dram.group(1))
    node = _device_file_number(re.search(r"\bfd=(\d+)", text))
    if node is not None:
        from bench.devices.hpu.collectors import card_at_node

        out.update(card_at_node(node), node=node)
    return out


def _device_file_number(fd_match) -> int | None:
    if fd_match is None:
        return None
    try:
        target = os.readlink(f"/proc/self/fd/{fd_match.group(1)}")
    except OSError:
        return None
    m = re.fullmatch(r"(?:hl|accel)(\d+)", os.path.basename(target))
    return int(m.group(1)) if m else None


def _bridge_is_lazy() -> bool:
    """The mode the bridge loaded in: its own answer where it gives one, else the variable it read."""
    try:
        return bool(importlib.import_module("habana_frameworks.torch.utils.internal").is_lazy())
    except (ImportError, AttributeError):
        return os.environ.get("PT_HPU_LAZY_MODE", "0") != "0"


def _habana_version() -> str | None:
    """The bridge's release: its wheel is habana-torch-plugin (1.19 python_packages/setup.py)."""
    from importlib import metadata

    for dist in ("habana-torch-plugin", "habana_frameworks", "habana-pyhlml"):
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return None


def check_release(software: str | None) -> None:
    """Refuse a Gaudi software release older than MIN_RELEASE (unknown: let it run, recorded as null)."""
    m = re.match(r"habana-torch-plugin (\d+)\.(\d+)", software or "")
    if m and (int(m.group(1)), int(m.group(2))) < MIN_RELEASE:
        need = ".".join(map(str, MIN_RELEASE))
        raise DeviceUnavailable(f"--device hpu: Intel Gaudi software {software.split()[1]} is older than {need}, the "
                                f"oldest bench supports (before {need} PT_HPU_LAZY_MODE=0 did not mean eager mode; "
                                f"releases up to 1.12 used 2). Install Intel Gaudi software {need} or later")
