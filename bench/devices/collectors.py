"""Telemetry: collectors sample the hardware from a sampler process of their own.

A collector is `open() / sample() -> {key: value} / close()` plus a pure `parse_*()` function for the
text its tool prints, tested on captured output. Keys are flat: `host.cpu_percent`, `gpu0.power_w`.
"""

from __future__ import annotations


class CollectorUnavailable(Exception):
    """The collector's library or tool is missing here; the reason goes into the report."""


class Collector:
    name = "base"
    source = ""

    def __init__(self, spec: dict):
        self.spec = spec

    def open(self) -> None:
        """Acquire handles; raise CollectorUnavailable(reason) if this collector cannot work here."""

    def sample(self) -> dict:
        raise NotImplementedError

    def sources(self) -> dict:
        """{key prefix: what it stands for} for the report's telemetry.sources (TelemetrySource fields)."""
        return {}

    def claim(self, pids, on_device: int = 0) -> None:
        """Processes the run counts as its own besides its tree, `on_device` of them on the watched device
        (bench/devices/owned.py). Only a collector that lists a device's processes uses it."""

    def close(self) -> None:
        """Release handles."""
