"""A fake of habana-pyhlml for bench's tests, following the wheels' own source (pyhlml/main.py,
hlml_error.py, hlml_lib.py, hlml_types.py of 1.10.0 to 1.24.2 on PyPI):

- hlmlInit() without libhlml.so prints "Failed to load libhlml" and raises HLMLError_Uninitialized;
  afterwards every call raises AttributeError ('NoneType' object has no attribute 'get_func_ptr').
- The HLMLError_* classes exist only in pyhlml.hlml_error, and only after hlmlInit(); each hlmlInit()
  makes new ones. str(e) is "HLML Error with code N". No NOT_SUPPORTED class at the top level.
- hlmlDeviceGetUtilizationRates returns a plain int in 1.10-1.18 and a struct with .aip (and .memory)
  in 1.19 and later.
- Names and UUIDs are bytes. Memory in bytes, power in mW, energy in mJ.
- hlmlDeviceGetModuleID: the module ID (what the bridge pins ranks to) differs from the index.
- hlmlDeviceGetCurrentClocksThrottleReasons: a bitmask, POWER 1 << 0, THERMAL 1 << 1.
- 1.10-1.16 hand out one shared handle object for every lookup (HLML_DEVICE.TYPE), overwritten in place.
- There is no call that lists processes.
- hlmlDeviceGetMinorNumber: the minor number of the card's device node, /sys/class/accel/accel<minor>
  (1.24 main.py; older wheels say /sys/class/habanalabs/hl<minor>). Nothing makes it the HLML index: in a
  container given some of a host's cards HLML enumerates them from 0 while the nodes keep the host's
  numbers ("minor" of a card, default its index).

The cards come from the JSON in FAKE_PYHLML (read at import): {"version": "1.24.2", "lib": true,
"cards": [{"index", "module_id", "minor", "uuid", "name", "util", "mem_used", "mem_total", "power_mw",
"energy_mj", "temp", "throttle"}]}; each call is appended to CALLS.
"""

import json
import os
import types

from pyhlml import hlml_error
from pyhlml.hlml_error import HLMLError

CONFIG = json.loads(os.environ.get("FAKE_PYHLML", '{"lib": false, "cards": []}'))
VERSION = tuple(int(x) for x in CONFIG.get("version", "1.24.2").split(".")[:2])
CALLS = []
_lib = None


class _Shared:
    """1.10-1.16: HLML_DEVICE.TYPE = ctypes.c_void_p(), one instance, overwritten by each lookup."""

    value = None


_SHARED = _Shared()


def hlmlInit():
    global _lib
    hlml_error.make_classes()
    if not CONFIG.get("lib", True):
        print("Failed to load libhlml")
        raise hlml_error.HLMLError_Uninitialized(1)
    _lib = CONFIG
    CALLS.append("hlmlInit")


def _need():
    if _lib is None:
        raise AttributeError("'NoneType' object has no attribute 'get_func_ptr'")


def hlmlShutdown():
    _need()
    CALLS.append("hlmlShutdown")


def hlmlDeviceGetCount():
    _need()
    return len(_lib["cards"])


def _card(handle):
    index = handle.value if isinstance(handle, _Shared) else handle
    return next(c for c in _lib["cards"] if c["index"] == index)


def hlmlDeviceGetHandleByIndex(index):
    _need()
    CALLS.append(f"handle:{index}")
    if not any(c["index"] == index for c in _lib["cards"]):
        raise HLMLError(2)  # HLML_ERROR_INVALID_ARGUMENT
    if VERSION <= (1, 16):
        _SHARED.value = index
        return _SHARED
    return index


def hlmlDeviceGetHandleByUUID(uuid):
    _need()
    card = next((c for c in _lib["cards"] if c["uuid"] == uuid), None)
    if card is None:
        raise HLMLError(6)  # NOT_FOUND
    return hlmlDeviceGetHandleByIndex(card["index"])


def hlmlDeviceGetModuleID(handle):
    _need()
    return _card(handle)["module_id"]


def hlmlDeviceGetMinorNumber(handle):
    _need()
    card = _card(handle)
    return card.get("minor", card["index"])


def hlmlDeviceGetName(handle):
    _need()
    return _card(handle)["name"].encode()


def hlmlDeviceGetUUID(handle):
    _need()
    return _card(handle)["uuid"].encode()


def hlmlDeviceGetUtilizationRates(handle):
    _need()
    card = _card(handle)
    if VERSION <= (1, 18):
        return int(card["util"])
    return types.SimpleNamespace(aip=int(card["util"]), memory=0)


def hlmlDeviceGetMemoryInfo(handle):
    _need()
    card = _card(handle)
    return types.SimpleNamespace(free=card["mem_total"] - card["mem_used"], total=card["mem_total"],
                                 used=card["mem_used"])


def hlmlDeviceGetPowerUsage(handle):
    _need()
    return _card(handle)["power_mw"]


def hlmlDeviceGetTotalEnergyConsumption(handle):
    _need()
    card = _card(handle)
    card["energy_mj"] += card["power_mw"] // 10  # the counter advances between reads
    return card["energy_mj"]


def hlmlDeviceGetTemperature(handle, sensor):
    _need()
    return _card(handle)["temp"]


def hlmlDeviceGetCurrentClocksThrottleReasons(handle):
    _need()
    return _card(handle).get("throttle", 0)
