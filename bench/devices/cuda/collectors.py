"""NVIDIA collector: NVML through nvidia-ml-py, with `nvidia-smi --query-gpu` CSV as the fall-back."""

from __future__ import annotations

from bench.devices.collectors import Collector, CollectorUnavailable
from bench.devices.smi import SmiPoller, find_tool, mib_bytes, parse_smi_csv

SMI_FIELDS = ["index", "name", "utilization.gpu", "utilization.memory", "memory.used", "memory.total",
              "power.draw", "temperature.gpu", "clocks.sm"]


def _hz(mhz):
    return None if mhz is None else mhz * 1e6


class NvmlCollector(Collector):
    name = "nvml"
    source = "nvidia-ml-py"

    def open(self) -> None:
        try:
            import pynvml
        except ImportError:
            raise CollectorUnavailable("nvidia-ml-py not installed (pip install 'bench[cuda]')") from None
        self.nv = pynvml
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise CollectorUnavailable(f"nvmlInit failed: {exc}") from None
        self.handles = {i: pynvml.nvmlDeviceGetHandleByIndex(i) for i in self.spec.get("indices", [0])}
        self.unsupported: set[str] = set()

    def _query(self, key: str, fn, *args):
        """Call fn; None when the device does not support it (and stop asking) or it fails."""
        if key in self.unsupported:
            return None
        try:
            return fn(*args)
        except self.nv.NVMLError_NotSupported:
            self.unsupported.add(key)
        except self.nv.NVMLError:
            pass
        return None

    def energy_j(self, index: int) -> float | None:
        mj = self._query("energy", self.nv.nvmlDeviceGetTotalEnergyConsumption, self.handles[index])
        return None if mj is None else mj / 1000.0

    def _reasons(self, handle):
        fn = getattr(self.nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
            self.nv.nvmlDeviceGetCurrentClocksThrottleReasons
        return self._query("reasons", fn, handle)

    def sample(self) -> dict:
        nv, out = self.nv, {}
        for i, h in self.handles.items():
            util = self._query("util", nv.nvmlDeviceGetUtilizationRates, h)
            mem = self._query("mem", lambda hh: nv.nvmlDeviceGetMemoryInfo(hh, version=nv.nvmlMemory_v2), h)
            power = self._query("power", nv.nvmlDeviceGetPowerUsage, h)
            p = f"gpu{i}."
            out.update({
                p + "util_percent": None if util is None else float(util.gpu),
                p + "mem_util_percent": None if util is None else float(util.memory),
                p + "mem_used_bytes": None if mem is None else mem.used,
                p + "mem_total_bytes": None if mem is None else mem.total,
                p + "power_w": None if power is None else power / 1000.0,
                p + "energy_j": self.energy_j(i),
                p + "temp_c": self._query("temp", nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU),
                p + "sm_clock_hz": _hz(self._query("clock", nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM)),
                p + "clock_event_reasons": self._reasons(h),
            })
        return out

    def close(self) -> None:
        try:
            self.nv.nvmlShutdown()
        except self.nv.NVMLError:
            pass


def nvidia_smi_sample(rows: list[dict], indices) -> dict:
    """Map parsed nvidia-smi rows to collector keys (MiB -> bytes, missing -> None)."""
    out = {}
    for row in rows:
        i = int(row["index"]) if row["index"] is not None else None
        if i not in indices:
            continue
        p = f"gpu{i}."
        out.update({p + "util_percent": row["utilization.gpu"],
                    p + "mem_util_percent": row["utilization.memory"],
                    p + "mem_used_bytes": mib_bytes(row["memory.used"]),
                    p + "mem_total_bytes": mib_bytes(row["memory.total"]),
                    p + "power_w": row["power.draw"], p + "temp_c": row["temperature.gpu"],
                    p + "sm_clock_hz": _hz(row["clocks.sm"])})
    return out


def parse_nvidia_smi(text: str, indices) -> dict:
    return nvidia_smi_sample(parse_smi_csv(text, SMI_FIELDS), indices)


class NvidiaSmiCollector(Collector):
    name = "nvml"
    source = "nvidia-smi"

    def open(self) -> None:
        tool = find_tool("nvidia-smi")
        self.indices = list(self.spec.get("indices", [0]))
        argv = [tool, "--query-gpu=" + ",".join(SMI_FIELDS), "--format=csv,noheader,nounits"]
        self.poller = SmiPoller(argv, SMI_FIELDS)
        if self.poller.poll() is None:
            raise CollectorUnavailable(self.poller.last_error)

    def sample(self) -> dict:
        rows = self.poller.poll()
        if rows is None:
            return {"nvml.error": self.poller.last_error}
        return nvidia_smi_sample(rows, self.indices)
