"""cpu: the host's cores, threads set explicitly and recorded."""

from bench.devices.spec import DeviceSpec

SPEC = DeviceSpec(name="cpu", description="the host CPU (torch intra-op threads set explicitly)",
                  backend="bench.devices.cpu.backend:CpuBackend", dist_backend="gloo", probe=lambda: None,
                  collectors={"host": ("bench.devices.cpu.collectors:HostCollector",)},
                  auto_priority=90)
