"""Number formatting shared by the terminal, Markdown and HTML outputs (unknown is "—", never 0), and
the text the terminal takes: `Shown` (bench/render/screen.py prints nothing else)."""

from __future__ import annotations

import math

from rich.markup import escape

from bench.core.text import MAX_SHOWN, shell_path, terminal_safe

DASH = "—"


NOTE_CHARS = 4000  # a sentence of ours: every report value in it is already cut (render/words.py)


class Shown(str):
    """Text safe for the terminal (rich markup): made by shown(), markup() or shown_path() only."""

    __slots__ = ()


def shown(value, limit: int = MAX_SHOWN) -> Shown:
    """A string from a report, a tool or a user, for rich: control sequences neutralised, markup
    escaped, cut at `limit` characters (a note of ours is given NOTE_CHARS: it must not lose its end).
    Shown text stays as it is (it was escaped once)."""
    if isinstance(value, Shown):
        return value
    return Shown(escape(terminal_safe(DASH if value is None else value, limit)))


def markup(template: str, *values) -> Shown:
    """Rich markup of ours around escaped values: `markup("[red]error:[/] {}", message)`. The template
    is a literal in the code (tests/test_screen.py checks every call), never text from outside."""
    return Shown(template.format(*(shown(v) for v in values)))


def shown_path(path) -> Shown:
    """A path as a shell reads it back (bench/core/text.py shell_path), for rich."""
    return Shown(escape(shell_path(path)))


def cell(value) -> str:
    """Any table value as text: numbers formatted, booleans as yes/no, unknown (None, NaN) as "—"."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return num(value, 4)
    return str(value)


def num(value, digits: int = 3) -> str:
    if value is None:
        return DASH
    value = float(value)
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def with_ci(m, digits: int = 3) -> str:
    """An Interval (or a dict with value, ci_low, ci_high) as 'v [lo, hi]'."""
    if isinstance(m, dict):
        value, lo, hi = m.get("value"), m.get("ci_low"), m.get("ci_high")
    else:
        value, lo, hi = (m.value, m.ci_low, m.ci_high) if m is not None else (None, None, None)
    if value is None:
        return DASH
    if lo is None or hi is None:
        return num(value, digits)
    return f"{num(value, digits)} [{num(lo, digits)}, {num(hi, digits)}]"


def percent(value) -> str:
    return DASH if value is None else f"{value * 100:.1f} %"


def size(nbytes) -> str:
    if nbytes is None:
        return DASH
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(nbytes) < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return DASH


def lead_text(spec, interval) -> str:
    """A lead figure with its interval and what it is: `329 [312, 345] samples/s`, or a latency in the unit
    people read it in, `22.2 ms [19.8 ms, 25.0 ms] TTFT p99`."""
    if spec.unit != "s":
        text = with_ci(interval)
        return text if text == DASH else f"{text} {spec.label if spec.key.startswith('metrics.') else spec.unit}"
    value = getattr(interval, "value", None)
    if value is None:
        return DASH
    m = {"value": value, "ci_low": getattr(interval, "ci_low", None), "ci_high": getattr(interval, "ci_high", None)}
    return f"{seconds_ci(m)} {spec.label}"


def seconds_ci(m: dict) -> str:
    """A time with its interval in the unit people read it in: `259.2 ms`, `22.2 ms [19.8 ms, 25.0 ms]`."""
    lo, hi = m.get("ci_low"), m.get("ci_high")
    return seconds(m["value"]) + (f" [{seconds(lo)}, {seconds(hi)}]" if lo is not None and hi is not None else "")


def seconds(value) -> str:
    if value is None:
        return DASH
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def ms(value) -> str:
    """A latency bound or percentile in milliseconds, to four figures: `250 ms`, `1500 ms`."""
    return DASH if value is None else f"{value * 1000:.4g} ms"


def clock(seconds_: float) -> str:
    """A duration as h:mm:ss or m:ss."""
    total = int(round(max(0.0, seconds_)))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def flops(value) -> str:
    return DASH if value is None else f"{value / 1e9:,.1f} G"


def header(col) -> str:
    """A column's label, with the unit where the label does not already say it and the cells will
    not (times and sizes are formatted with their unit in each cell)."""
    if col.kind == "interval" or not col.unit or col.unit in col.label or col.unit in ("s", "bytes", "fraction", "%",
                                                                                      "W", "J"):
        return col.label
    if col.label.endswith("/s") and col.unit.endswith("/s"):  # "decode tok/s" says it already
        return col.label
    return f"{col.label} ({col.unit})"


def figure_cell(col, rec: dict) -> str:
    """One column's value of a run (bench/render/records.py) as text: intervals as 'v [lo, hi]',
    times and sizes with their unit, fractions as percent, unknown as "—"."""
    key = col.key
    if col.kind == "interval":
        m = {"value": rec.get(key), "ci_low": rec.get(f"{key}_ci_low"), "ci_high": rec.get(f"{key}_ci_high")}
        return with_ci(m) if col.unit != "s" or m["value"] is None else seconds_ci(m)
    if col.kind == "verdict":
        return rec.get("verdict_short") or DASH
    if col.kind == "util":
        if rec.get("device_util_percent") is not None:
            return f"{rec['device_util_percent']:.0f} %"
        if rec.get("device_util_max_percent") is not None:
            return f"≤ {rec['device_util_max_percent']:.0f} %"  # a published run gave only its range
        return DASH
    return unit_cell(rec.get(key), col.unit)


def unit_cell(value, unit: str = "") -> str:
    if value is None or value == "" or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    if isinstance(value, bool) or not isinstance(value, int | float):
        return cell(value)
    return {"s": seconds, "bytes": size, "fraction": percent}.get(unit, lambda v: _with_unit(v, unit))(value)


def _with_unit(value, unit: str) -> str:
    if unit == "%":
        return f"{num(value)} %"
    if unit == "W":
        return f"{value:.0f} W"
    if unit == "J":
        return f"{value:.3g} J"
    return num(value, 4)
