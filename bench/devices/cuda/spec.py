"""cuda: NVIDIA GPUs through torch.cuda."""

from bench.devices.base import import_torch
from bench.devices.spec import DeviceSpec


def probe() -> str | None:
    torch = import_torch()
    if not torch.cuda.is_available():
        built = torch.version.cuda or "none (this torch is a CPU build)"
        return (f"torch.cuda.is_available() is False (torch {torch.__version__}, CUDA build: {built}). "
                "Install a CUDA build of torch and the NVIDIA driver, or use --device cpu.")
    return None


def count() -> int:
    return import_torch().cuda.device_count()


def cards_of(pids) -> tuple[list[dict], str]:
    from bench.devices.cuda.collectors import cards_of as held

    return held(pids)


# NVML clocks-event (throttle) reasons that mean the clocks were held down: HW slowdown 0x8, SW thermal
# 0x20, HW thermal 0x40, HW power brake 0x80. SW power cap (0x4) is left out: a fully loaded A100 or
# H100 runs at its power cap as a matter of course (FACTS.md).
THROTTLE_MASK = 0x8 | 0x20 | 0x40 | 0x80
THROTTLE_NAMES = {0x4: "SW power cap", 0x8: "HW slowdown", 0x20: "SW thermal", 0x40: "HW thermal",
                  0x80: "HW power brake"}

SPEC = DeviceSpec(name="cuda", description="NVIDIA GPUs (torch.cuda; NVML or nvidia-smi telemetry)",
                  backend="bench.devices.cuda.backend:CudaBackend", dist_backend="nccl", probe=probe, count=count,
                  accelerator=True, collectors={"nvml": ("bench.devices.cuda.collectors:NvmlCollector",
                                       "bench.devices.cuda.collectors:NvidiaSmiCollector")},
                  throttle_mask=THROTTLE_MASK, throttle_names=THROTTLE_NAMES, auto_priority=20, cards_of=cards_of)
