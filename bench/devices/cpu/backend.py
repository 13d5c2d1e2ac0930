"""cpu: explicit thread count, RSS for memory, an estimated peak, RAPL energy where readable."""

from __future__ import annotations

import os
import resource

from bench.devices.base import Backend
from bench.devices.cpu.peaks import cpu_peak


class CpuBackend(Backend):
    name = "cpu"

    def prepare(self) -> None:
        super().prepare()
        if not self.options.threads:
            # Explicit, so that the report says how many threads did the work: the CPUs this process
            # may use, shared among the ranks on this node.
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            self.torch.set_num_threads(max(1, cpus // self.local_world))

    def memory_stats(self) -> dict:
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"device_peak_bytes": None,
                "device_peak_reason": "cpu has no device memory; see host_peak_rss_bytes",
                "process_max_rss_bytes": peak_kib * 1024}

    def peak_flops(self, precision: str):
        return cpu_peak(self.torch.get_num_threads(), precision)

    def threads(self) -> int:
        return self.torch.get_num_threads()

    def energy_meter(self):
        """On cpu the device is the CPU: its packages' RAPL counters, where readable."""
        from bench.devices.cpu.collectors import Rapl

        rapl = Rapl()
        return rapl.read_j if rapl.domains else None

    def describe(self) -> dict:
        return {"backend": "cpu", "device": "cpu", "device_name": cpu_model(),
                "threads": self.torch.get_num_threads(),
                "interop_threads": self.torch.get_num_interop_threads()}


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or None
