"""NVIDIA telemetry: NVML through nvidia-ml-py, with `nvidia-smi --query-gpu` CSV as the fall-back.
Both are tables on the shared bases (bench/devices/library.py, bench/devices/smi.py)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.devices.collectors import CollectorUnavailable
from bench.devices.library import LibraryCollector
from bench.devices.owned import OwnProcesses
from bench.devices.smi import SmiCollector, hex_int, parse_csv


def _scaled(value, factor):
    return None if value is None else value * factor


@dataclass
class GpuHandle:
    """What the queries need of one GPU: its handle (a MIG instance's where MIG is used) and the whole
    GPU's, which power, energy and temperature are read from."""

    device: object
    whole: object
    mig: bool
    uuid: str | None


class NvmlCollector(LibraryCollector):
    """GPUs are found by UUID — what torch reports for its CUDA device, whatever CUDA's ordering and
    CUDA_VISIBLE_DEVICES — and keyed by their NVML index."""

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
        self.reasons_fn = self.temp_fn = None
        self.own = OwnProcesses(self.spec.get("own_pid"), self.spec.get("own_processes", 1),
                                self.spec.get("own_pids", ()), self.spec.get("own_on_device", 0))

    def claim(self, pids, on_device: int = 0) -> None:
        """The run's claim of processes outside its tree (bench/devices/owned.py)."""
        self.own.claim(pids, on_device)

    def stop(self) -> None:
        self.lib.nvmlShutdown()

    def errors(self) -> tuple:
        return (self.lib.NVMLError,)

    def not_supported(self, exc) -> bool:
        """Errors that will not change: not supported, no permission (a MIG container's parent GPU), and a
        symbol the driver's library lacks."""
        return isinstance(exc, (self.lib.NVMLError_NotSupported, self.lib.NVMLError_NoPermission,
                                self.lib.NVMLError_FunctionNotFound))

    def handle(self, device: dict):
        """Inside a MIG container the parent GPU's handle can refuse everything but its UUID and MIG devices
        (NoPermission: nvidia-container-toolkit#842, k8s-device-plugin#1683): the instance is still watched,
        its parent's figures are null, and the key index is found by enumeration."""
        lib = self.lib
        h = lib.nvmlDeviceGetHandleByUUID(device["uuid"]) if device.get("uuid") else \
            lib.nvmlDeviceGetHandleByIndex(device["index"])
        is_mig = bool(self._call(lambda: lib.nvmlDeviceIsMigDeviceHandle(h), False))  # a c_uint: bool(), not ==
        whole = self._call(lambda: lib.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(h), None) if is_mig else h
        mig_mode = self._call(lambda: lib.nvmlDeviceGetMigMode(whole)[0], 0) if whole is not None else 0
        uuid = device.get("uuid") or self._call(lambda: lib.nvmlDeviceGetUUID(h), None)
        index = self._call(lambda: lib.nvmlDeviceGetIndex(whole), None) if whole is not None else None
        if index is None:
            index = _index_holding(lib, uuid, self.errors())
        return index, GpuHandle(h, whole, is_mig or mig_mode == 1, uuid)

    def _call(self, fn, default):
        try:
            return fn()
        except self.errors():
            return default

    def identity(self, g: GpuHandle) -> dict:
        name = self._call(lambda: self.lib.nvmlDeviceGetName(g.whole if g.whole is not None else g.device), None)
        return {"uuid": g.uuid, "name": name.decode() if isinstance(name, bytes) else name, "mig": g.mig}

    def _reasons(self, g: GpuHandle) -> int:
        """Clock-event reasons; older drivers' NVML lacks that symbol (FunctionNotFound): then the
        deprecated throttle-reasons call, which has the same bits."""
        if self.reasons_fn is None:
            try:
                value = self.lib.nvmlDeviceGetCurrentClocksEventReasons(self._whole(g))
                self.reasons_fn = self.lib.nvmlDeviceGetCurrentClocksEventReasons
                return value
            except (AttributeError, self.lib.NVMLError_FunctionNotFound):
                self.reasons_fn = self.lib.nvmlDeviceGetCurrentClocksThrottleReasons
        return self.reasons_fn(self._whole(g))

    def _processes(self, g: GpuHandle, others: bool):
        pids = {p.pid for p in self.lib.nvmlDeviceGetComputeRunningProcesses(g.device)}
        return self.own.others(pids) if others else len(pids)

    def _whole(self, g: GpuHandle):
        """The GPU's own handle (power, energy, temperature and clocks are the whole GPU's, MIG or not)."""
        if g.whole is None:
            raise self.lib.NVMLError_NoPermission()
        return g.whole

    def _temperature(self, g: GpuHandle):
        """nvmlDeviceGetTemperature is deprecated and goes in CUDA 14 (nvidia-ml-py 13.615 pynvml.py);
        nvmlDeviceGetTemperatureV replaces it, absent from older drivers and bindings: then the old call."""
        if self.temp_fn is None:
            try:
                value = self.lib.nvmlDeviceGetTemperatureV(self._whole(g), self.lib.NVML_TEMPERATURE_GPU)
                self.temp_fn = self.lib.nvmlDeviceGetTemperatureV
                return value
            except (AttributeError, self.lib.NVMLError_FunctionNotFound):
                self.temp_fn = self.lib.nvmlDeviceGetTemperature
        return self.temp_fn(self._whole(g), self.lib.NVML_TEMPERATURE_GPU)

    def _power_instant(self, g: GpuHandle):
        """NVML_FI_DEV_POWER_INSTANT (field 186; nvidia-ml-py pynvml.py) through nvmlDeviceGetFieldValues, in
        mW: the instantaneous draw on Hopper and newer, where nvmlDeviceGetPowerUsage is a 1-s average. Each
        field carries its own return code: NOT_SUPPORTED where the GPU has no such field."""
        [value] = self.lib.nvmlDeviceGetFieldValues(self._whole(g), [self.lib.NVML_FI_DEV_POWER_INSTANT])
        if value.nvmlReturn != self.lib.NVML_SUCCESS:
            raise self.lib.NVMLError(value.nvmlReturn)
        return value.value.uiVal / 1000.0

    QUERIES = (
        ("util_percent", lambda c, g: float(c.lib.nvmlDeviceGetUtilizationRates(g.device).gpu)),
        ("mem_util_percent", lambda c, g: float(c.lib.nvmlDeviceGetUtilizationRates(g.device).memory)),
        ("mem_used_bytes", lambda c, g: c.lib.nvmlDeviceGetMemoryInfo(g.device, version=c.lib.nvmlMemory_v2).used),
        ("mem_total_bytes", lambda c, g: c.lib.nvmlDeviceGetMemoryInfo(g.device, version=c.lib.nvmlMemory_v2).total),
        ("power_w", lambda c, g: c.lib.nvmlDeviceGetPowerUsage(c._whole(g)) / 1000.0),  # mW; 1-s average on Ampere+
        ("power_instant_w", lambda c, g: c._power_instant(g)),
        ("energy_j", lambda c, g: c.lib.nvmlDeviceGetTotalEnergyConsumption(c._whole(g)) / 1000.0),  # mJ
        ("temp_c", lambda c, g: c._temperature(g)),
        ("sm_clock_hz", lambda c, g: c.lib.nvmlDeviceGetClockInfo(c._whole(g), c.lib.NVML_CLOCK_SM) * 1e6),  # MHz
        ("throttle_reasons", lambda c, g: c._reasons(g)),
        ("processes", lambda c, g: c._processes(g, others=False)),
        ("other_processes", lambda c, g: c._processes(g, others=True)),
    )


def _mig_devices(lib, gpu, errors) -> list:
    """The MIG device handles of a GPU (empty slots and refusals skipped)."""
    out = []
    try:
        slots = lib.nvmlDeviceGetMaxMigDeviceCount(gpu)
    except errors:
        return out
    for i in range(slots):
        try:
            out.append(lib.nvmlDeviceGetMigDeviceHandleByIndex(gpu, i))
        except errors:
            continue
    return out


def all_uuids(lib, errors) -> list[tuple[int, str]]:
    """(NVML index, UUID) of every GPU and every MIG device on it, as NVML spells them."""
    out = []
    try:
        count = lib.nvmlDeviceGetCount()
    except errors:
        return out
    for i in range(count):
        try:
            gpu = lib.nvmlDeviceGetHandleByIndex(i)
        except errors:
            continue
        for h in [gpu, *_mig_devices(lib, gpu, errors)]:
            try:
                out.append((i, _text(lib.nvmlDeviceGetUUID(h))))
            except errors:
                continue
    return out


def _index_holding(lib, uuid: str | None, errors) -> int:
    """The NVML index of the GPU that is, or holds the MIG device, `uuid` (0 where none says)."""
    return next((i for i, u in all_uuids(lib, errors) if uuid and u == uuid), 0)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def resolve_uuid(lib, torch_uuid: str | None, hint: str | None) -> str | None:
    """The full UUID NVML knows a CUDA device by. torch prints the UUID without NVML's "GPU-" or "MIG-"
    prefix; CUDA_VISIBLE_DEVICES and the Kubernetes device plugin's NVIDIA_VISIBLE_DEVICES may name the
    device by a MIG- UUID or by a prefix of one (CUDA accepts abbreviated UUIDs, NVML needs them whole). So:
    the hint where it is whole or the prefix of exactly one UUID NVML lists, else torch's hex under
    either prefix; None where NVML knows none of them."""
    errors = (lib.NVMLError,)
    known = [u for _, u in all_uuids(lib, errors)]
    bare = (torch_uuid or "").removeprefix("GPU-").removeprefix("MIG-")
    if hint and hint.startswith(("GPU-", "MIG-")):
        matches = [u for u in known if u.startswith(hint)]
        if len(matches) == 1:
            return matches[0]
    for u in (f"MIG-{bare}", f"GPU-{bare}") if bare else ():
        if u in known:
            return u
    return None


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
    # clocks_event_reasons.active is the name since the R535 drivers, whose NVML renamed "throttle reasons"
    # to "clocks event reasons" (NVML API reference R550, nvmlClocksEventReasons: the Throttle names are
    # deprecated aliases); older nvidia-smi refuses a field it does not know ('Field "..." is not a valid
    # field to query.', huggingface/candle#733): then the old name.
    QUERY = ("index", "uuid", "name", "utilization.gpu", "utilization.memory", "memory.used", "memory.total",
             "power.draw", "temperature.gpu", "clocks.sm", "clocks_event_reasons.active")
    LEGACY = {"clocks_event_reasons.active": "clocks_throttle_reasons.active"}
    query_flags = ("--query-gpu=" + ",".join(QUERY), "--format=csv,nounits")
    FIELDS = {"utilization.gpu": ("util_percent", float), "utilization.memory": ("mem_util_percent", float),
              "memory.used": ("mem_used_bytes", float), "memory.total": ("mem_total_bytes", float),
              "power.draw": ("power_w", float), "temperature.gpu": ("temp_c", float),
              "clocks.current.sm": ("sm_clock_hz", float), "clocks.sm": ("sm_clock_hz", float),
              "clocks_throttle_reasons.active": ("throttle_reasons", hex_int),
              "clocks_event_reasons.active": ("throttle_reasons", hex_int)}

    def parse(self, text: str) -> list[dict]:
        return parse_nvidia_smi(text)

    def open(self) -> None:
        try:
            super().open()
        except CollectorUnavailable as exc:
            if "not a valid field" not in str(exc):
                raise
            query = [self.LEGACY.get(q, q) for q in self.QUERY]
            self.query_flags = ("--query-gpu=" + ",".join(query), "--format=csv,nounits")
            super().open()


def cards_of(pids) -> tuple[list[dict], str]:
    """The GPUs these processes hold ({"uuid": U}), from NVML's compute-process list of each GPU. NVML lists
    host-namespace PIDs (nvidia-docker#1483): inside a container without --pid=host a process of ours is not
    found so, and the answer says it."""
    wanted = {int(p) for p in pids}

    def holding(lib):
        out = []
        for i in range(lib.nvmlDeviceGetCount()):
            h = lib.nvmlDeviceGetHandleByIndex(i)
            if wanted & {p.pid for p in lib.nvmlDeviceGetComputeRunningProcesses(h)}:
                uuid = lib.nvmlDeviceGetUUID(h)
                out.append({"uuid": uuid.decode() if isinstance(uuid, bytes) else uuid})
        return out

    found = with_nvml(holding)
    shown = ", ".join(map(str, sorted(wanted)))
    if found is None:
        return [], "NVML could not list the GPUs' processes"
    if not found:
        return [], (f"NVML lists process {shown} on no GPU (in a container without --pid=host it lists the host's "
                    "PIDs)")
    return found, f"NVML lists process {shown} on {', '.join(d['uuid'] for d in found)}"


def with_nvml(fn):
    """fn(pynvml) between nvmlInit and nvmlShutdown; None where NVML is not there or fails."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return fn(pynvml)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no NVML, no driver: None, and the caller says what that means
        return None
