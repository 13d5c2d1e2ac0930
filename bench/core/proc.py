"""Child processes of a run: their environment and how they are stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

BENCH_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding the bench package


def python_argv(*args: str) -> list[str]:
    """A command line for this interpreter with this process's flags (-S, -E, -X ...), so that a child
    imports what this process imports."""
    return [sys.executable, *subprocess._args_from_interpreter_flags(), *args]


PARENT_ENV = "BENCH_DIE_WITH"  # a child bench started with this PID ends when that process does


def die_with_parent(parent: int) -> None:
    """Linux: SIGTERM this process when `parent` dies (prctl PR_SET_PDEATHSIG), set by the child itself after
    exec. Not in a `preexec_fn`: that runs between fork and exec in a copy of a process that may run other
    threads (the CUDA driver's, the Gaudi bridge's), where Python's subprocess docs say it is not safe. A
    parent already gone by then (the signal would never come) ends this process at once."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        sys.exit(1)


def die_with_the_starter() -> None:
    """Where the process that started this one asked for it (PARENT_ENV, taken out of the environment so this
    process's own children do not inherit it): end with that process."""
    parent = os.environ.pop(PARENT_ENV, None)
    if parent and parent.isdigit():
        die_with_parent(int(parent))


def child_env(extra: dict | None = None) -> dict:
    """This environment, with bench importable in the child as it is here (installed or a checkout)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = BENCH_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


def stop_group(proc: subprocess.Popen, grace_s: float = 10.0) -> int:
    """SIGTERM the child's process group (it runs in a session of its own; SIGCONT wakes it if it was
    stopped), wait, then SIGKILL. A second Ctrl-C while waiting skips to SIGKILL, so no child is ever
    left behind."""
    interrupted = False
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
            if sig == signal.SIGTERM:
                os.killpg(proc.pid, signal.SIGCONT)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:
            interrupted = True
            continue
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGKILL)
        code, interrupted = proc.wait(), True
    if interrupted:
        raise KeyboardInterrupt
    return code


def lift_file_size_limit() -> bool:
    """Raise a soft RLIMIT_FSIZE to the hard limit (a write of bench's own files hit it: the run's
    events, samples, or the rescue of its report). True when it was lifted."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        if soft == hard:
            return False
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        return True
    except (ImportError, OSError, ValueError):
        return False


TREE = "BENCH_TREE"  # a mark in the environment of every process a tool or a repeat starts


class Tree:
    """The processes one child starts, found by a mark in their environment (which every descendant
    inherits), so that one that left the child's session (`setsid`, a daemon's double fork) and
    outlived it is still found and ended: a process group does not hold it, the mark does.

        tree = Tree(); Popen(argv, env=tree.env(env), start_new_session=True); ...; tree.end()
    """

    def __init__(self):
        self.mark, self.since = uuid.uuid4().hex, time.time()

    def env(self, env: dict | None = None) -> dict:
        return {**(os.environ if env is None else env), TREE: self.mark}

    def end(self) -> list[int]:
        """SIGKILL every process of this tree still running (this process aside); their PIDs."""
        import psutil

        ended = []
        for p in psutil.process_iter(["create_time"]):
            try:
                if p.pid == os.getpid() or (p.info["create_time"] or 0) + 1 < self.since:
                    continue  # older than the tree: never one of it
                if p.environ().get(TREE) == self.mark:
                    p.kill()
                    ended.append(p.pid)
            except (psutil.Error, OSError):
                continue
        return ended
