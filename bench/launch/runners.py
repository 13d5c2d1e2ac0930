"""Runners: each starts one repeat and hands back the events it sent.

ProcessRunner runs `python -m bench.launch.worker` per repeat (a fresh interpreter, model and data
built anew, as pyperf does) and tails its event file while it runs; InlineRunner (--in-process) runs
the same job in this process. torchrun groups are in launch/torchrun.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

from bench.core.proc import Tree, child_env, python_argv, stop_group
from bench.launch.events import EventReader
from bench.launch.worker import run_job

POLL_S = 0.1
INTERRUPT_GRACE_S = 30.0


class Interrupted(Exception):
    """A repeat stopped by Ctrl-C / SIGTERM; carries the events it sent before it stopped."""

    def __init__(self, events: list[dict]):
        super().__init__("interrupted")
        self.events = events


# ---- runners: one repeat each ---------------------------------------------------------------------

class InlineRunner:
    kind = "inline"

    def __init__(self, run_dir: str, on_event, env: dict | None = None):
        self.on_event = on_event
        os.environ.update(env or {})

    def run(self, job: dict) -> list[dict]:
        events = []

        def emit(event, **data):
            events.append({"event": event, **json.loads(json.dumps(data, default=str))})
            self.on_event(events[-1])

        run_job(job, emit)
        return events


class ProcessRunner:
    """A fresh interpreter per repeat; its events are tailed from a file while it runs."""

    kind = "process"

    def __init__(self, run_dir: str, on_event, env: dict | None = None):
        self.run_dir, self.on_event, self.env = run_dir, on_event, env or {}

    def run(self, job: dict) -> list[dict]:
        stem = os.path.join(self.run_dir, f"{job['workload']}-{job['repeat']}")
        job = {**job, "events": stem + ".events", "parent_pid": os.getpid()}
        with open(stem + ".job", "w", encoding="utf-8") as fh:
            json.dump(job, fh)
        tree = Tree()
        with open(stem + ".log", "wb") as log:
            proc = subprocess.Popen(python_argv("-m", "bench.launch.worker", stem + ".job"), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                    env=tree.env(child_env(self.env)))
        try:
            return watch(proc, [EventReader(job["events"])], self.on_event, stem + ".log")
        finally:
            tree.end()  # what the worker started goes with it, also what left its session


def watch(proc: subprocess.Popen, readers: list[EventReader], on_event, log_path: str) -> list[dict]:
    """Relay events until the process ends; on Ctrl-C, stop it and relay what it sent as it stopped."""
    events: list[dict] = []

    def drain():
        for reader in readers:
            for e in reader.poll():
                events.append(e)
                on_event(e)

    try:
        while proc.poll() is None:
            drain()
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        stop_group(proc, INTERRUPT_GRACE_S)
        drain()
        raise Interrupted(events) from None
    drain()
    if proc.returncode != 0 or not any(e["event"] == "result" for e in events):  # a rank may have died
        events.append({"event": "died", "code": proc.returncode, "log": log_tail(log_path)})
    return events


def log_tail(path: str, limit: int = 4000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(path) - limit))
            return fh.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""
