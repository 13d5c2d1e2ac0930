"""Running a vendor tool (nvidia-smi, hl-smi) with bounds: time, output size, decoding, process group.

A tool that hangs, prints without end, prints bytes that are not text or leaves a grandchild behind
must cost at most TIMEOUT_S and MAX_OUTPUT bytes, and leave nothing running: the tool starts in a
session of its own and the whole group is killed when it is done or given up on. Every failure is a
ToolError whose message says what happened, safe to print.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import time

from bench.core.proc import Tree

TIMEOUT_S = 2.0
MAX_OUTPUT = 1 << 20  # 1 MiB: a query of a few GPUs is a few hundred bytes


class ToolError(Exception):
    """The tool could not be run or did not give usable output; str() says why."""


def printable(text: str, limit: int = 200) -> str:
    """Tool output for a message: control characters shown as escapes, length bounded."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return out + ("..." if len(text) > limit else "")


def find_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolError(f"{name} not found on PATH")
    return path


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_tool(argv: list[str], timeout_s: float = TIMEOUT_S, max_output: int = MAX_OUTPUT) -> str:
    """The tool's stdout as text (undecodable bytes replaced), or ToolError with the reason."""
    name = os.path.basename(argv[0])
    tree = Tree()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, env=tree.env())
    except OSError as exc:
        raise ToolError(f"{name} could not run: {exc.strerror or exc}") from None
    out, err = bytearray(), bytearray()
    try:
        _read(proc, out, err, timeout_s, max_output, name)
        code = proc.wait(timeout=max(0.0, timeout_s))
    except subprocess.TimeoutExpired:
        raise ToolError(f"{name} did not answer within {timeout_s:g} s") from None
    finally:
        _kill_group(proc)  # a grandchild that outlived the tool goes too
        tree.end()  # and one that left the tool's session (setsid)
        for stream in (proc.stdout, proc.stderr):
            stream.close()
        if proc.poll() is None:
            proc.wait()
    text = out.decode("utf-8", errors="replace")
    if code != 0:
        detail = printable(err.decode("utf-8", errors="replace").strip() or text.strip())
        raise ToolError(f"{name} exited {code}" + (f": {detail}" if detail else ""))
    return text


def _read(proc, out: bytearray, err: bytearray, timeout_s: float, max_output: int, name: str) -> None:
    deadline = time.monotonic() + timeout_s
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, out)
    sel.register(proc.stderr, selectors.EVENT_READ, err)
    try:
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise ToolError(f"{name} did not answer within {timeout_s:g} s")
            for key, _ in sel.select(timeout=left):
                chunk = os.read(key.fileobj.fileno(), 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                if len(key.data) < max_output:
                    key.data.extend(chunk[: max_output - len(key.data)])
                if key.data is out and len(out) >= max_output:
                    raise ToolError(f"{name} printed more than {max_output // 1024} KiB; a query prints a few "
                                    "hundred bytes")
    finally:
        sel.close()
