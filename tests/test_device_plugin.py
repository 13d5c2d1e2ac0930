"""A new device is one folder (here one module) plus an entry point in `bench.devices`: registered
from a dist-info, it is listed, takes its own option, runs, and its collector's keys reach the report."""

import json
import subprocess
import sys

import pytest
from conftest import cli_run
from plugins import env_with, plugin_site

from bench.model.io import load_report
from bench.model.keys import split

FAKEDEV = '''
import os
import time
from dataclasses import dataclass

from bench.core.options import Options, opt
from bench.devices.collectors import Collector
from bench.devices.cpu.backend import CpuBackend
from bench.devices.spec import DeviceSpec


@dataclass(frozen=True)
class FakeOptions(Options):
    title = "fake accelerator"
    boost: int = opt(1, "how much boost", minimum=1, maximum=3)


MARK = os.environ.get("FAKEMON_MARK")  # a byte appended per reading of the monitor: how the device sees it


def _readings():
    try:
        return os.path.getsize(MARK)
    except OSError:
        return 0


class FakeBackend(CpuBackend):
    """Computes on the CPU, says it is an accelerator. Its work is done only once its monitor has read it
    twice more (the second reading's timestamp comes after the wait began), so every step holds a
    reading, however late the sampler started on a loaded machine (FAKEMON_MARK set)."""
    name = "fakedev"

    def synchronize(self):
        super().synchronize()
        if MARK:
            due, guard = _readings() + 2, time.monotonic() + 900  # a hang guard only
            while _readings() < due and time.monotonic() < guard:
                time.sleep(0.002)

    def describe(self):
        return {"backend": "fakedev", "device": "cpu", "device_name": "Fake Accelerator 1", "boost": self.own.boost}

    def collector_specs(self):
        return super().collector_specs() + [{"name": "fakemon", "devices": [{"index": 0}]}]


class FakeMonitor(Collector):
    name = "fakemon"
    source = "fakemon-lib"

    def sample(self):
        if MARK:
            with open(MARK, "ab") as fh:
                fh.write(b".")
        return {"fake0.util_percent": 88.0, "fake0.power_w": 42.0}

    def sources(self):
        return {"fake0": {"role": "accelerator", "device": "fakedev", "index": 0}}


SPEC = DeviceSpec(name="fakedev", description="a plug-in accelerator", backend="fakedev:FakeBackend",
                  dist_backend="gloo", probe=lambda: None, options=FakeOptions, accelerator=True,
                  precisions=("fp32",), collectors={"fakemon": ("fakedev:FakeMonitor",)})
'''


def bench(args, env, timeout=900):
    cmd = [sys.executable, "-c", "import sys; from bench.entry import main; sys.argv[0] = 'bench'; main()", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow
def test_a_plugin_device_is_listed_checked_and_run(tmp_path, capsys, monkeypatch):
    site = plugin_site(tmp_path, {"bench.devices": {"fakedev": "fakedev:SPEC"}}, {"fakedev": FAKEDEV})
    env = env_with(site)
    # listed and refused in this process, the plug-in's site on its path (the run below is a process of its own)
    monkeypatch.syspath_prepend(str(site))
    code, out, _ = cli_run(capsys, "list", "--json")
    devices = {d["device"]: d for d in json.loads(out)["devices"]}
    assert code == 0 and devices["fakedev"]["present"] is True
    assert devices["fakedev"]["description"] == "a plug-in accelerator"

    code, _, err = cli_run(capsys, "run", "--device", "fakedev", "--precision", "bf16", "--out", tmp_path)
    assert code == 2 and "fakedev runs fp32" in err  # its spec's checks run first
    code, _, err = cli_run(capsys, "run", "--device", "cpu", "--boost", "2", "--out", tmp_path)
    assert code == 2 and "--boost: only applies to --device fakedev" in err

    env["FAKEMON_MARK"] = str(tmp_path / "fakemon.readings")
    done = bench(["run", "--device", "fakedev", "--boost", "2", "--workload", "blender-finetune", "--repeats", "1",
                  "--time-budget", "1.5", "--warmup", "1", "--out", str(tmp_path / "out"), "--quiet"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = load_report(next((tmp_path / "out").glob("*.json")))
    assert report.environment.device["backend"] == "fakedev" and report.environment.device["boost"] == 2
    assert report.telemetry.sources["fake0"].role == "accelerator"
    assert report.telemetry.collectors["fakemon"].source == "fakemon-lib"
    [res] = report.results
    assert res.telemetry_summary["measure"]["fake0.util_percent"].mean == 88.0
    assert "idle_accelerator" not in res.codes()  # its utilization proved the work
    assert "model_not_on_device" in res.codes()  # ... but its model sat on the CPU: said, generically
    for s in report.telemetry.samples:  # every key is <a declared source>.<a known metric>
        for k in s:
            if k not in ("t", "workload", "phase"):
                assert split(k) and split(k)[0] in report.telemetry.sources, k
