"""The CSV that `nvidia-smi --query-gpu ... --format=csv` and `hl-smi -Q ... -f csv` print, read by
its header, and the collector base both tools share.

Both print a header line, then one row per device, fields separated by ", ". The header names each
field, with its unit in brackets (`memory.used [MiB]`), also with `nounits` (then only the values
lose their units: `512` rather than `512 MiB`), and may name a field differently from the query
(`clocks.sm` prints as `clocks.current.sm [MHz]`). A device that cannot answer a field prints a
marker (`[N/A]`, `[Not Supported]`, `[Unknown Error]`, ...): that value is None. Anything else —
no header, a table, a ragged row, a unit we do not know — is a ParseError: guessing would put wrong
numbers in a report.
"""

from __future__ import annotations

import re

from bench.devices.collectors import Collector, CollectorUnavailable
from bench.devices.tools import ToolError, find_tool, printable, run_tool

# Markers for a value the device could not give (nvidia-smi and hl-smi; case-insensitive).
MISSING = {"", "n/a", "[n/a]", "[not supported]", "not supported", "[unknown error]", "unknown error", "err!",
           "[requires reset]", "[gpu requires reset]", "[gpu is lost]", "[insufficient permissions]", "[unknown]"}

# unit as printed -> (base unit, factor to it)
UNITS = {"B": ("bytes", 1), "KiB": ("bytes", 2**10), "MiB": ("bytes", 2**20), "GiB": ("bytes", 2**30),
         "TiB": ("bytes", 2**40), "mW": ("W", 1e-3), "W": ("W", 1), "kW": ("W", 1e3), "Hz": ("Hz", 1),
         "kHz": ("Hz", 1e3), "MHz": ("Hz", 1e6), "GHz": ("Hz", 1e9), "%": ("%", 1), "C": ("C", 1),
         "mJ": ("J", 1e-3), "J": ("J", 1), "kJ": ("J", 1e3)}

_FIELD = re.compile(r"^([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*)(?:\s*\[([^\]]+)\])?$")
_VALUE = re.compile(r"^([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?:\s*([A-Za-z%]+))?$")


class ParseError(ValueError):
    """Output that is not the CSV we asked for."""


def _header(line: str) -> list[tuple[str, str | None]]:
    fields = []
    for cell in (c.strip() for c in line.split(",")):
        m = _FIELD.match(cell)
        if not m:
            raise ParseError(f"no CSV header line (a table, or output without a header?): {printable(line, 120)!r}")
        unit = m.group(2)
        if unit is not None and unit not in UNITS:
            raise ParseError(f"unknown unit [{printable(unit, 20)}] in the header field {m.group(1)}")
        fields.append((m.group(1), unit))
    return fields


def parse_value(cell: str, unit: str | None):
    """'512 MiB' (or '512' under a [MiB] header) -> 536870912.0; a missing marker -> None; text stays text."""
    text = cell.strip()
    if text.lower() in MISSING:
        return None
    m = _VALUE.match(text)
    if not m:
        if unit is not None:
            raise ParseError(f"{printable(text, 40)!r} is not a number in {unit}")
        return text
    printed = m.group(2) or unit
    if printed is None:
        return float(m.group(1))
    if printed not in UNITS:
        raise ParseError(f"unknown unit {printable(printed, 20)!r} in {printable(text, 40)!r}")
    if unit is not None and UNITS[printed][0] != UNITS[unit][0]:
        raise ParseError(f"{printable(text, 40)!r} is not in {unit}, as its header says")
    return float(m.group(1)) * UNITS[printed][1]


def parse_csv(text: str) -> list[dict]:
    """One dict per row, keyed by the header's field names (units dropped), values in base units:
    bytes, watts, hertz, percent, degrees C, joules; None where the device gave no value."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ParseError("no output")
    fields = _header(lines[0])
    rows = []
    for line in lines[1:]:
        cells = line.split(",")
        if len(cells) != len(fields):
            raise ParseError(f"a row of {len(cells)} fields under a header of {len(fields)}: {printable(line, 120)!r}")
        rows.append({name: parse_value(cell, unit) for (name, unit), cell in zip(fields, cells, strict=True)})
    if not rows:
        raise ParseError("a header but no device rows")
    return rows


def _same(a, b) -> bool:
    if a is None or b is None:
        return False
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return str(a).strip().lower() == str(b).strip().lower()


def hex_int(value) -> int | None:
    """'0x0000000000000004' (a bitmask field) -> 4."""
    if isinstance(value, str) and value.lower().startswith("0x"):
        try:
            return int(value, 16)
        except ValueError:
            return None
    return int(value) if isinstance(value, float) and value.is_integer() else None


class SmiCollector(Collector):
    """A query tool as a collector: subclasses give the tool, the query, the parser, the key prefix,
    and FIELDS: header field -> (metric, convert). It polls once per sample; after MAX_FAILURES in a
    row it stops asking and says why."""

    tool = ""
    query_flags: tuple[str, ...] = ()
    prefix = ""
    FIELDS: dict = {}
    MAX_FAILURES = 3

    def parse(self, text: str) -> list[dict]:
        return parse_csv(text)

    def open(self) -> None:
        try:
            self.argv = [find_tool(self.tool), *self.query_flags]
        except ToolError as exc:
            raise CollectorUnavailable(str(exc)) from None
        self.devices = list(self.spec.get("devices") or [{"index": i} for i in self.spec.get("indices", [0])])
        self.failures, self.last_error = 0, None
        rows = self.poll()
        if rows is None:
            raise CollectorUnavailable(self.last_error)
        self.last_rows = rows
        measured = [f for f in self.FIELDS if f in rows[0]]
        if not measured:  # a tool that answers but measures nothing would be listed as sampling
            raise CollectorUnavailable(f"{self.tool} printed none of the fields asked for (it printed "
                                       f"{printable(', '.join(rows[0]), 160)}): nothing to sample")
        self.index_of = {id(d): self.match(rows, d) for d in self.devices}
        missing = [d for d in self.devices if self.index_of[id(d)] is None]
        if missing:
            raise CollectorUnavailable(f"{self.tool} lists no device matching {missing}")

    def poll(self) -> list[dict] | None:
        if self.failures >= self.MAX_FAILURES:
            return None
        try:
            rows = self.parse(run_tool(self.argv))
            self.failures = 0
            return rows
        except (ToolError, ParseError) as exc:
            self.failures += 1
            self.last_error = str(exc)
            return None

    @staticmethod
    def match(rows: list[dict], device: dict) -> float | None:
        """The tool's index of a device named by UUID (preferred), module ID or index."""
        for key in ("uuid", "module_id", "index"):
            if device.get(key) is not None:
                for row in rows:
                    if _same(row.get(key), device[key]):
                        return row.get("index")
        return None

    def sources(self) -> dict:
        return {f"{self.prefix}{int(i)}": {"role": "accelerator", "device": self.device_kind, "index": int(i)}
                for i in self.index_of.values() if i is not None}

    device_kind = ""

    def sample(self) -> dict:
        rows = self.poll()
        if rows is None:
            return {f"{self.name}.error": self.last_error}
        out = {}
        wanted = {i for i in self.index_of.values() if i is not None}
        for row in rows:
            if row.get("index") not in wanted:
                continue
            p = f"{self.prefix}{int(row['index'])}."
            for field, (metric, convert) in self.FIELDS.items():
                if field in row:
                    out[p + metric] = _convert(convert, row[field])
        return out


def _convert(convert, value):
    """A parsed value in the collector's type; text where a number was due is None, not an error."""
    if value is None:
        return None
    try:
        return convert(value)
    except (TypeError, ValueError):
        return None
