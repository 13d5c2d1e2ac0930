"""Options every device takes. A device's own options (Gaudi's mode and graphs) live in its folder."""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.options import Options, opt


@dataclass(frozen=True)
class DeviceOptions(Options):
    title = "device"

    device: str = opt("auto", "cpu, cuda, hpu or a plug-in device; auto picks hpu, then cuda, then cpu, and says "
                              "which. A named device that is missing is an error, never a silent fall-back",
                      metavar="DEVICE")
    threads: int | None = opt(None, "torch intra-op threads (default: the CPUs this process may use, divided "
                                    "among the local ranks)", minimum=1, maximum=4096)
    compile: bool = opt(False, "torch.compile the model (cpu and cuda; on hpu use --hpu-mode compile)")
    peak_tflops: float | None = opt(None, "the device's dense peak in TFLOP/s for MFU, overriding the built-in "
                                          "table", exclusive_minimum=0, maximum=1e6)
