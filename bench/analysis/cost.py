"""What a result costs: instance prices scaled to the devices a run used, and measured energy.

A price is per instance-hour for an instance holding some number of devices: `hpu=13.11/8` is an
instance of 8 devices at $13.11 an hour. A run on w devices uses w/8 of it, so its hour costs
13.11 × w / 8 — the output says so. The cost of a result is that hourly cost over the results made
in an hour: USD per 1M generated tokens (generation), per 1k samples (fine-tune, retrieval), per 1k
requests (serving, at the rate achieved — an instance is paid while it idles between requests — and
at capacity). The interval is carried from the throughput's (cost is 1 / throughput: the interval's
ends swap). With --kwh-price, the device energy the run measured, priced per kWh, is shown beside it.

Prices come only from the user (`--price`, `--prices FILE`) or, when the user names an instance in
it, from SHIPPED — each entry saying where its price came from and when. No price, no cost.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bench.core.errors import ConfigError
from bench.core.text import read_lines

# Named instances a price may refer to (`--price hpu=dl1.24xlarge`); never applied unasked.
SHIPPED = {
    "dl1.24xlarge": {"usd_per_hour": 13.11, "devices": 8,
                     "source": "AWS EC2 on-demand price of dl1.24xlarge (8 x Gaudi HL-205), us-east-1, as of 2022"},
}
MAX_PRICES_BYTES = 1 << 20


@dataclass(frozen=True)
class Price:
    match: str  # a run's label or display name, or a device kind (hpu, cuda, cpu)
    usd_per_hour: float
    devices: int  # devices the instance holds
    source: str  # where the price came from


@dataclass(frozen=True)
class Costing:
    prices: tuple[Price, ...] = ()
    kwh_usd: float | None = None


def parse_price(spec: str, source: str = "--price") -> Price:
    """`MATCH=USD_PER_HOUR[/DEVICES]` or `MATCH=INSTANCE` (a SHIPPED name)."""
    match, sep, value = spec.partition("=")
    match, value = match.strip(), value.strip()
    if not sep or not match or not value:
        raise ConfigError(f"{source}: expected LABEL_OR_DEVICE=USD_PER_HOUR[/DEVICES], got {spec[:80]!r}")
    if value in SHIPPED:
        s = SHIPPED[value]
        return Price(match, s["usd_per_hour"], s["devices"], f"shipped table: {s['source']}")
    m = re.fullmatch(r"\$?([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)(?:\s*/\s*([0-9]+))?", value)
    if not m:
        known = ", ".join(SHIPPED)
        raise ConfigError(f"{source}: {value[:40]!r} is neither USD_PER_HOUR[/DEVICES] (e.g. 13.11/8) nor a known "
                          f"instance ({known})")
    usd, devices = float(m.group(1)), int(m.group(2) or 1)
    if not (math.isfinite(usd) and 0 < usd <= 1e6):
        raise ConfigError(f"{source}: the hourly price must be above 0 and at most 1,000,000, got {usd:g}")
    if not 1 <= devices <= 65_536:
        raise ConfigError(f"{source}: an instance holds 1 to 65536 devices, got {devices}")
    return Price(match, usd, devices, f"given with {source}")


def read_prices(path: str) -> list[Price]:
    """One price per line, as --price takes it; `#` comments, blank lines skipped."""
    return [parse_price(line, f"--prices {path}:{number}") for number, line in read_lines(path, "--prices",
                                                                                         MAX_PRICES_BYTES)]


def kwh_price(text: str) -> float:
    try:
        value = float(text.strip().lstrip("$"))
    except ValueError:
        raise ConfigError(f"--kwh-price: expected USD per kWh like 0.15, got {text[:40]!r}") from None
    if not (math.isfinite(value) and 0 < value <= 100):
        raise ConfigError(f"--kwh-price: between 0 and 100 USD per kWh, got {text[:40]!r}")
    return value


def price_for(run, costing: Costing | None) -> Price | None:
    """The price that names this run: by its label or display name first, then by its device kind."""
    if costing is None:
        return None
    for p in costing.prices:
        if p.match in (run.report.label, run.name):
            return p
    for p in costing.prices:
        if p.match == run.device.get("backend"):
            return p
    return None


def devices_used(run) -> int:
    d = run.report.distributed
    return d.world_size if d is not None else 1


def unit_of(metric: str, serves: bool) -> tuple[str, float, str]:
    """(record key, results per unit, words) for the cost of one unit of a workload's output."""
    if serves:
        return "usd_per_1k_requests", 1e3, "USD / 1k requests"
    if metric == "tokens_per_s":
        return "usd_per_1m_tokens", 1e6, "USD / 1M tokens"
    return "usd_per_1k_samples", 1e3, "USD / 1k samples"


def run_cost(run, costing: Costing | None, rate, rate_lo, rate_hi, per_unit_j, metric: str, serves: bool) -> dict:
    """The cost fields of one run's record (empty without a price or a kWh price)."""
    key, per, _ = unit_of(metric, serves)
    out: dict = {}
    price = price_for(run, costing)
    if price is not None:
        hourly = price.usd_per_hour * devices_used(run) / price.devices

        def cost(r):
            return hourly / (r * 3600) * per if r else None

        out.update({key: cost(rate), f"{key}_ci_low": cost(rate_hi), f"{key}_ci_high": cost(rate_lo),
                    "price_usd_per_hour": price.usd_per_hour, "price_devices": price.devices,
                    "devices_used": devices_used(run), "usd_per_hour_used": hourly, "price_source": price.source})
    if costing is not None and costing.kwh_usd is not None:
        out[f"energy_{key}"] = per_unit_j * per / 3.6e6 * costing.kwh_usd if per_unit_j is not None else None
    return out


def price_note(run, costing: Costing | None) -> str | None:
    """How a run was priced, in words; or why it was not, when prices were given."""
    if costing is None or not costing.prices:
        return None
    price = price_for(run, costing)
    if price is None:
        return (f"no price matches it (label {run.report.label!r}, device {run.device.get('backend')!r}): no cost "
                "(--price LABEL_OR_DEVICE=USD_PER_HOUR[/DEVICES])")
    used = devices_used(run)
    hourly = price.usd_per_hour * used / price.devices
    return (f"priced at ${price.usd_per_hour:g}/h for an instance of {price.devices} device(s) ({price.source}); "
            f"the run used {used}, so its hour costs ${hourly:.4g}")
