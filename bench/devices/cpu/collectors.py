"""Host collector (psutil): process-tree CPU % and RSS, per-core CPU %, system memory."""

from __future__ import annotations

import glob
import os
import time

from bench.devices.collectors import Collector, CollectorUnavailable

CHILD_REFRESH_S = 1.0  # children(recursive=True) costs 2-4 ms: refresh at most once a second
HOST_PERIOD_S = 0.5  # host figures at most 2 Hz: CPU % is quantized to 10 ms ticks anyway, and on a
# host whose cores the measured loop saturates, reading /proc at 10 Hz cost a measurable few %
RAPL_GLOB = "/sys/class/powercap/intel-rapl:[0-9]*"


class Rapl:
    """CPU package energy from RAPL counters (root-only on most systems), unwrapped across wraps.
    Only `package-*` domains count: `psys` (client Intel) already contains the package, and the
    sub-domains (core, dram) are inside it or beside it."""

    def __init__(self, root: str = RAPL_GLOB):
        self.domains = []
        for path in sorted(glob.glob(root)):
            if path.count(":") != 1 or not _domain_name(path).startswith("package-"):
                continue
            try:
                max_uj = int(open(os.path.join(path, "max_energy_range_uj")).read())
                last = int(open(os.path.join(path, "energy_uj")).read())
            except (OSError, ValueError):
                continue
            self.domains.append({"path": os.path.join(path, "energy_uj"), "max": max_uj, "last": last})
        self.total_uj = 0

    def read_j(self) -> float | None:
        if not self.domains:
            return None
        for d in self.domains:
            try:
                now = int(open(d["path"]).read())
            except (OSError, ValueError):
                return None
            self.total_uj += now - d["last"] if now >= d["last"] else now + d["max"] - d["last"]
            d["last"] = now
        return self.total_uj / 1e6


def _domain_name(path: str) -> str:
    try:
        with open(os.path.join(path, "name"), encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError:
        return ""


class HostCollector(Collector):
    name = "host"
    source = "psutil"

    def open(self) -> None:
        try:
            import psutil
        except ImportError as exc:
            raise CollectorUnavailable(f"psutil not importable ({exc})") from None
        self.psutil = psutil
        try:
            self.root = psutil.Process(self.spec["pid"])
        except psutil.Error as exc:
            raise CollectorUnavailable(f"process {self.spec['pid']} not found ({exc})") from None
        self.procs: dict[int, object] = {}
        self.children_at = 0.0
        self._refresh_tree()
        psutil.cpu_percent(percpu=True)  # the first call of each counter returns 0.0: prime them
        self.rapl = Rapl(self.spec.get("rapl_glob", RAPL_GLOB))
        self.period = self.spec.get("period_s", HOST_PERIOD_S)
        # the first reading one period after priming: a percentage over a few microseconds is noise
        # (a first host sample of 1,439 % on 2 cores)
        self.due = time.monotonic() + self.period

    def _refresh_tree(self) -> set[int]:
        """Track the process tree; returns the pids primed just now (not readable this round)."""
        try:
            tree = [self.root] + self.root.children(recursive=True)
        except self.psutil.Error:
            tree = [self.root]
        new = set()
        for proc in tree:
            if proc.pid not in self.procs:
                proc.cpu_percent(None)  # prime; keep the object alive so the next call is meaningful
                self.procs[proc.pid] = proc
                new.add(proc.pid)
        self.children_at = time.monotonic()
        return new

    def sources(self) -> dict:
        out = {"host": {"role": "host", "device": "cpu"}}
        if self.rapl.domains:
            out["cpu"] = {"role": "host_energy", "device": "cpu"}
        return out

    def sample(self) -> dict:
        """Host figures, or {} between host periods (other collectors keep the sampler's rate)."""
        now = time.monotonic()
        if now < self.due:
            return {}
        self.due = now + self.period
        fresh = self._refresh_tree() if now - self.children_at >= CHILD_REFRESH_S else set()
        cpu, rss = 0.0, 0
        for pid, proc in list(self.procs.items()):
            try:
                with proc.oneshot():
                    if pid not in fresh:  # primed a moment ago: its share counts from the next round
                        cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
            except self.psutil.Error:
                del self.procs[pid]
        mem = self.psutil.virtual_memory()
        percpu = self.psutil.cpu_percent(percpu=True)
        row = {"host.cpu_percent": cpu, "host.rss_bytes": rss,
                "host.sys_cpu_percent": sum(percpu) / len(percpu) if percpu else None,
                "host.percpu_percent": percpu, "host.mem_used_bytes": mem.used,
                "host.mem_percent": mem.percent}
        energy = self.rapl.read_j()
        if energy is not None:
            row["cpu.energy_j"] = energy
        return row
