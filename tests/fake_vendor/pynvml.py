"""A fake of nvidia-ml-py (module pynvml) for bench's tests, following nvidia-ml-py 13.615.71's
pynvml.py:

- The NVMLError_<Name> classes are made at import (_extractNVMLErrorsAsClasses); str(e) is the
  code's text ("Not Supported", "Function Not Found", "Insufficient Permissions").
- nvmlInit() without libnvidia-ml raises NVMLError_LibraryNotFound and prints nothing.
- A symbol missing from the driver's library (an older driver) raises NVMLError_FunctionNotFound
  (code 13) when called: older drivers lack nvmlDeviceGetCurrentClocksEventReasons.
- nvmlDeviceGetHandleByUUID takes "GPU-..." or "MIG-..." as str or bytes; UUIDs and names come back str.
- MIG: nvmlDeviceGetMigMode -> [current, pending]; nvmlDeviceIsMigDeviceHandle -> a ctypes.c_uint
  (c_uint(1) == 1 is False: use bool()); nvmlDeviceGetDeviceHandleFromMigDeviceHandle -> the GPU;
  utilization of a MIG instance raises NVMLError_NotSupported.
- nvmlDeviceGetComputeRunningProcesses -> objects with .pid and .usedGpuMemory. The PIDs are the host's
  (the driver is not aware of PID namespaces, nvidia-docker#1483): inside a container without
  --pid=host none of them is a process there, ours included. "container": true reports each configured
  PID as a host PID, pid + HOST_PID_OFFSET (past any pid_max, so it resolves to nothing here).
- Inside a MIG container (the Kubernetes device plugin's; nvidia-container-toolkit#842, k8s-device-plugin
  #1683) the parent GPU's handle answers little: its UUID, name and MIG devices, and NoPermission to
  the rest (index, MIG mode, memory, power, energy, temperature, clocks). "mig_container": true on a GPU.
- nvmlDeviceGetMaxMigDeviceCount / nvmlDeviceGetMigDeviceHandleByIndex enumerate a GPU's MIG devices
  (an empty slot raises NotFound).
- nvmlDeviceGetFieldValues(handle, [field ids]) -> structs with .fieldId, .nvmlReturn (per field; 3 where
  the device has no such field) and .value.uiVal; NVML_FI_DEV_POWER_INSTANT (186) is the instantaneous
  power in mW on Hopper and newer ("power_instant_mw"), NVML_FI_DEV_POWER_AVERAGE (185) the 1-s average.
- nvmlDeviceGetTemperature is deprecated ("will be removed in CUDA 14.0"); nvmlDeviceGetTemperatureV(handle,
  sensor) is its successor, missing from older drivers' libnvidia-ml (FunctionNotFound).
- Units: memory bytes, power mW, energy mJ, clocks MHz. Clock-event bits as NVML's.

The GPUs come from the JSON in FAKE_PYNVML (read at import): {"lib": true, "lacks": [symbol, ...], "container",
"gpus": [{"index", "uuid", "name", "util", "mem_util", "mem_used", "mem_total", "power_mw",
"energy_mj", "temp", "clock_mhz", "reasons", "mig_mode", "processes": [pid], "no_permission":
[query], "not_supported": [query], "migs": [{"uuid", "mem_used", "mem_total"}], "mig_container",
"power_instant_mw"}]}.
"""

import ctypes
import json
import os
import types

CONFIG = json.loads(os.environ.get("FAKE_PYNVML", '{"lib": false, "gpus": []}'))
CALLS = []
_STRINGS = {1: "Uninitialized", 2: "Invalid Argument", 3: "Not Supported", 4: "Insufficient Permissions",
            6: "Not Found", 12: "NVML Shared Library Not Found", 13: "Function Not Found", 15: "GPU is lost",
            999: "Unknown Error"}
_NAMES = {1: "Uninitialized", 2: "InvalidArgument", 3: "NotSupported", 4: "NoPermission", 6: "NotFound",
          12: "LibraryNotFound", 13: "FunctionNotFound", 15: "GpuIsLost", 999: "Unknown"}


