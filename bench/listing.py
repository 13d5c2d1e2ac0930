"""What `bench list` and `bench env` show: workloads, presets, devices and collectors present here."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from bench.config import PRESETS


def _devices() -> list[dict]:
    from bench.backends import BACKENDS

    rows = []
    for name, cls in BACKENDS.items():
        try:
            reason = cls.probe()
        except ImportError as exc:
            reason = f"torch not importable ({exc})"
        rows.append({"device": name, "present": reason is None, "reason": reason})
    return rows


def _collectors() -> list[dict]:
    import os

    from bench.telemetry import CollectorUnavailable, build_collector

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
    from bench.registry import workload_entry_points

    rows = []
    for name, ep in sorted(workload_entry_points().items()):
        try:
            desc = ep.load().description
        except ImportError as exc:
            desc = f"(cannot import: {exc})"
        rows.append({"workload": name, "description": desc, "entry_point": ep.value})
    return rows


def listing() -> dict:
    presets = [{"preset": k, **v.__dict__} for k, v in PRESETS.items()]
    return {"workloads": _workloads(), "presets": presets, "devices": _devices(), "collectors": _collectors()}


def _table(title: str, rows: list[dict]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in rows[0]:
        table.add_column(col.replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*(escape("—" if v is None else str(v)) for v in row.values()))
    return table


def print_listing(console, data: dict) -> None:
    for key in ("workloads", "presets", "devices", "collectors"):
        if data[key]:
            console.print(_table(key, data[key]))


def _flatten(prefix: str, value, rows: list) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else k, v, rows)
    else:
        rows.append({"field": prefix, "value": value})


def print_env(console, env: dict) -> None:
    rows: list[dict] = []
    _flatten("", env, rows)
    console.print(_table("environment", rows))
