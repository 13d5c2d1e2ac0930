"""cuda: NVIDIA GPUs through torch.cuda."""

from bench.devices.spec import DeviceSpec


def probe() -> str | None:
    import torch

    if not torch.cuda.is_available():
        built = torch.version.cuda or "none (this torch is a CPU build)"
        return (f"torch.cuda.is_available() is False (torch {torch.__version__}, CUDA build: {built}). "
                "Install a CUDA build of torch and the NVIDIA driver, or use --device cpu.")
    return None


def count() -> int:
    import torch

    return torch.cuda.device_count()


SPEC = DeviceSpec(name="cuda", description="NVIDIA GPUs (torch.cuda; NVML or nvidia-smi telemetry)",
                  backend="bench.devices.cuda.backend:CudaBackend", dist_backend="nccl", probe=probe, count=count,
                  accelerator=True, collectors={"nvml": ("bench.devices.cuda.collectors:NvmlCollector",
                                       "bench.devices.cuda.collectors:NvidiaSmiCollector")},
                  auto_priority=20)
