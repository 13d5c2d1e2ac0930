"""The sampler: its own process (no GIL taken from the measured loop), JSON lines to a file.

Parent side: `Sampler(hz, t0_ns).start(specs)`; `.watch(spec)` adds a collector while it runs (the
launcher learns a worker's device only once the worker has it); `.own(pids, on_device)` tells every
collector which processes outside the run's tree are the run's own (bench/devices/owned.py); `.stop() ->
(status, samples, fate)`, fate saying whether the child lived to the end and, if not, how it ended.

Child side: `python -m bench.measure.sampler HZ T0_NS OUT_PATH`, commands as JSON lines on stdin
(`{"watch": spec}`, `{"own": {"pids": [...], "on_device": n}}`); it stops at end of input — also when the parent dies — or on SIGTERM. No thread
reads stdin: the loop waits on select() between ticks, so a signal never meets a blocked reader.
Timestamps are CLOCK_MONOTONIC seconds since t0, the clock the runner marks its phases with.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import signal
import subprocess
import sys
import time

from bench.core.proc import child_env, lift_file_size_limit, python_argv
from bench.core.scratch import scratch_file
from bench.devices.collectors import CollectorUnavailable
from bench.devices.registry import build_collector

STOP_TIMEOUT_S = 5.0


def _open(spec: dict, collectors: dict, status: dict) -> None:
    name = spec["name"]
    old = collectors.pop(name, None)
    if old is not None:  # a second rank's device: one collector watches both
        devices = old.spec.get("devices", []) + [d for d in spec.get("devices", []) if d not in old.spec.get("devices", [])]
        spec = {**old.spec, **spec, "devices": devices}
        old.close()
    try:
        c = build_collector(spec)
        collectors[name] = c
        status[name] = {"available": True, "source": c.source, "fallback_reasons": getattr(c, "fallback_reasons", []),
                        "sources": c.sources()}
    except CollectorUnavailable as exc:
        status[name] = {"available": False, "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - any collector fault is recorded; sampling goes on
        status[name] = {"available": False, "reason": f"{type(exc).__name__}: {exc}"}


def _claim(claim: dict, collectors: dict) -> None:
    """The run's claim of processes outside its tree, to every collector (one that lists none ignores it)."""
    pids = [p for p in claim.get("pids") or [] if isinstance(p, int) and not isinstance(p, bool)]
    on_device = claim.get("on_device") if isinstance(claim.get("on_device"), int) else 0
    for c in collectors.values():
        with contextlib.suppress(Exception):  # a collector's fault is not the sampler's
            c.claim(pids, on_device)


def _tick(collectors: dict, t0_ns: int) -> dict:
    row = {"t": (time.monotonic_ns() - t0_ns) / 1e9}
    for c in collectors.values():
        try:
            row.update(c.sample())
        except Exception as exc:  # noqa: BLE001 - a faulty tick is recorded, not fatal
            row[f"{c.name}.error"] = f"{type(exc).__name__}: {exc}"[:300]
    return row


class _Commands:
    """Non-blocking JSON-line reader of stdin (raw fd, no buffered reader shared with a thread)."""

    def __init__(self, fd: int):
        self.fd, self.buf, self.eof = fd, b"", False

    def wait(self, timeout: float) -> list[dict]:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return []
        chunk = os.read(self.fd, 65536)
        if not chunk:
            self.eof = True
            return []
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


class _Out:
    """The samples file: a write that hits a soft file-size limit lifts it once; any other failure
    (a full disk) ends sampling with one line on stderr, which the parent puts in the report."""

    def __init__(self, path: str):
        self.fh = open(path, "w", encoding="utf-8")
        self.lifted = False

    def write(self, line: str, flush: bool = False) -> None:
        while True:
            try:
                self.fh.write(line)
                if flush:
                    self.fh.flush()
                return
            except OSError as exc:
                if exc.errno == errno.EFBIG and not self.lifted and lift_file_size_limit():
                    self.lifted = True
                    continue
                raise

    def close(self) -> None:
        self.fh.close()


def child_main(hz: float, t0_ns: int, out_path: str) -> int:
    try:
        return _sample(hz, t0_ns, out_path)
    except OSError as exc:
        print(f"cannot write its samples ({exc.strerror or exc}); sampling stopped", file=sys.stderr)
        return 3


