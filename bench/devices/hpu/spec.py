"""hpu: Intel Gaudi through habana_frameworks, in lazy, eager or torch.compile mode."""

from __future__ import annotations

import glob
import importlib.util
import os
import re
from dataclasses import dataclass

from bench.core.errors import ConfigError
from bench.core.options import Options, opt
from bench.devices.spec import DeviceSpec


# The recipe cache's size: the bridge's default is 1024 MB (1.19 habana_serialization recipe_cache_config.cpp,
# cache_dir_max_size_mb_); bench sets its own, said in the options and recorded, rather than leave it unsaid.
RECIPE_CACHE_MB = 4096


@dataclass(frozen=True)
class HpuOptions(Options):
    title = "Gaudi (hpu)"

    hpu_mode: str | None = opt(None, "lazy, eager or compile: sets PT_HPU_LAZY_MODE before habana_frameworks is "
                                     "imported, and is recorded", choices=("lazy", "eager", "compile"))
    hpu_graphs: bool = opt(False, "wrap inference models in HPU graphs (lazy mode only); blender-serve captures each "
                                  "warmed decode bucket as one, as Gaudi's serving stacks do")
    hpu_recipe_cache: str | None = opt(None, "a directory where the bridge keeps compiled graph recipes across "
                                             "processes, so repeats and later runs load rather than recompile "
                                             "(sets PT_HPU_RECIPE_CACHE_CONFIG=DIR,false,SIZE_MB); recorded, with "
                                             "the directory the bridge uses (DIR and the rank under "
                                             "PT_HPU_INFERENCE_MODE)",
                                       metavar="DIR")
    hpu_recipe_cache_mb: int = opt(RECIPE_CACHE_MB, "the recipe cache's size in MB (the bridge's own default is "
                                                    "1024, which the recipes of many shapes can outgrow)",
                                   minimum=64, maximum=10**7, metavar="MB")


# The oldest Intel Gaudi software bench runs on. Before 1.13 PT_HPU_LAZY_MODE=0 did not select the eager
# mode bench means (releases up to 1.12 documented 2 for eager), and torch.compile's hpu_backend came later.
MIN_RELEASE = (1, 13)


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
    """Gaudi cards this process may use: the driver's device nodes (/dev/hl<N>; newer drivers add
    /dev/accel/accel<N> for the same card, so numbers are counted once), at most as many as
    HABANA_VISIBLE_MODULES lists; None (unknown) where there are none to count. Importing
    habana_frameworks here would fix PT_HPU_LAZY_MODE for this process and could claim a card."""
    numbers = {_node_number(p) for p in glob.glob("/dev/hl[0-9]*") + glob.glob("/dev/accel/accel[0-9]*")}
    numbers.discard(None)
    visible = visible_modules()
    n = min(len(numbers), len(visible)) if visible is not None else len(numbers)
    return n or None


def _node_number(path: str) -> int | None:
    m = re.fullmatch(r"(?:hl|accel)(\d+)", os.path.basename(path))
    return int(m.group(1)) if m else None


def visible_modules() -> list[int] | None:
    """HABANA_VISIBLE_MODULES as module IDs (None: unset)."""
    text = os.environ.get("HABANA_VISIBLE_MODULES")
    if text is None:
        return None
    return sorted({int(x) for x in text.split(",") if x.strip().isascii() and x.strip().isdigit()})


def bridge_env(own) -> dict:
    """What the bridge reads once, when it loads: PT_HPU_LAZY_MODE from --hpu-mode and
    PT_HPU_RECIPE_CACHE_CONFIG from --hpu-recipe-cache and --hpu-recipe-cache-mb ("PATH[,DELETE[,SIZE_MB]]",
    1.19 habana_serialization/recipe_cache_config.cpp; DELETE false keeps the recipes of earlier processes).
    It must be in the worker's environment before `import torch`: with PT_HPU_AUTOLOAD=1 (or eager mode
    and it unset) torch loads the bridge itself at import (autoload/__init__.py)."""
    env = {}
    if own is not None and own.hpu_mode is not None:
        env["PT_HPU_LAZY_MODE"] = "1" if own.hpu_mode == "lazy" else "0"
    if own is not None and own.hpu_recipe_cache:
        env["PT_HPU_RECIPE_CACHE_CONFIG"] = f"{os.path.abspath(own.hpu_recipe_cache)},false,{own.hpu_recipe_cache_mb}"
    return env


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true")


def recipe_cache(config: str | None, env=os.environ) -> dict:
    """Where and how big the bridge's recipe cache is, as the bridge reads PT_HPU_RECIPE_CACHE_CONFIG (1.19
    recipe_cache_config.cpp reload: the path; DELETE; SIZE_MB, default 1024). In inference mode
    (PT_HPU_INFERENCE_MODE, runtime_config.cpp enable_inference_mode) it appends the rank to the path as
    text, RANK or 0: DIR becomes DIR0. {} where no cache is set."""
    if not config:
        return {}
    parts = config.split(",")
    path = parts[0] + (str(int(env.get("RANK") or 0)) if _flag(env.get("PT_HPU_INFERENCE_MODE")) else "")
    size = parts[2].strip() if len(parts) > 2 and parts[2].strip().isdigit() else "1024"
    return {"recipe_cache_dir": path, "recipe_cache_mb": int(size)}


