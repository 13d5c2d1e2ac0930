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


# HLML throttle reasons (pyhlml HLML_DEFINE): POWER 1 << 0, THERMAL 1 << 1. Thermal counts as throttling;
# power is the card holding its power limit, which a fully loaded accelerator does as a matter of course.
THROTTLE_MASK = 0x2
THROTTLE_NAMES = {0x1: "power", 0x2: "thermal"}


def probe() -> str | None:
    if importlib.util.find_spec("habana_frameworks") is None:
        return ("habana_frameworks is not importable. Install the Intel Gaudi software stack "
                "(its PyTorch build and habana_frameworks), or use --device cpu.")
    return None


def count() -> int | None:
    """Gaudi cards on this node, from the driver's device nodes (/dev/hl<N>; /dev/accel/accel<N> in newer
    drivers); None (unknown) where there are none to count. Importing habana_frameworks here would fix
    PT_HPU_LAZY_MODE for this process and could claim a card."""
    nodes = [p for p in glob.glob("/dev/hl[0-9]*") if os.path.basename(p)[2:].isascii() and os.path.basename(p)[2:].isdigit()]
    nodes += [p for p in glob.glob("/dev/accel/accel[0-9]*") if os.path.basename(p)[5:].isascii() and os.path.basename(p)[5:].isdigit()]
    return len(nodes) or None


def check_modes(device_options, own, common, workloads=()) -> None:
    if device_options.compile:
        raise ConfigError("--compile: on hpu use --hpu-mode compile (torch.compile with the hpu_backend)")
    if own is None or not own.hpu_graphs:
        return
    if own.hpu_mode not in (None, "lazy"):
        raise ConfigError(f"--hpu-graphs: HPU graphs need lazy mode, not --hpu-mode {own.hpu_mode}")
    if own.hpu_mode is None and os.environ.get("PT_HPU_LAZY_MODE") != "1":
        raise ConfigError("--hpu-graphs: HPU graphs need lazy mode; add --hpu-mode lazy (without it the mode is "
                          "PT_HPU_LAZY_MODE's, or the release's default, which newer releases make eager)")
    generating = [w.name for w in workloads if getattr(w, "generates", False)]
    if generating:
        raise ConfigError(f"--hpu-graphs: not with {', '.join(generating)}. An HPU graph replays the graph it "
                          "captured for the same input shapes without running the Python forward, and generate()'s "
                          "KV-cache objects hash by identity, so a replay can return an earlier step's outputs: "
                          "tokens and timings would be silently wrong (BlenderBot has no static-cache path). Drop "
                          "--hpu-graphs, or run only --workload retrieval-encode")


def pin_module(nproc: int) -> tuple[dict, str]:
    """Environment for the workers so that each uses a card bench knows, and what was decided.

    The bridge pins rank r to module ID r, or to entry r of HABANA_VISIBLE_MODULES (hccl
    _setup_module_id); a single process takes a card "by type" unless HLS_MODULE_ID names one. So:
    HLS_MODULE_ID set: honoured. Several ranks: the bridge's rule. One process: the lowest idle module
    (of HABANA_VISIBLE_MODULES where set), found through HLML or hl-smi, pinned before any import."""
    if os.environ.get("HLS_MODULE_ID"):
        return {}, f"module {os.environ['HLS_MODULE_ID']} (HLS_MODULE_ID as set)"
    if nproc > 1:
        return {}, "rank r on module r, or entry r of HABANA_VISIBLE_MODULES (the bridge's rule)"
    from bench.devices.hpu.collectors import module_states

    visible = os.environ.get("HABANA_VISIBLE_MODULES")
    allowed = {int(x) for x in visible.split(",") if x.strip().isascii() and x.strip().isdigit()} if visible else None
    states, why = module_states()
    if states is None:
        return {}, f"chosen by the bridge, unknown to bench ({why}): telemetry cannot tell which card it used"
    idle = sorted(m for m, busy in states.items() if not busy and (allowed is None or m in allowed))
    if not idle:
        return {}, "chosen by the bridge: no idle module was found; telemetry cannot tell which card it used"
    return {"HLS_MODULE_ID": str(idle[0])}, f"module {idle[0]}, the lowest idle one (pinned by bench)"


SPEC = DeviceSpec(name="hpu", description="Intel Gaudi (habana_frameworks; HLML or hl-smi telemetry)",
                  backend="bench.devices.hpu.backend:HpuBackend", dist_backend="hccl", probe=probe, count=count,
                  options=HpuOptions, accelerator=True, precisions=("fp32", "bf16"), static_shapes=True,
                  worker_env=pin_module, throttle_mask=THROTTLE_MASK, throttle_names=THROTTLE_NAMES,
                  collectors={"habana": ("bench.devices.hpu.collectors:HlmlCollector",
                                         "bench.devices.hpu.collectors:HlSmiCollector")},
                  auto_priority=10, extra_checks=(check_modes,))
