"""Was a repeat measured on a machine shared with other work? The host's CPU time, system-wide, over
the measured steps, minus what the run's own process tree (the launcher, its workers, its sampler)
used: the rest was someone else's. Calibrated here (2 vCPUs, torch on both): 0.00-0.01 cores of
other load when quiet, 0.64-0.71 with one competing busy process. Other load counts against the cores
the run's threads left free (bench/measure/threads.py gives a thread only a free core): a run of one
thread on two cores beside one busy process has its core, and is shared only when the other load
exceeds the spare core by more than OTHER_LOAD_CORES."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.model.derive import OTHER_LOAD_CORES  # above this much of other processes' CPU, the steps were shared
from bench.model.report import Contention

STEAL_PERCENT = 5.0  # hypervisor steal above this
MIN_WINDOW_S = 0.1  # CPU times tick at 10 ms: shorter windows say nothing


@dataclass
class HostSnapshot:
    at: float
    busy: float  # system-wide busy CPU seconds
    total: float  # system-wide CPU seconds
    steal: float
    own: float | None  # CPU seconds of the run's own process tree

    @classmethod
    def take(cls, root_pid: int | None, also: tuple[int, ...] = ()) -> HostSnapshot | None:
        try:
            import psutil

            t = psutil.cpu_times()
        except Exception:  # noqa: BLE001 - no psutil or no /proc: nothing to judge with
            return None
        busy = sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))
        own = _tree_cpu(root_pid)
        extra = [_tree_cpu(pid) for pid in also]
        return cls(time.monotonic(), busy, sum(t), getattr(t, "steal", 0.0),
                   None if own is None else own + sum(x for x in extra if x is not None))


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


def contention(a: HostSnapshot | None, b: HostSnapshot | None, spare: float = 0.0) -> Contention | None:
    """Other load and steal between two snapshots, and the reasons the window counts as shared.
    spare: cores the run's threads left to other processes (measure/threads.py `spare_cores`)."""
    if a is None or b is None:
        return None
    wall = b.at - a.at
    if wall < MIN_WINDOW_S:
        return Contention(reasons=[])
    other = None if a.own is None or b.own is None else max(0.0, ((b.busy - a.busy) - (b.own - a.own)) / wall)
    total = b.total - a.total
    steal = 100.0 * (b.steal - a.steal) / total if total > 0 else None
    reasons = []
    if other is not None and other > spare + OTHER_LOAD_CORES:
        left = f", more than the {spare:g} the run's threads left free" if spare else ""
        reasons.append(f"other processes used {other:.2f} CPU cores during the measured steps{left}")
    if steal is not None and steal > STEAL_PERCENT:
        reasons.append(f"the hypervisor stole {steal:.0f} % of the CPU time")
    return Contention(other_load_cores=other, steal_percent=steal, reasons=reasons)