class NVMLError(Exception):
    _valClassMapping = {}

    def __new__(typ, value):
        if typ == NVMLError:
            typ = NVMLError._valClassMapping.get(value, typ)
        obj = Exception.__new__(typ)
        obj.value = value
        return obj

    def __str__(self):
        return _STRINGS.get(self.value, f"Unknown Error {self.value}")


for _code, _name in _NAMES.items():
    _cls = type(f"NVMLError_{_name}", (NVMLError,), {"__new__": lambda typ, v=_code: NVMLError.__new__(typ, v)})
    globals()[_cls.__name__] = _cls
    NVMLError._valClassMapping[_code] = _cls

NVML_TEMPERATURE_GPU, NVML_CLOCK_SM, nvmlMemory_v2 = 0, 1, 0x02000028
NVML_SUCCESS, NVML_FI_DEV_POWER_AVERAGE, NVML_FI_DEV_POWER_INSTANT, NVML_VALUE_TYPE_UNSIGNED_INT = 0, 185, 186, 1
nvmlTemperature_v1 = 0x100000C
# what a MIG container may still ask of the parent GPU's handle
_PARENT_READABLE = {"nvmlDeviceGetUUID", "nvmlDeviceGetName", "nvmlDeviceIsMigDeviceHandle",
                    "nvmlDeviceGetMaxMigDeviceCount", "nvmlDeviceGetMigDeviceHandleByIndex"}
_up = 0


def nvmlInit():
    """NVML counts initialisations; nvmlShutdown shuts down when the count reaches zero (NVML API reference,
    nvmlInit_v2 / nvmlShutdown)."""
    global _up
    if not CONFIG.get("lib", True):
        raise NVMLError(12)
    _up += 1
    CALLS.append("nvmlInit")


def nvmlShutdown():
    global _up
    if not _up:
        raise NVMLError(1)
    _up -= 1


class _Handle:
    def __init__(self, gpu, mig=None):
        self.gpu, self.mig = gpu, mig


def _need(symbol, handle=None, query=None):
    if not _up:
        raise NVMLError(1)
    CALLS.append(symbol)
    if symbol in CONFIG.get("lacks", []):
        raise NVMLError(13)
    if handle is not None and handle.mig is None and handle.gpu.get("mig_container") \
            and symbol not in _PARENT_READABLE:
        raise NVMLError(4)
    if handle is not None and query is not None:
        if query in handle.gpu.get("no_permission", []):
            raise NVMLError(4)
        if query in handle.gpu.get("not_supported", []):
            raise NVMLError(3)


def nvmlDeviceGetCount():
    _need("nvmlDeviceGetCount")
    return len(CONFIG["gpus"])


def nvmlDeviceGetHandleByIndex(index):
    _need("nvmlDeviceGetHandleByIndex")
    gpu = next((g for g in CONFIG["gpus"] if g["index"] == index), None)
    if gpu is None:
        raise NVMLError(2)
    return _Handle(gpu)


def nvmlDeviceGetHandleByUUID(uuid):
    _need("nvmlDeviceGetHandleByUUID")
    uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
    for g in CONFIG["gpus"]:
        if g["uuid"] == uuid:
            return _Handle(g)
        for m in g.get("migs", []):
            if m["uuid"] == uuid:
                return _Handle(g, m)
    raise NVMLError(6)


def nvmlDeviceGetIndex(handle):
    _need("nvmlDeviceGetIndex", handle)
    return handle.gpu["index"]


def nvmlDeviceGetUUID(handle):
    _need("nvmlDeviceGetUUID", handle)
    return handle.mig["uuid"] if handle.mig else handle.gpu["uuid"]


def nvmlDeviceGetName(handle):
    _need("nvmlDeviceGetName", handle)
    return handle.gpu["name"]


def nvmlDeviceIsMigDeviceHandle(handle):
    _need("nvmlDeviceIsMigDeviceHandle", handle)
    return ctypes.c_uint(1 if handle.mig else 0)


def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle):
    _need("nvmlDeviceGetDeviceHandleFromMigDeviceHandle")
    return _Handle(handle.gpu)


def nvmlDeviceGetMaxMigDeviceCount(handle):
    _need("nvmlDeviceGetMaxMigDeviceCount", handle)
    return 7 if handle.gpu.get("mig_mode") else 0