def _sample(hz: float, t0_ns: int, out_path: str) -> int:
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    commands = _Commands(sys.stdin.fileno())
    collectors, status = {}, {}
    period = 1.0 / hz
    out = _Out(out_path)
    try:
        due = time.monotonic()
        while not stop["now"] and not commands.eof:
            for cmd in commands.wait(due - time.monotonic()):
                if "watch" in cmd:
                    _open(cmd["watch"], collectors, status)
                    out.write(json.dumps({"status": status}) + "\n")
                if isinstance(cmd.get("own"), dict):
                    _claim(cmd["own"], collectors)
            if time.monotonic() < due:
                continue
            row = _tick(collectors, t0_ns)
            if len(row) > 1:  # a tick where no collector was due writes nothing
                out.write(json.dumps(row) + "\n", flush=True)
            due += period
            if due < time.monotonic() - period:  # fell behind (a stall): skip, do not burst
                due = time.monotonic()
        out.write(json.dumps({"status": status}) + "\n", flush=True)
    finally:
        for c in collectors.values():
            with contextlib.suppress(Exception):
                c.close()
        with contextlib.suppress(OSError):
            out.close()
    return 0


class Sampler:
    """Parent-side handle of the sampler process."""

    def __init__(self, hz: float, t0_ns: int):
        self.hz, self.t0_ns = hz, t0_ns
        self.proc: subprocess.Popen | None = None
        self.path: str | None = None
        self.exit_code: int | None = None
        self.read_at = 0  # how far `since` has read the samples file

    def start(self, specs: list[dict]) -> Sampler:
        fd, self.path = scratch_file(".jsonl")
        os.close(fd)
        try:
            self.proc = subprocess.Popen(python_argv("-m", "bench.measure.sampler", str(self.hz), str(self.t0_ns),
                                                     self.path),
                                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         start_new_session=True, env=child_env())
        except BaseException:
            os.unlink(self.path)
            raise
        for spec in specs:
            self.watch(spec)
        return self

    def watch(self, spec: dict) -> None:
        self._send({"watch": spec})

    def own(self, pids, on_device: int = 0) -> None:
        """Count these processes (and their children) as the run's own, `on_device` of them on the watched
        device(s), in place of the claim before."""
        self._send({"own": {"pids": [int(p) for p in pids], "on_device": int(on_device)}})

    def _send(self, command: dict) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.stdin.write((json.dumps(command) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            pass  # the child died: stop() says so

    def since(self) -> list[dict]:
        """The samples written since the last call, while it runs (whole lines only: the child may be writing
        the next)."""
        if not self.path:
            return []
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.read_at)
                chunk = fh.read()
        except OSError:
            return []
        end = chunk.rfind(b"\n") + 1
        self.read_at += end
        return [row for row in map(_row, chunk[:end].splitlines()) if row is not None]

    def _said(self) -> str:
        """The last line the (ended) sampler wrote on stderr: why it stopped."""
        try:
            text = self.proc.stderr.read(65536).decode("utf-8", "replace") if self.proc.stderr else ""
        except (OSError, ValueError):
            return ""
        lines = [x.strip() for x in text.splitlines() if x.strip()]
        return lines[-1][:300] if lines else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> tuple[dict, list[dict], dict]:
        """Stop the child; return (collector status, samples, fate). fate: {"alive_to_end": bool,
        "reason": str | None}: a child that died during the run, or froze and had to be killed, is
        said so. The temporary file is always removed."""
        if self.proc is None:
            return {}, [], {"alive_to_end": None, "reason": "sampling was off"}
        fate = {"alive_to_end": True, "reason": None}
        try:
            self.exit_code = self.proc.poll()
            if self.exit_code is not None:
                how = f"killed by signal {-self.exit_code}" if self.exit_code < 0 else f"exit code {self.exit_code}"
                said = self._said()
                fate = {"alive_to_end": False,
                        "reason": f"the sampler process ended before the run did ({how}{': ' + said if said else ''})"}
            else:
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                    fate["reason"] = f"the sampler did not stop within {STOP_TIMEOUT_S:g} s (frozen?) and was killed"
            if self.proc.stderr is not None:
                self.proc.stderr.close()
            self.proc = None
            status, samples = read_samples(self.path)
            return status, samples, fate
        finally:
            if self.path and os.path.exists(self.path):
                os.unlink(self.path)


def _row(line: bytes) -> dict | None:
    """One sample line (None: a status line, or one that is not a sample)."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) and isinstance(row.get("t"), int | float) else None


def read_samples(path: str) -> tuple[dict, list[dict]]:
    status, samples = {}, []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a last line cut by a kill
            if "status" in row:
                status = row["status"]
            elif isinstance(row, dict) and isinstance(row.get("t"), int | float):
                samples.append(row)
    return status, samples


if __name__ == "__main__":
    sys.exit(child_main(float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
