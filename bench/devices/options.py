"""Options every device takes. A device's own options (Gaudi's mode and graphs) live in its folder."""

from __future__ import annotations

import os
from dataclasses import dataclass

from bench.core.errors import ConfigError
from bench.core.options import Options, opt

THREADS_PER_CPU = 4  # beyond 4 threads per CPU torch only oversubscribes (and at 100,000 it crashes)


@dataclass(frozen=True)
class DeviceOptions(Options):
    title = "device"

    device: str = opt("auto", "cpu, cuda, hpu or a plug-in device; auto picks hpu, then cuda, then cpu, and says "
                              "which. A named device that is missing is an error, never a silent fall-back",
                      metavar="DEVICE")
    threads: int | None = opt(None, "torch intra-op threads of each rank (default on cpu: the cores free at the "
                                    "start — the CPUs this process may use, capped by the cgroup's quota, less "
                                    "those other load keeps busy — shared among the local ranks, and said in the "
                                    "run line)", minimum=1, maximum=4096)
    compile: bool = opt(False, "torch.compile the model (cpu and cuda; on hpu use --hpu-mode compile)")
    peak_tflops: float | None = opt(None, "the device's dense peak in TFLOP/s for MFU, overriding the built-in "
                                          "table", minimum=1e-3, maximum=1e6)

    def check(self) -> None:
        cpus = os.cpu_count() or 1
        if self.threads is not None and self.threads > THREADS_PER_CPU * cpus:
            raise ConfigError(f"--threads: {self.threads} is more than {THREADS_PER_CPU} per CPU of this host "
                              f"({cpus} CPUs); at most {THREADS_PER_CPU * cpus}")
