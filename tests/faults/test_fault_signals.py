"""Fault class: signals at every phase of a run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import cli_run as run_cli
from faultkit import (
    ONE,
    QUICK,
    bench_cmd,
    fault_fixture,  # noqa: F401 - each case's own temporary directory
    leftovers,
    only_report,
)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_bench_starts_exits_130_in_one_line(sig, tmp_path):
    proc = subprocess.Popen(bench_cmd("run", *QUICK, "--out", tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)  # importing: before any work, possibly before the run command's own handler
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stdout + stderr and "interrupted" in stderr


def _signal_on(monkeypatch, match, sig=signal.SIGTERM):
    """Send this process `sig` the first time the launcher sees an event that `match` accepts."""
    from bench.launch.launcher import Launcher

    real, sent = Launcher.on_event, []

    def on_event(self, event):
        real(self, event)
        if not sent and match(event):
            sent.append(event)
            os.kill(os.getpid(), sig)

    monkeypatch.setattr(Launcher, "on_event", on_event)
    return sent


def test_nohup_keeps_a_run_going_through_a_hangup(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(["nohup", *bench_cmd("run", *QUICK, *ONE, "--in-process", "--sample-hz", 0, "--out", out,
                                                 "--quiet")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    time.sleep(1.0)
    proc.send_signal(signal.SIGHUP)  # the terminal closed: nohup asked for the run to go on
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert only_report(out).status == "ok"


def test_a_second_ctrl_c_while_a_worker_is_stopped_leaves_no_orphan():
    import threading

    from bench.core.proc import stop_group

    child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                              "signal.SIG_IGN); time.sleep(60)"], start_new_session=True)
    time.sleep(0.5)
    os.kill(child.pid, signal.SIGSTOP)  # a worker frozen by the user
    signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()  # the impatient second Ctrl-C
    with pytest.raises(KeyboardInterrupt):
        stop_group(child, grace_s=30)
    assert child.poll() is not None  # killed, not left stopped with init as its parent


PHASES = {
    "setup": lambda e: e["event"] == "started",
    "warmup": lambda e: e["event"] == "progress" and e.get("phase") == "warmup",
    "measure": lambda e: e["event"] == "progress" and e.get("phase") == "measure",
    "verify": lambda e: e["event"] == "phase" and e["phase"]["phase"] == "measure",
}


@pytest.mark.slow
@pytest.mark.parametrize("phase,sig", [("setup", signal.SIGTERM), ("warmup", signal.SIGINT),
                                       ("measure", signal.SIGTERM), ("measure", signal.SIGINT),
                                       ("measure", signal.SIGHUP), ("verify", signal.SIGTERM)])
def test_a_signal_in_a_worker_phase_writes_an_interrupted_report(phase, sig, tmp_path, capsys, monkeypatch,
                                                                  own_tmp_and_handlers):
    sent = _signal_on(monkeypatch, PHASES[phase], sig)
    out = tmp_path / "out"
    code, stdout, _ = run_cli(capsys, "run", *QUICK, *ONE, "--steps", 200, "--out", out, "--quiet")
    assert sent, "the phase was never reached"
    assert code == 130
    report = only_report(out)
    assert report.status == "interrupted" and report.results[0].status == "interrupted"
    assert str(next(out.glob("*.json"))) in stdout.replace("\n", "")
    assert leftovers(own_tmp_and_handlers) == []  # run folder and sample file removed


@pytest.mark.parametrize("moment", ["sampler stop", "report write"])
def test_a_signal_at_the_last_moment_arrives_after_the_report_is_written(moment, tmp_path, capsys, monkeypatch,
                                                                         own_tmp_and_handlers):
    from bench.measure.sampler import Sampler
    from bench.model import io

    if moment == "sampler stop":
        real_stop = Sampler.stop

        def stop(self):
            os.kill(os.getpid(), signal.SIGTERM)
            return real_stop(self)

        monkeypatch.setattr(Sampler, "stop", stop)
    else:
        real_write = io.write_atomic

        def write(path, text):
            os.kill(os.getpid(), signal.SIGINT)
            return real_write(path, text)

        monkeypatch.setattr(io, "write_atomic", write)
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "run", *QUICK, *ONE, "--in-process", "--out", out)
    assert code == 130 and "interrupted after the report was written" in err
    report = only_report(out)
    assert report.status == "ok" and report.results[0].status == "ok"  # everything had been measured
    assert str(next(out.glob("*.json"))) in stdout.replace("\n", "")
    assert leftovers(own_tmp_and_handlers) == []


def test_deferred_holds_a_signal_even_while_other_threads_run():
    import threading

    from bench.measure.signals import deferred, interrupt_on_sigterm

    interrupt_on_sigterm()
    done = []
    with pytest.raises(KeyboardInterrupt):
        with deferred():
            busy = threading.Thread(target=time.sleep, args=(1.0,))  # a thread the kernel may pick
            busy.start()
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the handler would have run by now
            done.append("the block finished")
            busy.join()
    assert done == ["the block finished"]


def test_the_sampler_stops_cleanly_when_its_process_group_gets_sigterm(capfd, own_tmp_and_handlers):
    from bench.measure.sampler import Sampler

    s = Sampler(20, time.monotonic_ns()).start([{"name": "host", "pid": os.getpid(), "period_s": 0.05}])
    time.sleep(1.0)
    os.killpg(s.proc.pid, signal.SIGTERM)  # the sampler leads its own session and process group
    s.proc.wait(timeout=10)
    status, samples, fate = s.stop()
    err = capfd.readouterr().err
    assert "Fatal Python error" not in err and "Traceback" not in err
    assert status["host"]["available"] and samples  # it wrote its status and samples before it left
    assert fate["alive_to_end"] is False and "exit code 0" in fate["reason"]
    assert leftovers(own_tmp_and_handlers) == []