def check_recipe_cache(device_options, own, common, workloads=()) -> None:
    cache = own.hpu_recipe_cache if own is not None else None
    if cache and ("," in cache or (os.path.exists(cache) and not os.path.isdir(cache))):
        raise ConfigError(f"--hpu-recipe-cache {cache!r}: give a directory whose path has no comma (the bridge "
                          "splits PT_HPU_RECIPE_CACHE_CONFIG at commas)")


def check_modes(device_options, own, common, workloads=()) -> None:
    if device_options.compile:
        raise ConfigError("--compile: on hpu use --hpu-mode compile (torch.compile with the hpu_backend)")
    eager = [w for w in workloads if getattr(w, "eager", None)]
    if own is not None and own.hpu_mode == "compile" and eager:
        raise ConfigError(f"--hpu-mode compile: {eager[0].eager} ({eager[0].name} would run uncompiled and be recorded "
                          "as compiled); use --hpu-mode lazy (with --hpu-graphs: what Gaudi's serving stacks run) or "
                          "eager, or run the other workloads apart")
    if own is None or not own.hpu_graphs:
        return
    if own.hpu_mode not in (None, "lazy"):
        raise ConfigError(f"--hpu-graphs: HPU graphs need lazy mode, not --hpu-mode {own.hpu_mode}")
    if own.hpu_mode is None and os.environ.get("PT_HPU_LAZY_MODE") != "1":
        raise ConfigError("--hpu-graphs: HPU graphs need lazy mode; add --hpu-mode lazy (without it the mode is "
                          "PT_HPU_LAZY_MODE's, or the release's default, which newer releases make eager)")
    generating = [w.name for w in workloads if getattr(w, "generates", False) and not getattr(w, "graph_safe", False)]
    if generating:
        raise ConfigError(f"--hpu-graphs: not with {', '.join(generating)}. An HPU graph replays the graph it "
                          "captured for the same input shapes without running the Python forward, and generate()'s "
                          "KV-cache objects hash by identity, so a replay can return an earlier step's outputs: "
                          "tokens and timings would be silently wrong (BlenderBot's generate() has no static-cache path). Drop "
                          "--hpu-graphs, or run only --workload retrieval-encode or blender-serve (the serving engine's "
                          "caches are fixed and its shapes bucketed)")


def cards_of(pids) -> tuple[list[dict], str]:
    from bench.devices.hpu.collectors import cards_of as held

    return held(pids)


def worker_env(nproc: int, own=None) -> tuple[dict, str]:
    """Environment for the workers: the bridge's settings (bridge_env) and the card (pin_module)."""
    env, why = pin_module(nproc)
    return {**env, **bridge_env(own)}, why


def pin_module(nproc: int) -> tuple[dict, str]:
    """Environment for the workers so that each uses a card bench knows, and what was decided.

    The bridge pins rank r to module ID r, or to entry r of HABANA_VISIBLE_MODULES (hccl
    _setup_module_id); a single process takes a card "by type" unless HLS_MODULE_ID names one. So:
    HLS_MODULE_ID set: honoured. Several ranks: the bridge's rule. One process: the lowest idle module
    (of HABANA_VISIBLE_MODULES where set), found through HLML or hl-smi, pinned before any import. Idle is
    not free: Gaudi is one process per card, and a process holding a card may leave it idle. When the
    pinned module cannot be acquired the bridge (1.19 synapse_helpers/device.cpp) falls back to a free
    card by type unless HABANA_VISIBLE_MODULES is set; either way the worker reads which card it got."""
    if os.environ.get("HLS_MODULE_ID"):
        return {}, f"module {os.environ['HLS_MODULE_ID']} (HLS_MODULE_ID as set)"
    if nproc > 1:
        return {}, "rank r on module r, or entry r of HABANA_VISIBLE_MODULES (the bridge's rule)"
    from bench.devices.hpu.collectors import module_states

    allowed = visible_modules()
    states, why = module_states()
    if states is None:
        return {}, f"chosen by the bridge ({why}); the worker reads which card from its device file"
    idle = sorted(m for m, busy in states.items() if not busy and (allowed is None or m in allowed))
    if not idle:
        return {}, "chosen by the bridge: no idle module was found; the worker reads which card from its device file"
    return {"HLS_MODULE_ID": str(idle[0])}, f"module {idle[0]}, the lowest idle one (pinned by bench)"


SPEC = DeviceSpec(name="hpu", description="Intel Gaudi (habana_frameworks; HLML or hl-smi telemetry)",
                  backend="bench.devices.hpu.backend:HpuBackend", dist_backend="hccl", probe=probe, count=count,
                  options=HpuOptions, accelerator=True, precisions=("fp32", "bf16"), static_shapes=True,
                  worker_env=worker_env, throttle_mask=THROTTLE_MASK, throttle_names=THROTTLE_NAMES,
                  collectors={"habana": ("bench.devices.hpu.collectors:HlmlCollector",
                                         "bench.devices.hpu.collectors:HlSmiCollector")},
                  auto_priority=10, extra_checks=(check_modes, check_recipe_cache), cards_of=cards_of)
