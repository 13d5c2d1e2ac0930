"""cuda: NVIDIA GPUs through torch.cuda; NVML for the driver version and the energy counter."""

from __future__ import annotations

import os

from bench.core.errors import DeviceUnavailable
from bench.devices.base import Backend, _counter
from bench.devices.cuda.autocast import autocast_lists, matmul_fp32
from bench.devices.cuda.collectors import resolve_uuid, with_nvml
from bench.devices.cuda.peaks import cuda_peak
from bench.devices.cuda.spec import probe


class CudaBackend(Backend):
    name = "cuda"
    torch_device_type = "cuda"
    collectors = ("host", "nvml")
    _uuid: str | None = None

    def prepare(self) -> None:
        super().prepare()
        reason = probe()
        if reason:
            raise DeviceUnavailable(f"--device cuda: {reason}")
        count = self.torch.cuda.device_count()
        if self.local_rank >= count:
            raise DeviceUnavailable(f"--device cuda: rank {self.local_rank} needs GPU {self.local_rank}, "
                                    f"only {count} visible")
        self.torch.cuda.set_device(self.local_rank)

    def device_str(self) -> str:
        return f"cuda:{self.local_rank}"

    def synchronize(self) -> None:
        # torch.cuda.synchronize(device=None) waits on the current device, which CUDA keeps per host thread
        # (CUDA Runtime API, cudaSetDevice: "for the calling host thread"); a thread that did not call
        # set_device (the serving engine's own thread) has device 0 current, so name ours.
        self.torch.cuda.synchronize(self.device_str())

    def grad_scaler(self, precision: str):
        """fp16 needs loss scaling. torch.amp.GradScaler("cuda") appeared in torch 2.3; 2.1 and 2.2, which
        bench accepts, have torch.cuda.amp.GradScaler only (deprecated from 2.4 on)."""
        if precision != "fp16":
            return None
        if hasattr(getattr(self.torch, "amp", None), "GradScaler"):
            return self.torch.amp.GradScaler("cuda")
        return self.torch.cuda.amp.GradScaler()

    def reset_peak_memory(self) -> None:
        self.torch.cuda.reset_peak_memory_stats()

    def memory_stats(self) -> dict:
        cuda = self.torch.cuda
        return {"device_peak_bytes": cuda.max_memory_allocated(),
                "device_peak_reserved_bytes": cuda.max_memory_reserved(),
                "device_total_bytes": cuda.get_device_properties(self.local_rank).total_memory}

    def is_oom(self, exc: BaseException) -> bool:
        return isinstance(exc, self.torch.cuda.OutOfMemoryError) or super().is_oom(exc)

    def peak_flops(self, precision: str):
        """The peak of the arithmetic that ran: an fp32 matmul under NVIDIA_TF32_OVERRIDE=0 is IEEE whatever torch
        asked, so its MFU divides by the fp32 peak, not TF32's (7x higher on an H100)."""
        tf32 = matmul_fp32(tf32_matmul(self.torch))[0] == "tf32"
        return cuda_peak(self.torch.cuda.get_device_name(self.local_rank), precision, tf32)

    def arithmetic(self) -> dict:
        mode, why = matmul_fp32(tf32_matmul(self.torch))
        return {**autocast_lists(), "matmul_fp32": mode, "matmul_reason": why}

    def describe(self) -> dict:
        cuda = self.torch.cuda
        props = cuda.get_device_properties(self.local_rank)
        uuid = self.uuid()
        return {"backend": "cuda", "device": self.device_str(), "device_name": props.name,
                "capability": f"{props.major}.{props.minor}", "device_count": cuda.device_count(),
                "total_memory_bytes": props.total_memory, "cuda_runtime": self.torch.version.cuda,
                "cudnn": self.torch.backends.cudnn.version(), "driver": _nvidia_driver(),
                "tf32_matmul": tf32_matmul(self.torch), "matmul_fp32": matmul_fp32(tf32_matmul(self.torch))[0],
                "uuid": uuid,
                "mig": uuid.startswith("MIG-") if uuid else None, "compile": bool(self.options.compile)}

    def uuid(self) -> str | None:
        """The GPU's (or MIG instance's) UUID as NVML spells it, resolved through NVML from what torch
        reports (without NVML's prefix) and this ordinal's entry of CUDA_VISIBLE_DEVICES, or of
        NVIDIA_VISIBLE_DEVICES where that is the only device (the Kubernetes device plugin names MIG slices
        there). The CUDA ordinal is not the NVML index in general (CUDA orders fastest first;
        CUDA_VISIBLE_DEVICES reorders). Without NVML: torch's UUID as a GPU's, or a whole MIG- hint."""
        if self._uuid is None:
            self._uuid = self._resolve_uuid() or ""
        return self._uuid or None

    def _resolve_uuid(self) -> str | None:
        try:
            text = str(self.torch.cuda.get_device_properties(self.local_rank).uuid)
        except (AttributeError, RuntimeError):
            text = None
        hint = _visible_entry(self.local_rank)
        found = with_nvml(lambda lib: resolve_uuid(lib, text, hint))
        if found:
            return found
        if hint and hint.startswith("MIG-") and len(hint) >= 40:
            return hint
        return None if text is None else text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"

    def identity(self) -> dict:
        uuid = self.uuid()
        return {"uuid": uuid} if uuid else {"index": self._physical_index()}

    def collector_specs(self) -> list[dict]:
        return super().collector_specs() + [{"name": "nvml", "devices": [self.identity()]}]

    def ddp_device_ids(self) -> list[int]:
        return [self.local_rank]

    def energy_meter(self):
        from bench.devices.cuda.collectors import NvmlCollector

        return _counter(NvmlCollector, self.identity())

    def _physical_index(self) -> int:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible:
            ids = [v.strip() for v in visible.split(",") if v.strip()]
            if self.local_rank < len(ids) and ids[self.local_rank].isascii() and ids[self.local_rank].isdigit():
                return int(ids[self.local_rank])
        return self.local_rank


def tf32_matmul(torch) -> bool:
    """Whether fp32 matmuls may run as TF32. torch >= 2.9 has fp32_precision; once that API was used,
    reading the legacy allow_tf32 raises ("mix of the legacy and new APIs"), so it is never read there.
    'none' defers to the generic torch.backends.fp32_precision, and 'none' there means IEEE."""
    matmul = torch.backends.cuda.matmul
    try:
        precision = matmul.fp32_precision
    except AttributeError:
        return bool(matmul.allow_tf32)
    if precision == "none":
        precision = getattr(torch.backends, "fp32_precision", "none")
    return precision == "tf32"


def _visible_entry(ordinal: int) -> str | None:
    """What names this CUDA ordinal: its entry of CUDA_VISIBLE_DEVICES (ordinals follow its order), else
    NVIDIA_VISIBLE_DEVICES when it names exactly one device (a container's only GPU or MIG slice)."""
    cuda = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if cuda:
        return cuda[ordinal] if ordinal < len(cuda) else None
    nvidia = [v.strip() for v in os.environ.get("NVIDIA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    return nvidia[0] if len(nvidia) == 1 and ordinal == 0 else None


def _nvidia_driver() -> str | None:
    version = with_nvml(lambda lib: lib.nvmlSystemGetDriverVersion())
    return version.decode() if isinstance(version, bytes) else version
