"""Shared parsing and running of `nvidia-smi --query-gpu` / `hl-smi -Q` CSV output.

Both print ", "-separated fields, an optional header whose names keep "[unit]", and values that may
carry units ("512 MiB", "103 W", "100 %") or be missing ("[N/A]", "[Not Supported]", "N/A").
"""

from __future__ import annotations

import re
import shutil
import subprocess

from bench.devices.collectors import CollectorUnavailable

MISSING = {"[n/a]", "n/a", "[not supported]", "not supported", "[unknown error]", "[unknown]",
           "[insufficient permissions]", "", "-"}
MIB = 1024 * 1024
TOOL_TIMEOUT_S = 2.0
_NUMBER = re.compile(r"^([-+]?\d+(?:\.\d+)?)\s*(MiB|GiB|KiB|W|%|C|MHz|mW|J)?$", re.IGNORECASE)


class ParseError(ValueError):
    """Output that does not look like the CSV we asked for."""


def _header_name(cell: str) -> str:
    return cell.split("[", 1)[0].strip()


def parse_value(cell: str):
    """'512 MiB' -> 512.0, '[N/A]' -> None, 'HL-205' -> 'HL-205'. Numbers stay in the printed unit."""
    text = cell.strip()
    if text.lower() in MISSING:
        return None
    match = _NUMBER.match(text)
    if match:
        return float(match.group(1))
    return text


def parse_smi_csv(text: str, fields: list[str]) -> list[dict]:
    """Rows of {field: value}. A header line, if present, must name the same fields in order."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(", ")]
        if len(cells) != len(fields):
            raise ParseError(f"expected {len(fields)} fields, got {len(cells)}: {line[:120]!r}")
        if [_header_name(c) for c in cells] == fields:
            continue  # header
        rows.append({name: parse_value(cell) for name, cell in zip(fields, cells)})
    if not rows:
        raise ParseError("no data rows")
    return rows


def mib_bytes(value):
    """MiB as printed by the tools -> bytes; None stays None."""
    return None if value is None else int(value * MIB)


def run_tool(argv: list[str]) -> str:
    """Run a query tool with a timeout; raise ParseError with the reason on any failure."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise ParseError(f"{argv[0]} did not answer within {TOOL_TIMEOUT_S:.0f} s") from None
    except OSError as exc:
        raise ParseError(f"{argv[0]} could not run: {exc}") from None
    if done.returncode != 0:
        raise ParseError(f"{argv[0]} exited {done.returncode}: {done.stderr.strip()[:200]}")
    return done.stdout


def find_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise CollectorUnavailable(f"{name} not found on PATH")
    return path


class SmiPoller:
    """Runs a CSV query tool each tick; after repeated failures it stops trying and says why."""

    MAX_FAILURES = 3

    def __init__(self, argv: list[str], fields: list[str]):
        self.argv, self.fields = argv, fields
        self.failures = 0
        self.last_error: str | None = None

    def poll(self) -> list[dict] | None:
        if self.failures >= self.MAX_FAILURES:
            return None
        try:
            rows = parse_smi_csv(run_tool(self.argv), self.fields)
            self.failures = 0
            return rows
        except ParseError as exc:
            self.failures += 1
            self.last_error = str(exc)
            return None
