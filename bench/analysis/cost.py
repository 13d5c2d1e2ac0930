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

from bench.analysis.comparison import Cost, Costing, Note, Price
from bench.core.errors import ConfigError
from bench.core.text import clip, read_lines, terminal_safe

# Named instances a price may refer to (`--price hpu=dl1.24xlarge`); never applied unasked.
SHIPPED = {
    "dl1.24xlarge": {"usd_per_hour": 13.11, "devices": 8,
                     "source": "AWS EC2 on-demand price of dl1.24xlarge (8 x Gaudi HL-205), us-east-1, as of 2022"},
}
MAX_PRICES_BYTES = 1 << 20


def parse_price(spec: str, source: str = "--price", quote: bool = True) -> Price:
    """`MATCH=USD_PER_HOUR[/DEVICES]` or `MATCH=INSTANCE` (a SHIPPED name). An error quotes what was
    given only where the user typed it (`quote`): a line of a file is named, never shown (a file given
    by mistake, a .env, holds secrets in just this KEY=VALUE shape)."""
    match, sep, value = spec.partition("=")
    match, value = match.strip(), value.strip()
    if not sep or not match or not value:
        got = f", got {terminal_safe(spec, 80)!r}" if quote else ""
        raise ConfigError(f"{source}: expected LABEL_OR_DEVICE=USD_PER_HOUR[/DEVICES]{got}")
    if value in SHIPPED:
        s = SHIPPED[value]
        return Price(match=match, usd_per_hour=s["usd_per_hour"], devices=s["devices"],
                     source=f"shipped table: {s['source']}")
    m = re.fullmatch(r"\$?([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)(?:\s*/\s*([0-9]+))?", value)
    if not m:
        known = ", ".join(SHIPPED)
        raise ConfigError(f"{source}: {repr(terminal_safe(value, 40)) if quote else 'the value after ='} is neither "
                          f"USD_PER_HOUR[/DEVICES] (e.g. 13.11/8) nor a known instance ({known})")
    usd, devices = float(m.group(1)), int(m.group(2) or 1)
    if not (math.isfinite(usd) and 0 < usd <= 1e6):
        raise ConfigError(f"{source}: the hourly price must be above 0 and at most 1,000,000, got {usd:g}")
    if not 1 <= devices <= 65_536:
        raise ConfigError(f"{source}: an instance holds 1 to 65536 devices, got {devices}")
    return Price(match=match, usd_per_hour=usd, devices=devices, source=f"given with {source}")


def read_prices(path: str) -> list[Price]:
    """One price per line, as --price takes it; `#` comments, blank lines skipped."""
    where = f"--prices {clip(str(path), 200)}"
    return [parse_price(line, f"{where}:{number}", quote=False)
            for number, line in read_lines(path, "--prices", MAX_PRICES_BYTES)]


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


def devices_used(run) -> tuple[int, str]:
    """(devices the run is charged for, on what basis): its world size (`used`); for a published
    run that names no world size, every device its machine held (`held`: which did the work is not
    known, and the instance was rented whole)."""
    d = run.report.distributed
    if d is not None:
        return d.world_size, "used"
    size = run.params.get("world_size", 1)
    if type(size) is int and size >= 1:
        return size, "used"
    held = run.device.get("device_count")
    if run.published and type(held) is int and held >= 1:
        return held, "held"
    return 1, "used"


def unit_key(metric: str, serves: bool) -> tuple[str, float]:
    """(cost key, results per unit) for the cost of one unit of a workload's output."""
    if serves:
        return "usd_per_1k_requests", 1e3
    if metric == "tokens_per_s":
        return "usd_per_1m_tokens", 1e6
    return "usd_per_1k_samples", 1e3


def hourly(run, price: Price) -> float:
    """The instance's hourly price scaled to the devices the run used; a run that held its machine
    whole pays for the whole of it (an instance priced per device: as many as it held)."""
    used, basis = devices_used(run)
    if basis == "held":
        return price.usd_per_hour * max(1.0, used / price.devices) if price.devices > 1 else price.usd_per_hour
    return price.usd_per_hour * used / price.devices


def run_cost(run, costing: Costing | None, rates: tuple, per_unit_j, metric: str, serves: bool) -> Cost | None:
    """The cost of a unit of the run's output at its rates (value, low, high); None without prices."""
    if costing is None:
        return None
    key, per = unit_key(metric, serves)
    price = price_for(run, costing)
    kwh = costing.kwh_usd
    energy = per_unit_j * per / 3.6e6 * kwh if kwh is not None and per_unit_j is not None else None
    used, basis = devices_used(run)
    if price is None:
        return Cost(key=key, devices_used=used, devices_basis=basis, energy=energy, priced_energy=kwh is not None)
    usd = hourly(run, price)

    def cost(r):
        return usd / (r * 3600) * per if r else None

    return Cost(key=key, price=price, devices_used=used, devices_basis=basis, usd_per_hour_used=usd,
                value=cost(rates[0]),
                ci_low=cost(rates[2]), ci_high=cost(rates[1]), energy=energy, priced_energy=kwh is not None)


def price_notes(run, costing: Costing | None, cost: Cost | None) -> list[Note]:
    """How a run was priced, or that no price names it, when prices were given."""
    if costing is None or not costing.prices or cost is None:
        return []
    if cost.price is None:
        return [Note(code="unpriced", run=run.name, values={"label": run.report.label,
                                                            "backend": run.device.get("backend")})]
    p = cost.price
    return [Note(code="priced", run=run.name, values={"usd_per_hour": p.usd_per_hour, "devices": p.devices,
                                                      "source": p.source, "used": cost.devices_used,
                                                      "basis": cost.devices_basis, "hourly": cost.usd_per_hour_used,
                                                      "device": run.device_label})]


def unmatched_prices(runs, costing: Costing | None) -> list[Note]:
    """A price that names no run priced nothing: a typo (gpu for cuda) must not pass unnoticed."""
    if costing is None:
        return []
    used = {id(price_for(r, costing)) for r in runs}
    labels = sorted({r.report.label for r in runs if r.report.label})
    kinds = sorted({str(r.device.get("backend")) for r in runs if r.device.get("backend")})
    return [Note(code="price_unmatched", values={"match": p.match, "source": p.source, "labels": labels,
                                                 "devices": kinds}) for p in costing.prices if id(p) not in used]


def one_price_each(prices: list[Price]) -> list[Price]:
    """Prices with two different values for one label or device are refused (which would win?);
    the same price given twice counts once."""
    by_match: dict[str, Price] = {}
    for p in prices:
        old = by_match.get(p.match)
        if old is not None and (old.usd_per_hour, old.devices) != (p.usd_per_hour, p.devices):
            raise ConfigError(f"--price: two prices for {p.match!r}: {old.usd_per_hour:g}/{old.devices} ({old.source}) "
                              f"and {p.usd_per_hour:g}/{p.devices} ({p.source}); give one")
        by_match.setdefault(p.match, p)
    return list(by_match.values())