def nvmlDeviceGetMigDeviceHandleByIndex(handle, index):
    _need("nvmlDeviceGetMigDeviceHandleByIndex", handle)
    migs = handle.gpu.get("migs", [])
    if index >= len(migs):
        raise NVMLError(6)
    return _Handle(handle.gpu, migs[index])


def nvmlDeviceGetMigMode(handle):
    _need("nvmlDeviceGetMigMode", handle)
    mode = handle.gpu.get("mig_mode", 0)
    return [mode, mode]


def nvmlDeviceGetUtilizationRates(handle):
    _need("nvmlDeviceGetUtilizationRates", handle, "util")
    if handle.mig or handle.gpu.get("mig_mode"):
        raise NVMLError(3)  # "On MIG-enabled GPUs, querying device utilization rates is not currently supported"
    return types.SimpleNamespace(gpu=handle.gpu["util"], memory=handle.gpu.get("mem_util", 0))


def nvmlDeviceGetMemoryInfo(handle, version=None):
    _need("nvmlDeviceGetMemoryInfo_v2" if version else "nvmlDeviceGetMemoryInfo", handle, "mem")
    src = handle.mig or handle.gpu
    return types.SimpleNamespace(total=src["mem_total"], used=src["mem_used"], free=src["mem_total"] - src["mem_used"])


def nvmlDeviceGetPowerUsage(handle):
    _need("nvmlDeviceGetPowerUsage", handle, "power")
    return handle.gpu["power_mw"]


def nvmlDeviceGetTotalEnergyConsumption(handle):
    _need("nvmlDeviceGetTotalEnergyConsumption", handle, "energy")
    handle.gpu["energy_mj"] += handle.gpu["power_mw"] // 10
    return handle.gpu["energy_mj"]


def nvmlDeviceGetTemperature(handle, sensor):
    _need("nvmlDeviceGetTemperature", handle, "temp")
    return handle.gpu["temp"]


def nvmlDeviceGetTemperatureV(handle, sensor, version=nvmlTemperature_v1):
    _need("nvmlDeviceGetTemperatureV", handle, "temp")
    return handle.gpu["temp"]


def nvmlDeviceGetFieldValues(handle, fieldIds):
    _need("nvmlDeviceGetFieldValues", handle, "fields")
    known = {NVML_FI_DEV_POWER_INSTANT: handle.gpu.get("power_instant_mw"),
             NVML_FI_DEV_POWER_AVERAGE: handle.gpu.get("power_mw")}
    return [types.SimpleNamespace(fieldId=f, scopeId=0, timestamp=0, latencyUsec=0,
                                  valueType=NVML_VALUE_TYPE_UNSIGNED_INT,
                                  nvmlReturn=0 if known.get(f) is not None else 3,
                                  value=types.SimpleNamespace(uiVal=known.get(f) or 0))
            for f in fieldIds]


def nvmlDeviceGetClockInfo(handle, clock):
    _need("nvmlDeviceGetClockInfo", handle, "clock")
    return handle.gpu["clock_mhz"]


def nvmlDeviceGetCurrentClocksEventReasons(handle):
    _need("nvmlDeviceGetCurrentClocksEventReasons", handle, "reasons")
    return handle.gpu.get("reasons", 0)


def nvmlDeviceGetCurrentClocksThrottleReasons(handle):
    _need("nvmlDeviceGetCurrentClocksThrottleReasons", handle, "reasons")
    return handle.gpu.get("reasons", 0)


HOST_PID_OFFSET = 1 << 22  # Linux's largest pid_max is 2**22


def nvmlDeviceGetComputeRunningProcesses(handle):
    _need("nvmlDeviceGetComputeRunningProcesses_v3", handle, "processes")
    offset = HOST_PID_OFFSET if CONFIG.get("container") else 0
    return [types.SimpleNamespace(pid=p + offset, usedGpuMemory=2**30, gpuInstanceId=None, computeInstanceId=None)
            for p in handle.gpu.get("processes", [])]


def nvmlSystemGetDriverVersion():
    _need("nvmlSystemGetDriverVersion")
    return "535.104.05"
