"""Gaudi collector: HLML through habana-pyhlml, with `hl-smi -Q ... -f csv` as the fall-back."""

from __future__ import annotations

import contextlib
import io

from bench.devices.collectors import Collector, CollectorUnavailable
from bench.devices.smi import SmiPoller, find_tool, mib_bytes, parse_smi_csv

HL_FIELDS = ["index", "name", "utilization.aip", "memory.used", "memory.total", "power.draw",
             "temperature.aip"]
AIP_SENSOR = 0  # HLML_TEMPERATURE_ON_AIP


class HlmlCollector(Collector):
    name = "habana"
    source = "habana-pyhlml"

    def open(self) -> None:
        try:
            import pyhlml
        except ImportError:
            raise CollectorUnavailable("habana-pyhlml not installed (pip install 'bench[hpu]')") from None
        self.hl = pyhlml
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # hlmlInit prints when libhlml is missing
                pyhlml.hlmlInit()
        except pyhlml.HLMLError as exc:
            raise CollectorUnavailable(f"hlmlInit failed ({type(exc).__name__}): libhlml.so missing "
                                       "or no Gaudi driver") from None
        self.handles = {i: pyhlml.hlmlDeviceGetHandleByIndex(i) for i in self.spec.get("indices", [0])}
        self.sensor = _aip_sensor()

    def _query(self, fn, *args):
        try:
            return fn(*args)
        except self.hl.HLMLError:
            return None

    def energy_j(self, index: int) -> float | None:
        mj = self._query(self.hl.hlmlDeviceGetTotalEnergyConsumption, self.handles[index])
        return None if mj is None else mj / 1000.0

    def sample(self) -> dict:
        hl, out = self.hl, {}
        for i, h in self.handles.items():
            util = self._query(hl.hlmlDeviceGetUtilizationRates, h)
            mem = self._query(hl.hlmlDeviceGetMemoryInfo, h)
            power = self._query(hl.hlmlDeviceGetPowerUsage, h)
            p = f"hpu{i}."
            out.update({p + "util_percent": None if util is None else float(util.aip),
                        p + "mem_used_bytes": None if mem is None else mem.used,
                        p + "mem_total_bytes": None if mem is None else mem.total,
                        p + "power_w": None if power is None else power / 1000.0,
                        p + "energy_j": self.energy_j(i),
                        p + "temp_c": self._query(hl.hlmlDeviceGetTemperature, h, self.sensor)})
        return out

    def close(self) -> None:
        self._query(self.hl.hlmlShutdown)


def _aip_sensor():
    try:
        from pyhlml.hlml_types import HLML_TEMP_SENS

        return HLML_TEMP_SENS.HLML_TEMPERATURE_ON_AIP
    except (ImportError, AttributeError):
        return AIP_SENSOR


def hl_smi_sample(rows: list[dict], indices) -> dict:
    out = {}
    for row in rows:
        i = int(row["index"]) if row["index"] is not None else None
        if i not in indices:
            continue
        p = f"hpu{i}."
        out.update({p + "util_percent": row["utilization.aip"],
                    p + "mem_used_bytes": mib_bytes(row["memory.used"]),
                    p + "mem_total_bytes": mib_bytes(row["memory.total"]),
                    p + "power_w": row["power.draw"], p + "temp_c": row["temperature.aip"]})
    return out


def parse_hl_smi(text: str, indices, fields=HL_FIELDS) -> dict:
    return hl_smi_sample(parse_smi_csv(text, list(fields)), indices)


class HlSmiCollector(Collector):
    name = "habana"
    source = "hl-smi"

    def open(self) -> None:
        tool = find_tool("hl-smi")
        self.indices = list(self.spec.get("indices", [0]))
        argv = [tool, "-Q", ",".join(HL_FIELDS), "-f", "csv,noheader,nounits"]
        self.poller = SmiPoller(argv, HL_FIELDS)
        if self.poller.poll() is None:
            raise CollectorUnavailable(self.poller.last_error)

    def sample(self) -> dict:
        rows = self.poller.poll()
        if rows is None:
            return {"habana.error": self.poller.last_error}
        return hl_smi_sample(rows, self.indices)
