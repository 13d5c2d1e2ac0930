"""Durations as people write them (`90`, `90s`, `10m`, `1.5h`) and as bench shows them."""

from __future__ import annotations

import math
import re

from bench.core.errors import ConfigError

UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
MAX_S = 7 * 24 * 3600  # a week: no budget of one study is longer
_DURATION = re.compile(r"([0-9]*\.?[0-9]+)\s*(s|min|m|h)?")


def parse_duration(text, where: str) -> float:
    """Seconds from `text` (a number of seconds, or a number with s, m, min or h); above 0 and at most
    a week. `where` names the input in the error."""
    if isinstance(text, bool):
        raise ConfigError(f"{where}: expected a duration like 600, 10m or 1h, got {text!r}")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        m = _DURATION.fullmatch(str(text).strip())
        if not m:
            raise ConfigError(f"{where}: expected a duration like 600, 10m or 1h, got {str(text)[:40]!r}")
        seconds = float(m.group(1)) * UNITS[m.group(2) or ""]
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_S):
        raise ConfigError(f"{where}: a duration above 0 and at most a week, got {str(text)[:40]!r}")
    return seconds


def duration_text(seconds: float) -> str:
    """`45 s`, `12 min`, `2.5 h`: to two significant figures at most, in the unit people read."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
