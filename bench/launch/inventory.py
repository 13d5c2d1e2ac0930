"""What `bench list` and `bench env` report: workloads, presets, devices and collectors usable here,
and the environment record a report carries. Data only; render/listing.py draws it."""

from __future__ import annotations

import os

from bench.devices import registry as devices
from bench.devices.collectors import CollectorUnavailable
from bench.devices.registry import build_collector
from bench.launch import catalog
from bench.measure.options import MeasureOptions
from workloads.common import PRESETS


def _devices() -> list[dict]:
    rows = []
    for name, spec in devices.specs().items():
        reason = devices.probe_reason(spec)
        rows.append({"device": name, "present": reason is None, "reason": reason, "description": spec.description})
    return rows


def _collectors() -> list[dict]:
    rows = []
    for spec in ({"name": "host", "pid": os.getpid()}, {"name": "nvml", "indices": [0]},
                 {"name": "habana", "indices": [0]}):
        try:
            c = build_collector(spec)
            c.close()
            rows.append({"collector": spec["name"], "usable": True, "via": c.source, "reason": None})
        except CollectorUnavailable as exc:
            rows.append({"collector": spec["name"], "usable": False, "via": None, "reason": str(exc)})
    return rows


def _workloads() -> list[dict]:
    rows = []
    for name, target in catalog.available().items():
        try:
            desc = catalog.load(name).description
        except Exception as exc:  # noqa: BLE001 - a broken plug-in is listed with its reason
            desc = f"(cannot import: {exc})"
        rows.append({"workload": name, "description": desc, "from": target})
    return rows


def _presets() -> list[dict]:
    return [{"preset": name, **values, **MeasureOptions.presets.get(name, {})} for name, values in PRESETS.items()]


def listing() -> dict:
    return {"workloads": _workloads(), "presets": _presets(), "devices": _devices(), "collectors": _collectors()}


def environment(device: str | None) -> dict:
    """The environment record; with a device, that device's description too (it must be present)."""
    from bench.devices.options import DeviceOptions
    from bench.measure.environment import collect_environment

    backend = None
    if device:
        name = devices.detect() if device == "auto" else device
        devices.require(name)
        spec = devices.spec(name)
        backend = devices.make_backend(name, DeviceOptions(device=name), spec.options.build({}) if spec.options else None)
    return collect_environment(backend)
