"""Fault injection, class by class: what a hostile user or a flaky machine does to a run or a compare.

One module per class of fault (tests/faults/test_fault_<class>.py); each class is tried through the
paths a user takes — report files read by `bench compare`, the command line, a subprocess where the
fault is the process's own — so it holds whichever type engine reads the files:

    numbers      NaN, infinity, and numbers beyond any real quantity (huge integers, years 1 and 9999)
    records      report records whose fields disagree with each other or with their names' types
    files        hostile report files for compare: each named and skipped, the rest compared
    escapes      report strings escaped for each place they land; the terminal has one door
    conflicts    inputs that contradict each other: said or refused, never resolved silently
    inputs       unbounded inputs and lists, refused naming their flag
    checkpoints  a --model directory whose config, shapes or shard index cannot be used
    writes       writes that fail, and output that cannot be written (stdout full, COLUMNS=0)
    peers        tools and peers that misbehave: tool CSVs, escaped grandchildren, absent nodes, dead ranks
    environment  ASCII terminals, closed streams, a busy rendezvous port
    signals      signals at every phase, and the leftovers of runs that were killed
    sampler      a dead or frozen sampler
    scripts      the benchmark scripts under the same standards as bench

Every case asserts the exit code the README promises, that no Python traceback reached the user, and,
whenever a step was measured, that the report exists, loads (it is valid) and says what happened.
Runs go through `cli.cli()` in this process (monkeypatching is how a fault is placed at an exact
moment) or through a subprocess where the fault is the process's own (a signal while it starts, a
file-size limit, an ASCII stdout). Telemetry is off unless the case is about the sampler.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bench.model.io import load_report

QUICK = ["--device", "cpu", "--preset", "tiny", "--repeats", "1", "--steps", "3", "--warmup", "1"]
ONE = ["--workload", "retrieval-encode"]  # the fastest workload to set up
HANG_GUARD_S = 900  # a subprocess that takes longer has hung: a guard, never a performance limit
CATCHABLE = [getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM",
                                          "SIGVTALRM", "SIGPROF", "SIGXCPU", "SIGPWR", "SIGIO") if hasattr(signal, n)]


@pytest.fixture(autouse=True, name="own_tmp_and_handlers")
def fault_fixture(tmp_path, monkeypatch):
    """Each case its own temporary directory (to see what leaked) and its signal handlers restored."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("TMPDIR", str(tmp))
    saved = {s: signal.getsignal(s) for s in CATCHABLE}
    yield tmp
    for s, h in saved.items():
        signal.signal(s, h)


def bench_cmd(*args):
    return [sys.executable, "-c", "import sys; from bench.entry import main; sys.argv[0] = 'bench'; main()",
            *map(str, args)]


def run_bench(*args, timeout=HANG_GUARD_S, **kw):
    done = subprocess.run(bench_cmd(*args), capture_output=True, text=True, timeout=timeout, **kw)
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


def only_report(folder: Path):
    paths = sorted(Path(folder).glob("*.json"))
    assert len(paths) == 1, paths
    return load_report(paths[0])  # raises if the file is not a valid report


def leftovers(tmp: Path) -> list[str]:
    """What bench left in the temporary directory (its run folders and sample files are all named
    bench-*), the rescue folder aside. torch keeps caches there of its own."""
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("bench-") and not p.name.startswith("bench-rescue"))
