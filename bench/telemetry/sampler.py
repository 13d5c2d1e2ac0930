"""The sampler: its own process (no GIL taken from the measured loop), JSON lines to a file.

Parent side: `Sampler(specs, hz, t0_ns).start()` ... `.stop() -> (collector_status, samples)`.
Child side: `python -m bench.telemetry.sampler SPEC_JSON OUT_PATH`; stops when its stdin closes
(so it never outlives the parent) or on SIGTERM. Timestamps are CLOCK_MONOTONIC seconds since t0,
the same clock the runner marks its phases with.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

from bench.telemetry import CollectorUnavailable, build_collector

STOP_TIMEOUT_S = 5.0


def _open_collectors(specs: list[dict]):
    collectors, status = [], {}
    for spec in specs:
        try:
            c = build_collector(spec)
            collectors.append(c)
            status[spec["name"]] = {"available": True, "source": c.source,
                                    "fallback_reasons": getattr(c, "fallback_reasons", [])}
        except CollectorUnavailable as exc:
            status[spec["name"]] = {"available": False, "reason": str(exc)}
        except Exception as exc:  # noqa: BLE001 - any collector fault is recorded; sampling goes on
            status[spec["name"]] = {"available": False, "reason": f"{type(exc).__name__}: {exc}"}
    return collectors, status


def _tick(collectors, t0_ns: int) -> dict:
    row = {"t": (time.monotonic_ns() - t0_ns) / 1e9}
    for c in collectors:
        try:
            row.update(c.sample())
        except Exception as exc:  # noqa: BLE001 - a faulty tick is recorded, not fatal
            row[f"{c.name}.error"] = f"{type(exc).__name__}: {exc}"
    return row


def child_main(spec_json: str, out_path: str) -> int:
    spec = json.loads(spec_json)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle

    def watch_stdin():
        sys.stdin.buffer.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    collectors, status = _open_collectors(spec["collectors"])
    period = 1.0 / spec["hz"]
    with open(out_path, "w", encoding="utf-8") as out:
        out.write(json.dumps({"status": status}) + "\n")
        out.flush()
        due = time.monotonic()
        while not stop.is_set():
            row = _tick(collectors, spec["t0_ns"])
            if len(row) > 1:  # a tick where no collector was due writes nothing
                out.write(json.dumps(row) + "\n")
                out.flush()
            due += period
            stop.wait(max(0.0, due - time.monotonic()))
    for c in collectors:
        c.close()
    return 0


class Sampler:
    """Parent-side handle of the sampler process."""

    def __init__(self, specs: list[dict], hz: float, t0_ns: int):
        self.specs, self.hz, self.t0_ns = specs, hz, t0_ns
        self.proc: subprocess.Popen | None = None
        self.path: str | None = None

    def start(self) -> "Sampler":
        fd, self.path = tempfile.mkstemp(prefix="bench-samples-", suffix=".jsonl")
        os.close(fd)
        spec = json.dumps({"collectors": self.specs, "hz": self.hz, "t0_ns": self.t0_ns})
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.telemetry.sampler", spec, self.path],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        return self

    def stop(self) -> tuple[dict, list[dict]]:
        """Stop the child and return (collector status, samples)."""
        if self.proc is None:
            return {}, []
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        try:
            return read_samples(self.path)
        finally:
            os.unlink(self.path)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.proc is not None:
            self.stop()


def read_samples(path: str) -> tuple[dict, list[dict]]:
    status, samples = {}, []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a last line cut by a kill
            if "status" in row:
                status = row["status"]
            else:
                samples.append(row)
    return status, samples


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1], sys.argv[2]))
