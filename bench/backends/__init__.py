"""Backends, one module each: cpu / cuda / hpu. Device, synchronize, autocast, memory, peaks, describe.

torch and habana_frameworks are imported lazily: `bench --help` and `bench compare` never load them.
"""

from bench.backends.base import Backend
from bench.backends.cpu import CpuBackend, cpu_model
from bench.backends.cuda import CudaBackend
from bench.backends.hpu import HpuBackend

__all__ = ["BACKENDS", "Backend", "CpuBackend", "CudaBackend", "HpuBackend", "detect_device", "make_backend",
           "cpu_model"]

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
