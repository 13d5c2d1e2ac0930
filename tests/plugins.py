"""Plug-ins as a user would install them: a module plus a dist-info folder whose entry_points.txt
registers it, in a site folder the test puts on the path (in-process) or on PYTHONPATH (subprocesses)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

WORKLOADS = '''
import os
import signal
from workloads.base import StepResult, Workload


class Counting(Workload):
    name = "counting"
    description = "counts"
    fail_at = None

    def setup(self):
        self.calls = 0

    def params(self):
        return {"model": "none", "batch_size": 2, "precision": self.common.precision, "world_size": self.world_size}

    def step(self):
        self.calls += 1
        if self.calls == self.fail_at:
            self.fail()
        return StepResult(samples=2, tokens=10)

    def fail(self):
        raise RuntimeError("boom at step %d" % self.calls)


class Boom(Counting):
    name = "boom"
    fail_at = 2


class Fine(Counting):
    name = "fine"


class Crash(Counting):
    """Dies as a segfault or an OOM kill would: no exception, no result."""
    name = "crash"
    fail_at = 2

    def fail(self):
        os.kill(os.getpid(), signal.SIGKILL)


class KilledOnRank1(Counting):
    """Rank 1 dies as an OOM kill would, in its second step: no exception, no result."""
    name = "killed-on-rank-1"

    def step(self):
        self.steps_done = getattr(self, "steps_done", 0) + 1
        if self.rank == 1 and self.steps_done == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return StepResult(samples=1, tokens=1)


class Escapes(Counting):
    """Starts a process that leaves its session (setsid) and would outlive the worker; its PID goes to
    the file ESCAPED_PIDS names."""
    name = "escapes"

    def setup(self):
        import subprocess

        super().setup()
        child = subprocess.Popen(["setsid", "sleep", "300"], start_new_session=True)
        with open(os.environ["ESCAPED_PIDS"], "a") as fh:
            fh.write("%d\\n" % child.pid)


class FailOnRank1(Counting):
    name = "fail-on-rank-1"

    def step(self):
        if self.rank == 1:
            raise RuntimeError("rank one is broken")
        return StepResult(samples=1, tokens=1)
'''


def plugin_site(tmp_path: Path, entry_points: dict[str, dict[str, str]], modules: dict[str, str] | None = None) -> Path:
    site = tmp_path / "site"
    dist = site / "benchplug-0.1.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    for name, source in (modules or {"benchplug": WORKLOADS}).items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: benchplug\nVersion: 0.1\n")
    lines = [f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) for group, eps in entry_points.items()]
    (dist / "entry_points.txt").write_text("\n".join(lines))
    return site


def workload_eps(*names: str) -> dict:
    classes = {"counting": "Counting", "boom": "Boom", "fine": "Fine", "crash": "Crash", "fail-on-rank-1": "FailOnRank1",
               "killed-on-rank-1": "KilledOnRank1", "escapes": "Escapes"}
    return {"bench.workloads": {n: f"benchplug:{classes[n]}" for n in names}}


def env_with(site: Path) -> dict:
    return {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
