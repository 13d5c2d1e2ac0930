"""Which processes on a device are the run's own: what the run started or was told to count.

"Ours" is the launcher's process tree (its workers, the sampler, a `bench serve` a worker started) and
the processes the run claims besides it (a local server found by the port it listens on, a PID the user
named), each with its children. A device's collector asks `others(listed)`: how many of the processes
its driver lists on the device are another job's.

NVML lists host-namespace PIDs (the driver ignores PID namespaces: nvidia-docker#1483; some drivers from
560 translate them): in a container without --pid=host no PID of ours is among them. So a listed PID that
does not resolve here is unknown, not foreign. Once a listed PID is one of ours, NVML speaks our
namespace and the rest are others. Until then a claimed PID (which may be the host's, as NVML gives it)
is ours where listed, and of the other listed processes at most the run's workers on the device plus the
claimed processes on it not matched so can be ours: more than that are others for certain, fewer cannot
be told apart and the answer is None (unknown).

A collector holds one OwnProcesses; the sampler hands it a claim (`claim(pids, on_device)`) when the
launcher learns of one (bench/measure/sampler.py, the `own` command). A claim replaces the one before.
"""

from __future__ import annotations

import time


class OwnProcesses:
    """The run's own processes, refreshed at most once a second, and which listed ones are others'.
    root: the launcher's PID (its tree is ours); expected: the run's own processes that may hold the device
    (its workers on it); pids, on_device: a claim (see `claim`)."""

    REFRESH_S = 1.0

    def __init__(self, root: int | None, expected: int = 1, pids=(), on_device: int = 0):
        self.root, self.base, self.at, self.cache = root, expected, 0.0, set()
        self.same_namespace = False
        self.claim(pids, on_device)

    def claim(self, pids, on_device: int = 0) -> None:
        """Count `pids` (and their children) as the run's own, `on_device` of them on this device (a server
        the run talks to that holds the device), in place of any claim before."""
        self.named = {int(p) for p in pids if isinstance(p, int) and not isinstance(p, bool) and p > 0}
        self.on_device = max(0, int(on_device))
        self.at = 0.0  # the tree is read again at the next question

    def pids(self) -> set[int]:
        """The run's processes as this PID namespace sees them: the launcher's tree and each claimed PID's."""
        now = time.monotonic()
        if now - self.at >= self.REFRESH_S:
            roots = ([self.root] if self.root is not None else []) + sorted(self.named)
            self.cache = set().union(*(_tree(p) for p in roots)) if roots else set()
            self.at = now
        return self.cache

    def others(self, listed: set[int]) -> int | None:
        """How many of the listed PIDs are another job's, or None where that cannot be told."""
        mine = self.pids()
        if listed & mine:
            self.same_namespace = True
        if self.same_namespace or not listed:
            return len(listed - mine - self.named)
        rest = listed - self.named
        left = self.base + max(0, self.on_device - len(listed & self.named))  # ours not matched by a named PID
        if len(rest) > left:
            return len(rest) - left
        if not rest:
            return 0
        return len(rest) if all(_resolves(p) for p in rest) else None


def _tree(pid: int) -> set[int]:
    """A process and its descendants, where they can be seen here (nothing where it cannot)."""
    try:
        import psutil

        top = psutil.Process(pid)
        return {top.pid} | {p.pid for p in top.children(recursive=True)}
    except Exception:  # noqa: BLE001 - psutil missing, or the process gone or another namespace's
        return set()


def _resolves(pid: int) -> bool:
    """Whether a PID is a process in this PID namespace."""
    try:
        import psutil

        return psutil.pid_exists(pid)
    except Exception:  # noqa: BLE001 - psutil missing: nothing can be resolved
        return False
