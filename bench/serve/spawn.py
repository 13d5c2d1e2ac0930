"""`bench serve` started by a run (`--engine http`): on 127.0.0.1 and a free port, as a child of the
worker, so that its CPU is this run's own work (the run's process tree), never contention.

It builds and warms its engine as `bench serve` always does, prints the address it listens on, and
is stopped with SIGTERM (requests in flight drain) when the session ends; it gets SIGTERM too if the
worker dies first (Linux: PR_SET_PDEATHSIG, which it sets itself: bench/core/proc.py die_with_parent),
so no server outlives its run.

Every wait on it is bounded: its start by START_TIMEOUT_S (a hang guard for building a large model),
cut short the moment it exits or is stopped (SIGSTOP, a debugger: a stopped process answers nothing
and would hold every wait to its end); its stop by SIGTERM with SIGCONT (a stopped process takes
SIGTERM only once continued), then SIGKILL (bench/core/proc.py stop_group). `problem()` says, for a
session's client (bench/serve/http.py `watch`), whether it can still answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import tempfile
import threading
import time

from bench.core.errors import BenchError
from bench.core.proc import PARENT_ENV, child_env, python_argv, stop_group
from bench.serve.options import SERVE_UNUSED, EngineOptions

READY_MARK = "listening on "
DEVICE_MARK = "bench serve: device "  # then the collector specs of the card it acquired, as JSON (cli.py ServeView)
START_TIMEOUT_S = 1800.0  # building and warming a large model on a slow device: a hang guard only
STOP_GRACE_S = 60.0  # from SIGTERM to SIGKILL: its drain (bench serve --drain-s, 30 s by default) and exit
LOOK_S = 0.5  # while it starts, how often whether it still runs is looked at



class LocalServer:
    """One `bench serve` process: `start()` returns its URL once it listens; `stop()` drains it."""

    def __init__(self, argv: list[str], start_timeout_s: float = START_TIMEOUT_S):
        self.argv, self.start_timeout_s = list(argv), start_timeout_s
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self.told: list[dict] = []  # the devices it said it uses, as its collectors take them (DEVICE_MARK)
        self.log = tempfile.TemporaryFile()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> str:
        env = child_env({"COLUMNS": "400", PARENT_ENV: str(os.getpid())})  # one line, never wrapped; ends with us
        self.proc = subprocess.Popen(python_argv("-m", "bench", "serve", *self.argv), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, env=env,
                                     start_new_session=True)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_relay, args=(self.proc.stdout, lines, self.told), daemon=True).start()
        line = self._ready_line(lines)
        if not line or READY_MARK not in line:
            why = self._why()
            self.stop()
            raise BenchError(f"bench serve did not start ({why}); run `bench serve {' '.join(self.argv)}` to see why")
        self.url = line.split(READY_MARK, 1)[1].split()[0]
        return self.url

    def _ready_line(self, lines: queue.Queue) -> str | None:
        """The line that says where it listens, or None: it ended, was stopped, or took too long."""
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            try:
                return lines.get(timeout=LOOK_S)
            except queue.Empty:
                if self.problem() == "server_stopped":
                    return None
        return None

    def problem(self) -> str | None:
        """Why it can no longer answer — `server_exited`, `server_stopped` (SIGSTOP, a debugger) — or None."""
        if self.proc is None or self.proc.poll() is not None:
            return "server_exited"
        try:
            import psutil

            status = psutil.Process(self.proc.pid).status()
        except Exception:  # noqa: BLE001 - no psutil, or the process went between the two looks
            return None if self.proc.poll() is None else "server_exited"
        return "server_stopped" if status in ("stopped", "tracing-stop") else None

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        return stop_group(self.proc, STOP_GRACE_S)  # SIGTERM and SIGCONT, then SIGKILL

    def _why(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):  # its output ended: it is exiting
            if self.problem() != "server_stopped":
                self.proc.wait(timeout=5.0)
        if self.problem() == "server_stopped":
            return f"it was stopped (pid {self.proc.pid}: SIGSTOP, or a debugger) while it started"
        if self.proc.poll() is None:
            return f"it did not say where it listens within {self.start_timeout_s:g} s"
        self.log.seek(0)
        tail = [x for x in self.log.read()[-4000:].decode("utf-8", "replace").splitlines() if x.strip()]
        return f"it exited with code {self.proc.returncode}: {tail[-1][:300] if tail else 'no output'}"


def _relay(stream, lines: queue.Queue, told: list) -> None:
    """The server's stdout: the devices it says it uses (before it listens), the first line that says where it
    listens, then drained to the end."""
    ready = False
    for line in stream:
        if not ready and line.startswith(DEVICE_MARK):
            told.extend(said_devices(line[len(DEVICE_MARK):]))
        elif not ready and READY_MARK in line:
            lines.put(line)
            ready = True
    if not ready:
        lines.put(None)
    with contextlib.suppress(OSError):
        stream.close()


def said_devices(text: str) -> list[dict]:
    """The collector specs `bench serve` printed ([{"name": ..., "devices": [{"index": N}, ...]}]), each device
    an identity of scalars; what is not one is left out."""
    try:
        specs = json.loads(text[:4000])
    except ValueError:
        return []
    out = []
    for spec in specs if isinstance(specs, list) else ():
        devices = spec.get("devices") if isinstance(spec, dict) and isinstance(spec.get("name"), str) else None
        kept = [d for d in devices or () if isinstance(d, dict) and d and all(
            isinstance(k, str) and isinstance(v, int | str) and not isinstance(v, bool) for k, v in d.items())]
        if kept:
            out.append({"name": spec["name"], "devices": kept})
    return out


def serve_argv(cfg, options) -> list[str]:
    """`bench serve`'s arguments that serve what this run would serve in-process (--engine http): the
    same device, model, precision, seed and engine as the run's configuration (a launch RunConfig),
    on 127.0.0.1 and a port of the system's choosing, with room in its queue for every request of a
    session."""
    engine = EngineOptions(**{f.name: getattr(options, f.name) for f, _, _ in EngineOptions.declared()})
    own = cfg.device_own.argv() if cfg.device_own is not None else []
    n = options.conversations * options.turns if options.conversations else (options.requests or 0)
    waiting = min(1_000_000, max(256, n))
    return ["--preset", cfg.preset, *cfg.device.argv(SERVE_UNUSED), *own, *cfg.common.argv(SERVE_UNUSED),
            *engine.argv(), "--host", "127.0.0.1", "--port", "0", "--max-waiting", str(waiting), "--quiet"]
