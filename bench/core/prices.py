"""A price of compute time, as bench reads one: `MATCH=USD_PER_HOUR[/DEVICES]` — an instance of DEVICES
devices (1 by default) at USD an hour, matching a run's label or a device kind — or `MATCH=INSTANCE`,
a named instance of SHIPPED. `bench compare --price` and a study's `[prices]` table both read it
here; bench/analysis/cost.py applies it."""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from bench.core.errors import ConfigError
from bench.core.text import terminal_safe

# Named instances a price may refer to (`--price hpu=dl1.24xlarge`); never applied unasked.
SHIPPED = {
    "dl1.24xlarge": {"usd_per_hour": 13.11, "devices": 8,
                     "source": "AWS EC2 on-demand price of dl1.24xlarge (8 x Gaudi HL-205), us-east-1, as of 2022"},
}
_VALUE = re.compile(r"\$?([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)(?:\s*/\s*([0-9]+))?")


class PriceSpec(NamedTuple):
    match: str
    usd_per_hour: float
    devices: int
    source: str


def parse_price(spec: str, source: str = "--price", quote: bool = True) -> PriceSpec:
    """`MATCH=USD_PER_HOUR[/DEVICES]` or `MATCH=INSTANCE` (a SHIPPED name); `source` names where it was
    given, in errors and in the price's record. An error quotes what was given only where the user typed
    it (`quote`): a line of a file is named, never shown (a file given by mistake, a .env, holds secrets in
    just this KEY=VALUE shape)."""
    match, sep, value = spec.partition("=")
    match, value = match.strip(), value.strip()
    if not sep or not match or not value:
        got = f", got {terminal_safe(spec, 80)!r}" if quote else ""
        raise ConfigError(f"{source}: expected LABEL_OR_DEVICE=USD_PER_HOUR[/DEVICES]{got}")
    if value in SHIPPED:
        s = SHIPPED[value]
        return PriceSpec(match, s["usd_per_hour"], s["devices"], f"shipped table: {s['source']}")
    m = _VALUE.fullmatch(value)
    if not m:
        known = ", ".join(SHIPPED)
        raise ConfigError(f"{source}: {repr(terminal_safe(value, 40)) if quote else 'the value after ='} is neither "
                          f"USD_PER_HOUR[/DEVICES] (e.g. 13.11/8) nor a known instance ({known})")
    usd, devices = float(m.group(1)), int(m.group(2) or 1)
    if not (math.isfinite(usd) and 0 < usd <= 1e6):
        raise ConfigError(f"{source}: the hourly price must be above 0 and at most 1,000,000, got {usd:g}")
    if not 1 <= devices <= 65_536:
        raise ConfigError(f"{source}: an instance holds 1 to 65536 devices, got {devices}")
    return PriceSpec(match, usd, devices, f"given with {source}")
