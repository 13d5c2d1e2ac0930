"""Gaudi telemetry: HLML through habana-pyhlml, with `hl-smi -Q ... -f csv` as the fall-back.
Both are tables on the shared bases (bench/devices/library.py, bench/devices/smi.py)."""

from __future__ import annotations

import contextlib
import io
import os
import re

from bench.devices.collectors import CollectorUnavailable
from bench.devices.library import LibraryCollector
from bench.devices.smi import SmiCollector, parse_csv

AIP_SENSOR = 0  # HLML_TEMPERATURE_ON_AIP


def _util(value) -> float:
    """habana-pyhlml 1.10-1.18 return the AIP utilization as an int, 1.19+ a struct with .aip."""
    return float(value if isinstance(value, int) else value.aip)


def _text(value) -> str:
    """pyhlml returns names and UUIDs as bytes in every version."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class HlmlCollector(LibraryCollector):
    """Cards are found by module ID — the number the PyTorch bridge pins ranks to — or by HLML index, and
    keyed by their HLML index (another number, and not the device node's: see card_at_node). Handles are
    looked up by index at every query: pyhlml 1.10-1.16 return one shared handle object, overwritten by
    each lookup."""

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
        return (self.lib.HLMLError, AttributeError)  # after a failed hlmlInit, calls raise AttributeError

    def not_supported(self, exc) -> bool:
        return getattr(exc, "value", None) == 3  # HLML_ERROR_NOT_SUPPORTED (classes exist only after init)

    def handle(self, device: dict):
        if device.get("module_id") is not None:
            for i in range(self.lib.hlmlDeviceGetCount()):
                if self.lib.hlmlDeviceGetModuleID(self.lib.hlmlDeviceGetHandleByIndex(i)) == device["module_id"]:
                    return i, i
            raise CollectorUnavailable(f"no Gaudi card with module ID {device['module_id']}")
        return device["index"], device["index"]

    def _h(self, index):
        return self.lib.hlmlDeviceGetHandleByIndex(index)

    def identity(self, index) -> dict:
        out = {}
        for key, fn in (("module_id", lambda: self.lib.hlmlDeviceGetModuleID(self._h(index))),
                        ("uuid", lambda: _text(self.lib.hlmlDeviceGetUUID(self._h(index)))),
                        ("name", lambda: _text(self.lib.hlmlDeviceGetName(self._h(index))))):
            try:
                out[key] = fn()
            except self.errors():
                pass
        return out

    @classmethod
    def module_states(cls) -> dict:
        c = cls({"devices": []})
        c.lib = c.load()
        c.start()
        try:
            out = {}
            for i in range(c.lib.hlmlDeviceGetCount()):
                mem = c.lib.hlmlDeviceGetMemoryInfo(c._h(i))
                out[c.lib.hlmlDeviceGetModuleID(c._h(i))] = _busy(
                    _util(c.lib.hlmlDeviceGetUtilizationRates(c._h(i))), mem.used, mem.total)
            return out
        finally:
            c.close()

    QUERIES = (
        ("util_percent", lambda c, i: _util(c.lib.hlmlDeviceGetUtilizationRates(c._h(i)))),
        ("mem_used_bytes", lambda c, i: c.lib.hlmlDeviceGetMemoryInfo(c._h(i)).used),
        ("mem_total_bytes", lambda c, i: c.lib.hlmlDeviceGetMemoryInfo(c._h(i)).total),
        ("power_w", lambda c, i: c.lib.hlmlDeviceGetPowerUsage(c._h(i)) / 1000.0),  # mW
        ("energy_j", lambda c, i: c.lib.hlmlDeviceGetTotalEnergyConsumption(c._h(i)) / 1000.0),  # mJ
        ("temp_c", lambda c, i: c.lib.hlmlDeviceGetTemperature(c._h(i), AIP_SENSOR)),
        ("throttle_reasons", lambda c, i: int(c.lib.hlmlDeviceGetCurrentClocksThrottleReasons(c._h(i)))),
    )


def _minor(value) -> int:
    """hlmlDeviceGetMinorNumber's answer: an int (habana-pyhlml returns number.value); an early wheel
    returned the ctypes.c_uint itself."""
    return int(getattr(value, "value", value))


def card_at_node(minor: int) -> dict:
    """HLML index, module ID, UUID and name of the card whose device node is /dev/accel/accel<minor> (or
    /dev/hl<minor>): the card whose hlmlDeviceGetMinorNumber is that number (habana-pyhlml 1.24 main.py: the
    minor number "maps to device node file at /sys/class/accel/accel[minor]"). Nothing says HLML's
    enumeration index equals the node number, and in a container given some of the cards they differ.
    {} where HLML cannot answer or lists no such card."""
    c = HlmlCollector({"devices": []})
    try:
        c.lib = c.load()
        with contextlib.redirect_stdout(io.StringIO()):  # pyhlml prints when libhlml.so is missing
            c.start()
    except Exception:  # noqa: BLE001 - no library, no driver: the node number alone stands
        return {}
    try:
        for i in range(c.lib.hlmlDeviceGetCount()):
            if _minor(c.lib.hlmlDeviceGetMinorNumber(c._h(i))) == minor:
                return {**c.identity(i), "index": i}
        return {}
    except c.errors():
        return {}
    finally:
        c.close()


# A card's device node as the bridge opens it: /dev/accel/accel<N> (newer drivers) or /dev/hl<N>, N the node's
# minor number; the control nodes (accel_controlD<N>, hl_controlD<N>) are not a card held.
CARD_NODE = re.compile(r"(?:^|/)(?:accel/accel|hl)(\d+)$")


def cards_of(pids) -> tuple[list[dict], str]:
    """The Gaudi cards these processes hold, as the collector finds them ({"index": N}), and how they were
    found: the device nodes each process has open (the bridge opens its card's node exclusively at
    acquisition, bridge 1.19 synapse_helpers/device.cpp; Gaudi is one process per card), each linked to its
    HLML card by the node's minor number (card_at_node). ([], why) where no card can be found so."""
    found, said = [], []
    for pid in pids:
        minors = _open_nodes(pid)
        if minors is None:
            said.append(f"process {pid}'s open files cannot be read here (another user's, or gone)")
        elif not minors:
            said.append(f"process {pid} holds no Gaudi card")
        for minor in minors or ():
            card = card_at_node(minor)
            if "index" not in card:
                said.append(f"process {pid} holds device node {minor}, which HLML links to no card")
            elif {"index": card["index"]} not in found:
                found.append({"index": card["index"]})
                said.append(f"process {pid} holds device node {minor}: HLML index {card['index']}, module "
                            f"{card.get('module_id')}")
    return found, "; ".join(said) or "no process to look at"


def _open_nodes(pid: int) -> list[int] | None:
    """The minor numbers of the card nodes a process has open (/proc/PID/fd), or None where they cannot be read."""
    where = f"/proc/{int(pid)}/fd"
    try:
        fds = os.listdir(where)
    except OSError:
        return None
    minors = []
    for fd in fds:
        try:
            m = CARD_NODE.search(os.readlink(os.path.join(where, fd)))
        except OSError:  # closed between the listing and the look
            continue
        if m and int(m.group(1)) not in minors:
            minors.append(int(m.group(1)))
    return minors


BUSY_UTIL_PERCENT = 5.0
BUSY_MEMORY_SHARE = 0.10  # an idle HL-205 holds 512 MiB of 32 GiB (1.6 %)


def module_states() -> tuple[dict | None, str]:
    """{module ID: busy?} of every card, through HLML, else hl-smi; (None, why) when neither answers.
    Busy: utilization above 5 %, or more than 10 % of its memory in use."""
    from bench.devices.collectors import CollectorUnavailable as Unavailable

    reasons = []
    for cls in (HlmlCollector, HlSmiCollector):
        try:
            return cls.module_states(), ""
        except (Unavailable, Exception) as exc:  # noqa: BLE001 - the next source, or None with the reasons
            reasons.append(f"{cls.source}: {exc}")
    return None, "; ".join(reasons)


def _busy(util, used, total) -> bool:
    return (util or 0) > BUSY_UTIL_PERCENT or (bool(total) and (used or 0) / total > BUSY_MEMORY_SHARE)


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

    @classmethod
    def module_states(cls) -> dict:
        c = cls({"devices": []})
        c.open()
        rows = c.poll() or []
        return {int(r["module_id"]): _busy(r.get("utilization.aip"), r.get("memory.used"), r.get("memory.total"))
                for r in rows if r.get("module_id") is not None}

    def sources(self) -> dict:
        out = super().sources()
        for src in out.values():
            row = next((r for r in self.last_rows if r.get("index") == src["index"]), {})
            if row.get("module_id") is not None:
                src["module_id"] = int(row["module_id"])
        return out
