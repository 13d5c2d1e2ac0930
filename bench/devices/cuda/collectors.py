"""NVIDIA telemetry: NVML through nvidia-ml-py, with `nvidia-smi --query-gpu` CSV as the fall-back.
Both are tables on the shared bases (bench/devices/library.py, bench/devices/smi.py)."""

from __future__ import annotations

from bench.devices.collectors import CollectorUnavailable
from bench.devices.library import LibraryCollector
from bench.devices.smi import SmiCollector, hex_int, parse_csv


def _scaled(value, factor):
    return None if value is None else value * factor


class NvmlCollector(LibraryCollector):
    name = "nvml"
    source = "nvidia-ml-py"
    prefix = "gpu"
    device_kind = "cuda"

    def load(self):
        try:
            import pynvml
        except ImportError:
            raise CollectorUnavailable("nvidia-ml-py not installed (pip install 'bench[cuda]')") from None
        return pynvml

    def start(self) -> None:
        try:
            self.lib.nvmlInit()
        except self.lib.NVMLError as exc:
            raise CollectorUnavailable(f"nvmlInit failed: {exc}") from None

    def stop(self) -> None:
        self.lib.nvmlShutdown()

    def errors(self) -> tuple:
        return (self.lib.NVMLError,)

    def not_supported(self, exc) -> bool:
        return isinstance(exc, self.lib.NVMLError_NotSupported)

    def handle(self, device: dict):
        return device["index"], self.lib.nvmlDeviceGetHandleByIndex(device["index"])

    def _reasons(self, h):
        fn = getattr(self.lib, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
            self.lib.nvmlDeviceGetCurrentClocksThrottleReasons
        return fn(h)

    QUERIES = (
        ("util_percent", lambda c, h: float(c.lib.nvmlDeviceGetUtilizationRates(h).gpu)),
        ("mem_util_percent", lambda c, h: float(c.lib.nvmlDeviceGetUtilizationRates(h).memory)),
        ("mem_used_bytes", lambda c, h: c.lib.nvmlDeviceGetMemoryInfo(h, version=c.lib.nvmlMemory_v2).used),
        ("mem_total_bytes", lambda c, h: c.lib.nvmlDeviceGetMemoryInfo(h, version=c.lib.nvmlMemory_v2).total),
        ("power_w", lambda c, h: c.lib.nvmlDeviceGetPowerUsage(h) / 1000.0),  # mW
        ("energy_j", lambda c, h: c.lib.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0),  # mJ
        ("temp_c", lambda c, h: c.lib.nvmlDeviceGetTemperature(h, c.lib.NVML_TEMPERATURE_GPU)),
        ("sm_clock_hz", lambda c, h: c.lib.nvmlDeviceGetClockInfo(h, c.lib.NVML_CLOCK_SM) * 1e6),  # MHz
        ("throttle_reasons", lambda c, h: c._reasons(h)),
    )


def parse_nvidia_smi(text: str) -> list[dict]:
    """`nvidia-smi --query-gpu=... --format=csv[,nounits]` output: one dict per GPU, keyed by the
    header's field names, values in base units (bytes, W, Hz, %, °C); missing markers are None."""
    return parse_csv(text)


class NvidiaSmiCollector(SmiCollector):
    name = "nvml"
    source = "nvidia-smi"
    tool = "nvidia-smi"
    prefix = "gpu"
    device_kind = "cuda"
    QUERY = ("index", "uuid", "name", "utilization.gpu", "utilization.memory", "memory.used", "memory.total",
             "power.draw", "temperature.gpu", "clocks.sm", "clocks_throttle_reasons.active")
    query_flags = ("--query-gpu=" + ",".join(QUERY), "--format=csv,nounits")
    FIELDS = {"utilization.gpu": ("util_percent", float), "utilization.memory": ("mem_util_percent", float),
              "memory.used": ("mem_used_bytes", float), "memory.total": ("mem_total_bytes", float),
              "power.draw": ("power_w", float), "temperature.gpu": ("temp_c", float),
              "clocks.current.sm": ("sm_clock_hz", float), "clocks.sm": ("sm_clock_hz", float),
              "clocks_throttle_reasons.active": ("throttle_reasons", hex_int),
              "clocks_event_reasons.active": ("throttle_reasons", hex_int)}

    def parse(self, text: str) -> list[dict]:
        return parse_nvidia_smi(text)
