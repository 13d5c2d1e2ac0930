"""Gaudi telemetry: HLML through habana-pyhlml, with `hl-smi -Q ... -f csv` as the fall-back.
Both are tables on the shared bases (bench/devices/library.py, bench/devices/smi.py)."""

from __future__ import annotations

from bench.devices.collectors import CollectorUnavailable
from bench.devices.library import LibraryCollector
from bench.devices.smi import SmiCollector, parse_csv

AIP_SENSOR = 0  # HLML_TEMPERATURE_ON_AIP


class HlmlCollector(LibraryCollector):
    name = "habana"
    source = "habana-pyhlml"
    prefix = "hpu"
    device_kind = "hpu"

    def load(self):
        try:
            import pyhlml
        except ImportError:
            raise CollectorUnavailable("habana-pyhlml not installed (pip install 'bench[hpu]')") from None
        return pyhlml

    def start(self) -> None:
        try:
            self.lib.hlmlInit()
        except self.lib.HLMLError as exc:
            raise CollectorUnavailable(f"hlmlInit failed ({type(exc).__name__}): libhlml.so missing or no Gaudi "
                                       "driver") from None

    def stop(self) -> None:
        self.lib.hlmlShutdown()

    def errors(self) -> tuple:
        return (self.lib.HLMLError,)

    def handle(self, device: dict):
        return device["index"], self.lib.hlmlDeviceGetHandleByIndex(device["index"])

    QUERIES = (
        ("util_percent", lambda c, h: float(c.lib.hlmlDeviceGetUtilizationRates(h).aip)),
        ("mem_used_bytes", lambda c, h: c.lib.hlmlDeviceGetMemoryInfo(h).used),
        ("mem_total_bytes", lambda c, h: c.lib.hlmlDeviceGetMemoryInfo(h).total),
        ("power_w", lambda c, h: c.lib.hlmlDeviceGetPowerUsage(h) / 1000.0),  # mW
        ("energy_j", lambda c, h: c.lib.hlmlDeviceGetTotalEnergyConsumption(h) / 1000.0),  # mJ
        ("temp_c", lambda c, h: c.lib.hlmlDeviceGetTemperature(h, AIP_SENSOR)),
    )


def parse_hl_smi(text: str) -> list[dict]:
    """`hl-smi -Q ... -f csv[,nounits]` output: one dict per Gaudi card, keyed by the header's field
    names, values in base units (bytes, W, %, °C); missing markers are None."""
    return parse_csv(text)


class HlSmiCollector(SmiCollector):
    name = "habana"
    source = "hl-smi"
    tool = "hl-smi"
    prefix = "hpu"
    device_kind = "hpu"
    QUERY = ("index", "module_id", "uuid", "name", "utilization.aip", "memory.used", "memory.total", "power.draw",
             "temperature.aip")
    query_flags = ("-Q", ",".join(QUERY), "-f", "csv,nounits")
    FIELDS = {"utilization.aip": ("util_percent", float), "memory.used": ("mem_used_bytes", float),
              "memory.total": ("mem_total_bytes", float), "power.draw": ("power_w", float),
              "temperature.aip": ("temp_c", float)}

    def parse(self, text: str) -> list[dict]:
        return parse_hl_smi(text)
