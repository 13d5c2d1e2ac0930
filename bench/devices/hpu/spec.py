"""hpu: Intel Gaudi through habana_frameworks, in lazy, eager or torch.compile mode."""

from __future__ import annotations

import glob
import importlib.util
import os
from dataclasses import dataclass

from bench.core.errors import ConfigError
from bench.core.options import Options, opt
from bench.devices.spec import DeviceSpec


@dataclass(frozen=True)
class HpuOptions(Options):
    title = "Gaudi (hpu)"

    hpu_mode: str | None = opt(None, "lazy, eager or compile: sets PT_HPU_LAZY_MODE before habana_frameworks is "
                                     "imported, and is recorded", choices=("lazy", "eager", "compile"))
    hpu_graphs: bool = opt(False, "wrap inference models in HPU graphs (lazy mode only)")


def probe() -> str | None:
    if importlib.util.find_spec("habana_frameworks") is None:
        return ("habana_frameworks is not importable. Install the Intel Gaudi software stack "
                "(its PyTorch build and habana_frameworks), or use --device cpu.")
    return None


def count() -> int:
    """Gaudi cards on this node, from the driver's device nodes (/dev/hl0, /dev/hl1, ...): importing
    habana_frameworks here would fix PT_HPU_LAZY_MODE for this process and could claim a card."""
    return len([p for p in glob.glob("/dev/hl[0-9]*") if os.path.basename(p)[2:].isdigit()])


def check_modes(device_options, own, common) -> None:
    if device_options.compile:
        raise ConfigError("--compile: on hpu use --hpu-mode compile (torch.compile with the hpu_backend)")
    if own is not None and own.hpu_graphs and (own.hpu_mode or "lazy") != "lazy":
        raise ConfigError(f"--hpu-graphs: HPU graphs need lazy mode, not --hpu-mode {own.hpu_mode}")


SPEC = DeviceSpec(name="hpu", description="Intel Gaudi (habana_frameworks; HLML or hl-smi telemetry)",
                  backend="bench.devices.hpu.backend:HpuBackend", dist_backend="hccl", probe=probe, count=count,
                  options=HpuOptions, accelerator=True, precisions=("fp32", "bf16"), static_shapes=True,
                  collectors={"habana": ("bench.devices.hpu.collectors:HlmlCollector",
                                         "bench.devices.hpu.collectors:HlSmiCollector")},
                  auto_priority=10, extra_checks=(check_modes,))
