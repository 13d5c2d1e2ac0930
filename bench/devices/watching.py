"""The backend of a worker that only sends work to a server (a serving run over HTTP): it touches no device,
and watches the one the server uses once the run has found it.

Preparing a device's own backend takes the device on some stacks: the Gaudi bridge acquires a card at its
first init (`torch.hpu.get_device_properties()` included), by module ID, by type only where
HABANA_VISIBLE_MODULES is unset, one process per card (bridge 1.19 synapse_helpers/device.cpp). A worker
that took one would leave a one-card box's server none ("Device acquire failed"), and on a larger box
have the telemetry, utilization and energy of an idle card while the server ran on another.

What it watches comes from the server: what `bench serve` says it acquired, the devices its process holds
(found by PID: a device spec's `cards_of`), or a device the user named.
"""

from __future__ import annotations

import os

from bench.devices.base import Backend

WHY = "this worker only sends requests over HTTP: the device is the server's"


class Watching(Backend):
    """No device of its own: a host-side worker that names the device kind of the run (`name`), syncs
    nothing, counts no compiles and reads no energy counter of its own (the sampled counter of the card
    it watches stands instead)."""

    def __init__(self, spec, options):
        super().__init__(options)
        self.name, self.static_shapes, self.spec = spec.name, spec.static_shapes, spec
        self.watched: list[dict] = []  # collector specs of the server's device, once found

    def watch(self, devices: list[dict]) -> list[dict]:
        """The collector specs that watch these devices (identities as the device's collectors take them:
        {"index": N}, {"module_id": M}, {"uuid": U}); [] where this device has no collector."""
        name = next((n for n in self.spec.collectors if n != "host"), None)
        self.watched = [{"name": name, "devices": list(devices), "own_processes": 0}] if name and devices else []
        return self.watched

    def collector_specs(self) -> list[dict]:
        return [{"name": "host", "pid": os.getpid()}, *self.watched]

    def describe(self) -> dict:
        return {"backend": self.name, "device": self.name, "device_held": False, "device_note": WHY}

    def peak_flops(self, precision: str):
        return None, WHY
