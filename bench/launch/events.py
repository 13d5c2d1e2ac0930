"""Worker -> parent events, as JSON lines appended to a file the parent tails.

A worker writes `started` (its pid, its device's description and what telemetry should watch),
`phase` and `progress` while it runs, and one `result` (the repeat's Result and its energy counter)
at the end. A file rather than a pipe: torchrun starts the workers itself and would not pass a pipe on.
"""

from __future__ import annotations

import errno
import json
import os

from bench.core.proc import lift_file_size_limit


class EventWriter:
    def __init__(self, path: str):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def emit(self, event: str, **data) -> None:
        """One line per event, written whole: a short write (a file-size limit reached mid-line) is
        finished, and an error is raised, never lost (the soft file-size limit is lifted once)."""
        data = json.dumps({"event": event, **data}, allow_nan=False, default=str).encode() + b"\n"
        lifted = False
        while data:
            try:
                n = os.write(self.fd, data)
            except OSError as exc:
                if exc.errno == errno.EFBIG and not lifted and lift_file_size_limit():
                    lifted = True
                    continue
                raise
            data = data[n:]

    def close(self) -> None:
        os.close(self.fd)


class EventReader:
    """Reads the complete lines appended since the last call."""

    MAX_LINE = 256 * 2**20

    def __init__(self, path: str):
        self.path, self.pos, self.buf = path, 0, b""

    def poll(self) -> list[dict]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.pos)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        self.pos += len(chunk)
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        if len(self.buf) > self.MAX_LINE:
            self.buf = b""
        out = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and isinstance(event.get("event"), str):
                out.append(event)
        return out
