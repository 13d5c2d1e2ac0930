"""What bench needs to know about a device before it builds anything: the DeviceSpec. Each device
folder holds one (spec.py), its backend, collectors and peak table; the registry lists them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from bench.core.errors import ConfigError
from bench.core.registry import load_target


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    description: str
    backend: str  # "module:Class", imported only when the device is used
    dist_backend: str  # torch.distributed backend for several ranks
    probe: Callable[[], str | None]  # None when usable here, else what is missing (cheap)
    count: Callable[[], int | None] = lambda: None  # devices on this node (None: no limit, as on cpu)
    options: type | None = None  # the device's own Options group
    accelerator: bool = False  # utilization must prove it did the work
    precisions: tuple[str, ...] = ("fp32", "bf16", "fp16")
    static_shapes: bool = False  # every new input shape costs a compile (Gaudi)
    auto_priority: int = 100  # --device auto tries lower numbers first
    extra_checks: tuple[Callable, ...] = field(default=())  # (device_options, own_options, common) -> None
    # collector name -> "module:Class" of each source, tried in order (a library first, its tool after)
    collectors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # (nproc, the device's own options) -> (environment for the workers, what was decided): which card each
    # worker will use, and what the device's stack must read before `import torch`
    worker_env: Callable[[int, object], tuple[dict, str]] | None = None
    # (PIDs) -> the devices those processes hold, as this device's collectors take them ({"index": N}, {"uuid":
    # U}), and how they were found; ([], why) where none can be seen (a server's device, found by its process)
    cards_of: Callable[[list[int]], tuple[list[dict], str]] | None = None
    throttle_mask: int = 0  # throttle_reasons bits that mean the clocks were held down
    throttle_names: dict[int, str] = field(default_factory=dict)

    def backend_class(self):
        return load_target(self.backend)

    def check(self, device_options, own, common, workloads=()) -> None:
        """Before anything runs: refuse what this device cannot do (ConfigError naming the flag).
        workloads: the selected Workload classes (their declared traits, e.g. `generates`)."""
        if common.precision not in self.precisions:
            raise ConfigError(f"--precision {common.precision}: {self.name} runs "
                              f"{' or '.join(self.precisions)}; choose one of those")
        for check in self.extra_checks:
            check(device_options, own, common, workloads)
