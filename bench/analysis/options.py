"""What `bench compare` takes to judge runs: the baseline, the verdict rule, gates and prices."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bench.analysis.comparison import Costing, Gate
from bench.analysis.cost import one_price_each, parse_price, read_prices
from bench.core.errors import ConfigError
from bench.core.options import Options, opt
from bench.model.derive import WORK


@dataclass(frozen=True)
class CompareOptions(Options):
    title = "comparing"
    description = ("Runs are paired by workload identity; a speedup's interval includes run-to-run variance "
                   "(each repeat a fresh process) and a verdict needs enough repeats and an interval clear of "
                   "the band.")

    baseline: str | None = opt(None, "the run others are compared to (default: the first file's run)",
                               metavar="LABEL_OR_FILE")
    force: bool = opt(False, "compare runs whose workload identity differs (marked)")
    min_repeats: int = opt(3, "repeats each side needs for a faster/slower/same verdict", minimum=1, maximum=1000)
    min_effect: str = opt("2%", "differences inside this band read 'same within PCT'; a verdict needs the interval "
                                "beyond it", metavar="PCT")
    fail_on: tuple[str, ...] | None = opt(None, "a gate: exit 1 when a run is conclusively worse than the baseline "
                                                "by more than PCT on a throughput or on any figure a workload "
                                                "declares, in its direction (a throughput's whole 95 % interval "
                                                "below 1 - PCT of the baseline's; a latency's above 1 + PCT), exit 3 "
                                                "when that cannot be ruled out, saying what would settle it; "
                                                "repeatable; e.g. tokens_per_s:5%, ttft_s.p99:10%",
                                          metavar="METRIC:PCT")
    price: tuple[str, ...] | None = opt(None, "price runs: per instance-hour, for an instance of DEVICES devices "
                                              "(default 1); the cost is scaled to the devices a run used. "
                                              "LABEL_OR_DEVICE is a run's label or a device kind (hpu, cuda, cpu); "
                                              "the price may name a known instance instead: hpu=dl1.24xlarge. "
                                              "Repeatable; e.g. hpu=13.11/8",
                                        metavar="LABEL_OR_DEVICE=USD_PER_HOUR[/DEVICES]")
    prices: str | None = opt(None, "prices, one LABEL_OR_DEVICE=USD_PER_HOUR[/DEVICES] per line (# comments)",
                             metavar="FILE")
    kwh_price: float | None = opt(None, "price of a kWh in USD: adds the cost of the device energy each run "
                                        "measured", exclusive_minimum=0, maximum=100, metavar="USD")

    def check(self) -> None:
        self.effect()
        self.gates()

    def effect(self) -> float:
        """--min-effect as a fraction."""
        return percent("--min-effect", self.min_effect)

    def gates(self) -> tuple[Gate, ...]:
        return tuple(parse_gate(spec) for spec in self.fail_on or ())

    def costing(self) -> Costing | None:
        """Prices from --price and --prices (the file read now), and --kwh-price; None when none
        was given (no cost columns)."""
        prices = [parse_price(p) for p in self.price or ()]
        if self.prices:
            prices += read_prices(self.prices)
        if not prices and self.kwh_price is None:
            return None
        return Costing(prices=tuple(one_price_each(prices)), kwh_usd=self.kwh_price)


def percent(flag: str, text: str) -> float:
    try:
        value = float(text.strip().rstrip("%")) / 100
    except ValueError:
        raise ConfigError(f"{flag}: expected a percentage like 2%, got {text!r}") from None
    if not 0 <= value < 1:
        raise ConfigError(f"{flag}: between 0% and 100%, got {text!r}")
    return value


def parse_gate(spec: str) -> Gate:
    """`METRIC:PCT` of --fail-on: a throughput or a declared figure's key (which workloads declare it
    is known once the reports are read) and a limit between 0 and 100 %."""
    metric, _, pct = spec.partition(":")
    try:
        limit = float(pct.strip().rstrip("%")) / 100
    except ValueError:
        raise ConfigError(f"--fail-on: expected METRIC:PCT like tokens_per_s:5% or ttft_s.p99:10%, got {spec!r}") \
            from None
    bad_name = not re.fullmatch(r"[A-Za-z0-9_@.]{1,120}", metric) or (metric.endswith("_per_s") and metric not in WORK)
    if bad_name or not 0 < limit < 1:
        raise ConfigError(f"--fail-on: metric must be one of {', '.join(WORK)} or a figure a workload declares (a "
                          f"column key of --json, e.g. ttft_s.p99), and PCT between 0 and 100, got {spec!r}")
    return Gate(metric=metric, limit=limit)
