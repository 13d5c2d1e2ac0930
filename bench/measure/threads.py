"""CPU threads from what is free: the CPUs this process may run on (its affinity mask), the cgroup's
CPU quota, and the other load measured over a short window before the run starts.

torch's intra-op pool spins its threads against each other at every parallel region: on a 2-core
machine where another process holds one core, two threads made a tiny fine-tune step ~18x slower
than one thread did (5.9 against 106 samples/s). So a thread is only given a core that is free. A
core counts as taken when other processes use more than SLACK_CORES of it — the same 0.25 core
above which bench/measure/contention.py calls a measured repeat shared.

`choose()` is pure (every input passed in), `host_state()` reads the machine; the launcher calls
both once before the first repeat and every repeat runs with the choice.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import ConfigError
from bench.measure.contention import HostSnapshot
from bench.model.derive import OTHER_LOAD_CORES, threads_that_fit
from bench.model.report import ThreadChoice

SLACK_CORES = OTHER_LOAD_CORES
LOAD_WINDOW_S = 0.5  # CPU times tick at 10 ms: 0.5 s reads other load to ~0.02 core
CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class HostState:
    """What the choice is made from."""

    cpu_count: int  # CPUs of the machine
    affinity: int  # CPUs this process may run on
    quota_cpus: float | None  # CPUs the cgroup's quota allows (None: no quota)
    other_load_cores: float | None  # cores busy with other processes (None: not measured)

    @property
    def cpus(self) -> float:
        return min(self.affinity, self.quota_cpus) if self.quota_cpus else float(self.affinity)


def choose(host: HostState, ranks: int = 1, given: int | None = None) -> ThreadChoice:
    """Threads per rank: `given` where the user gave --threads, else the free cores shared among the
    ranks (at least 1), and what bound the count."""
    kw = {"cpus": host.cpus, "quota_cpus": host.quota_cpus, "other_load_cores": host.other_load_cores,
          "ranks": ranks}
    if given:
        return ThreadChoice(threads=given, reason="given", **kw)
    threads = threads_that_fit(host.cpus, host.other_load_cores or 0.0, ranks)
    whole = threads_that_fit(host.cpus, 0.0, ranks)
    if threads < whole:
        reason = "other_load"
    elif host.quota_cpus and host.quota_cpus < host.affinity:
        reason = "quota"
    elif host.affinity < host.cpu_count:
        reason = "affinity"
    else:
        reason = "free"
    return ThreadChoice(threads=threads, reason=reason, **kw)


def check_sweep(choice: ThreadChoice, world_sizes: tuple[int, ...]) -> None:
    """A --scaling sweep holds the threads per rank constant: refuse one whose largest world size
    would put more threads on this node than it has CPUs (ranks would then share cores, and the
    efficiency would measure that)."""
    largest = max(world_sizes)
    need = largest * choice.threads
    if choice.cpus is not None and need > math.floor(choice.cpus + SLACK_CORES):
        per = f"{choice.threads} thread{'s' if choice.threads > 1 else ''} a rank"
        lower = "lower --threads or the largest world size" if choice.reason == "given" else "lower the largest world size"
        raise ConfigError(f"--scaling {','.join(map(str, world_sizes))}: world size {largest} at {per} needs {need} "
                          f"CPUs, and this run may use {choice.cpus:g}; every world size runs with the same threads "
                          f"per rank, so {lower}")


# ---- reading the machine ----------------------------------------------------------------------------

def affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def quota_cpus(root: Path = CGROUP) -> float | None:
    """CPUs the cgroup's quota allows: v2 `cpu.max` ("QUOTA PERIOD", or "max"), else v1
    `cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1: none). None where there is no quota or no file."""
    text = _read(root / "cpu.max")
    if text is not None:
        parts = text.split()
        quota, period = (parts + ["100000"])[:2] if parts else ("max", "100000")
    else:
        for sub in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
            quota, period = _read(root / sub / "cpu.cfs_quota_us"), _read(root / sub / "cpu.cfs_period_us")
            if quota is not None:
                break
    try:
        q, p = float(quota), float(period)
    except (TypeError, ValueError):  # "max", a missing file, garbage
        return None
    return q / p if q > 0 and p > 0 and math.isfinite(q / p) else None


def other_load(window_s: float = LOAD_WINDOW_S, own_pid: int | None = None) -> float | None:
    """Cores other processes kept busy over `window_s` (this process's tree left out)."""
    a = HostSnapshot.take(own_pid or os.getpid())
    time.sleep(window_s)
    b = HostSnapshot.take(own_pid or os.getpid())
    if a is None or b is None or a.own is None or b.own is None or b.at <= a.at:
        return None
    return max(0.0, ((b.busy - a.busy) - (b.own - a.own)) / (b.at - a.at))


def host_state() -> HostState:
    return HostState(os.cpu_count() or 1, affinity(), quota_cpus(), other_load())


def choose_here(ranks: int = 1, given: int | None = None) -> ThreadChoice:
    """The choice on this machine now (the load is only measured when the count is not given)."""
    if given:
        return choose(HostState(os.cpu_count() or 1, affinity(), quota_cpus(), None), ranks, given)
    return choose(host_state(), ranks)


def contended_advice(other_load_cores: list[float], threads: int | None, choice: ThreadChoice | None) -> str | None:
    """What would help a run whose repeats other load shared: fewer threads, where they would leave
    the other load its cores; else only a quieter machine."""
    if not other_load_cores or choice is None or choice.cpus is None or not threads:
        return None
    load = sum(other_load_cores) / len(other_load_cores)
    used = f"other load used {load:.1f} of {choice.cpus:g} cores"
    fewer = threads_that_fit(choice.cpus, load, choice.ranks)
    if fewer < threads:
        return f"{used}: --threads {fewer}"
    return (f"{used}, and {threads} thread{'s' if threads > 1 else ''} a rank already fit what was free: "
            "a quieter machine would help")
