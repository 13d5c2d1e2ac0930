"""Was a repeat measured on a machine shared with other work? The CPU time of the CPUs the run may use
(its affinity mask), from /proc/stat, over the measured steps, minus what the run's own processes (the
launcher, its workers, its sampler, what a repeat claimed: bench/devices/owned.py) used: the rest was
someone else's. Calibrated here (2 vCPUs, torch on both): 0.00-0.01 cores of other load when quiet,
0.64-0.71 with one competing busy process.

Other load counts against the cores the run left free, and is shared only when it exceeds them by more
than OTHER_LOAD_CORES. On cpu the run's threads need their cores (bench/measure/threads.py gives a
thread only a free core): a run of one thread on two cores beside one busy process has its core. On an
accelerator the host only feeds the device: the run needs the cores its processes actually used
(rounded up to whole cores, at least one), and a 64-core GPU host whose daemons (persistenced, a DCGM
exporter, kubelet) or other tenants' loaders keep 2 cores busy leaves the run 62 of them: not shared.

/proc/stat is the kernel's and counts the whole machine, not a container (`cpu_scope` "host"): inside a
container it holds other tenants' work on the same CPUs, which is why only the CPUs of the run's mask are
summed. LXCFS mounts a per-container view over it (`cpu_scope` "container"; its CPUs renumbered, so all
of them are summed). Both are recorded with the figures (report: Contention).
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from bench.model.derive import OTHER_LOAD_CORES  # above this much of other processes' CPU, the steps were shared
from bench.model.report import Contention

STEAL_PERCENT = 5.0  # hypervisor steal above this
MIN_WINDOW_S = 0.1  # CPU times tick at 10 ms: shorter windows say nothing
PROC = Path("/proc")
try:
    USER_HZ = os.sysconf("SC_CLK_TCK")  # /proc/stat counts in these ticks (proc(5))
except (AttributeError, ValueError, OSError):
    USER_HZ = 100
_CPU_LINE = re.compile(r"^cpu(\d+)\s+(.*)$")
CONTAINER_SIGNS = ("docker", "kubepods", "containerd", "libpod", "lxc", "crio")


@dataclass
class HostSnapshot:
    at: float
    busy: float  # busy CPU seconds of the CPUs summed
    total: float  # CPU seconds of the CPUs summed
    steal: float
    own: float | None  # CPU seconds of the run's own processes
    cpus: int = 0  # how many CPUs the times cover (0: unknown)
    scope: str | None = None  # what /proc/stat counted: "host" or "container" (see the module's notes)
    in_container: bool | None = None

    @classmethod
    def take(cls, root_pid: int | None, also: tuple[int, ...] = (), proc: Path | None = None) -> HostSnapshot | None:
        proc = proc or PROC
        scope = proc_stat_scope(proc)
        try:
            text = (proc / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:  # no /proc: nothing to judge with
            return None
        t = cpu_times(text, None if scope == "container" else run_cpus())
        if t is None:
            return None
        own = _tree_cpu(root_pid)
        extra = [_tree_cpu(pid) for pid in also]
        return cls(time.monotonic(), t[0], t[1], t[2], None if own is None else own + sum(x for x in extra if x),
                   t[3], scope, in_container(proc))


def cpu_times(text: str, cpus: set[int] | None) -> tuple[float, float, float, int] | None:
    """(busy, total, steal seconds, CPUs counted) from /proc/stat's per-CPU lines ("cpuN user nice system
    idle iowait irq softirq steal guest guest_nice", USER_HZ ticks: proc(5)), over the CPUs in `cpus` (None:
    all). guest and guest_nice are inside user and nice already, so not added. None where no line counts."""
    busy = total = steal = 0
    n = 0
    for line in text.splitlines():
        m = _CPU_LINE.match(line.strip())
        if not m or (cpus is not None and int(m.group(1)) not in cpus):
            continue
        v = ([int(x) for x in m.group(2).split() if x.isdigit()] + [0] * 8)[:8]
        busy += v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
        total += sum(v)
        steal += v[7]
        n += 1
    return (busy / USER_HZ, total / USER_HZ, steal / USER_HZ, n) if n else None


def run_cpus() -> set[int] | None:
    """The CPUs this process (and the run it belongs to) may run on; None where the mask is not known."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def proc_stat_scope(proc: Path = PROC) -> str:
    """"container" where something is mounted over /proc/stat (LXCFS gives each container its own view),
    else "host": the kernel's /proc/stat is not namespaced and counts every CPU of the machine."""
    try:
        mounts = (proc / "self" / "mountinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "host"
    return "container" if any(len(f) > 4 and f[4] == "/proc/stat" for f in map(str.split, mounts.splitlines())) \
        else "host"


def in_container(proc: Path = PROC) -> bool:
    """Signs that this process runs in a container: a runtime's marker file, or a container runtime's name
    in the cgroup of PID 1 (cgroup v1 paths and many v2 setups name it; a bare "0::/" says nothing)."""
    root = proc.parent
    if (root / ".dockerenv").exists() or (root / "run" / ".containerenv").exists():
        return True
    try:
        text = (proc / "1" / "cgroup").read_text(encoding="utf-8", errors="replace").lower()
    except OSError:
        return False
    return any(sign in text for sign in CONTAINER_SIGNS)


def _tree_cpu(root_pid: int | None) -> float | None:
    if root_pid is None:
        return None
    import psutil

    try:
        root = psutil.Process(root_pid)
        procs = [root] + root.children(recursive=True)
    except psutil.Error:
        return None
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total


def needed_cores(threads: int | None, ranks: int = 1) -> float | None:
    """The cores a run's threads need on cpu (`ranks` on this node, `threads` each); None where the host
    only feeds an accelerator: then the cores its processes used decide (contention())."""
    return float(threads * ranks) if threads else None


def contention(a: HostSnapshot | None, b: HostSnapshot | None, need: float | None = None) -> Contention | None:
    """Other load and steal between two snapshots, and the reasons the window counts as shared.
    need: the cores the run's threads need (cpu: needed_cores); None: those its own processes used."""
    if a is None or b is None:
        return None
    wall = b.at - a.at
    if wall < MIN_WINDOW_S:
        return Contention(reasons=[], cpus=b.cpus or None, cpu_scope=b.scope, in_container=b.in_container)
    own = None if a.own is None or b.own is None else max(0.0, (b.own - a.own) / wall)
    other = None if own is None else max(0.0, (b.busy - a.busy) / wall - own)
    total = b.total - a.total
    steal = 100.0 * (b.steal - a.steal) / total if total > 0 else None
    if need is None and own is not None:
        need = float(max(1, math.ceil(own - OTHER_LOAD_CORES)))
    free = max(0.0, b.cpus - need) if b.cpus and need is not None else None
    reasons = []
    if other is not None and other > (free or 0.0) + OTHER_LOAD_CORES:
        left = f", more than the {free:g} of {b.cpus} the run left free" if free else ""
        seen = " (/proc/stat counts the host's CPUs: other containers' work on them included)" \
            if b.in_container and b.scope == "host" else ""
        reasons.append(f"other processes used {other:.2f} CPU cores during the measured steps{left}{seen}")
    if steal is not None and steal > STEAL_PERCENT:
        reasons.append(f"the hypervisor stole {steal:.0f} % of the CPU time")
    return Contention(other_load_cores=other, steal_percent=steal, reasons=reasons, own_cores=own,
                      free_cores=free, cpus=b.cpus or None, cpu_scope=b.scope, in_container=b.in_container)
