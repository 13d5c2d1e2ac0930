"""`bench list` and `bench env` in the terminal."""

from __future__ import annotations

from bench.render.format import size
from bench.render.layout import plain_table


def _table(title: str, rows: list[dict]):
    return plain_table(title, [col.replace("_", " ") for col in rows[0]], [list(row.values()) for row in rows])


def print_listing(screen, data: dict) -> None:
    for key in ("workloads", "presets", "devices", "collectors"):
        if data[key]:
            screen.print(_table(key, data[key]))


def _flatten(prefix: str, value, rows: list) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else k, v, rows)
    else:
        rows.append({"field": prefix, "value": human(prefix, value)})


def human(key: str, value):
    """Epoch times as UTC dates, byte counts in KiB..GiB (the raw value stays in --json)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if key.endswith("_time") and value > 1e8:
            from datetime import datetime, timezone

            return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        if key.endswith("_bytes"):
            return f"{size(value)} ({value:,.0f} bytes)"
    return value


def print_env(screen, env: dict) -> None:
    rows: list[dict] = []
    _flatten("", env, rows)
    screen.print(_table("environment", rows))
