"""A run's scratch files in the temporary directory, named for the process that owns them, and the
cleaning of those that a run killed outright (SIGKILL, a power cut) left behind.

    bench-run-<pid>-<start>-XXXXXXXX/            a run's jobs, events and worker logs (launch/launcher.py)
    bench-samples-<pid>-<start>-XXXXXXXX.jsonl   the sampler's samples (measure/sampler.py)

<start> is the owner's start time in whole seconds since the epoch: a PID the system gave again to
another process does not make a dead run's files look alive. A run removes its own files when it
ends however it ends, except killed; `clean_stale()`, at the start of the next run, removes the files
whose owner is gone — only ours (this user's), only of the kind the name says (a directory, a
regular file; never a link), never the rescue folder of reports that could not be written.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile

RUN, SAMPLES = "bench-run-", "bench-samples-"
_NAME = re.compile(r"^(bench-run-|bench-samples-)(\d{1,10})-(\d{1,12})-[^/]+$")


def start_time(pid: int) -> int | None:
    """When the process started, in whole seconds since the epoch (None: no such process)."""
    import psutil

    try:
        return int(psutil.Process(pid).create_time())
    except (psutil.Error, OSError, ValueError):
        return None


def owner_tag() -> str:
    return f"{os.getpid()}-{start_time(os.getpid()) or 0}"


def scratch_dir() -> str:
    return tempfile.mkdtemp(prefix=f"{RUN}{owner_tag()}-")


def scratch_file(suffix: str = ".jsonl") -> tuple[int, str]:
    return tempfile.mkstemp(prefix=f"{SAMPLES}{owner_tag()}-", suffix=suffix)


def clean_stale(folder: str | None = None) -> list[str]:
    """Remove the scratch files of runs whose process is gone; return their names."""
    folder = folder or tempfile.gettempdir()
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        m = _NAME.match(entry.name)
        if m and _stale(entry, m) and _remove(entry):
            removed.append(entry.name)
    return removed


def _stale(entry, m) -> bool:
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    kind_ok = stat.S_ISDIR(info.st_mode) if m.group(1) == RUN else stat.S_ISREG(info.st_mode)
    if not kind_ok or info.st_uid != os.getuid():
        return False
    pid, started = int(m.group(2)), int(m.group(3))
    return pid != os.getpid() and start_time(pid) != started


def _remove(entry) -> bool:
    try:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
        return True
    except OSError:
        return False
