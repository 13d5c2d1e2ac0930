"""Child processes of a run: their environment and how they are stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

BENCH_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding the bench package


def python_argv(*args: str) -> list[str]:
    """A command line for this interpreter with this process's flags (-S, -E, -X ...), so that a child
    imports what this process imports."""
    return [sys.executable, *subprocess._args_from_interpreter_flags(), *args]


def child_env(extra: dict | None = None) -> dict:
    """This environment, with bench importable in the child as it is here (installed or a checkout)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = BENCH_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


def stop_group(proc: subprocess.Popen, grace_s: float = 10.0) -> int:
    """SIGTERM the child's process group (it runs in a session of its own), wait, then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()
