"""Fault class: signals at every phase of a run — every catchable one that would end the process is
an interrupt (SIGQUIT, SIGUSR1 and the timers as SIGTERM) — and the leftovers of runs killed outright,
cleaned at the next start (only those whose owner is gone, only ours)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import cli_run as run_cli
from conftest import sampled, wait_until
from faultkit import (
    CATCHABLE,
    HANG_GUARD_S,
    ONE,
    QUICK,
    bench_cmd,
    fault_fixture,  # noqa: F401 - each case's own temporary directory
    leftovers,
    only_report,
    run_bench,
)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2])
def test_a_signal_while_bench_starts_exits_130_in_one_line(sig, tmp_path):
    proc = subprocess.Popen(bench_cmd("run", *QUICK, "--out", tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    caught(proc.pid, signal.SIGTERM)  # bench's entry took the signals (Python catches SIGINT itself, from
    # before its site import, where an interrupt is fatal): importing now, before any work
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stdout + stderr and "interrupted" in stderr


def caught(pid: int, sig: int, field: str = "SigCgt") -> None:
    """Wait until the process catches sig (SigCgt in /proc/PID/status): before bench's entry takes the
    signals, Python itself is still starting, a moment no program can handle."""
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:") and int(line.split()[1], 16) >> (sig - 1) & 1:
                return
        time.sleep(0.005)
    raise AssertionError(f"process {pid} never caught signal {sig}")


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
    caught(proc.pid, signal.SIGHUP, "SigIgn")  # nohup has set it ignored
    proc.send_signal(signal.SIGHUP)  # the terminal closed: nohup asked for the run to go on
    stdout, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr
    assert only_report(out).status == "ok"


def test_a_second_ctrl_c_while_a_worker_is_stopped_leaves_no_orphan():
    from bench.core.proc import stop_group

    child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                              "signal.SIG_IGN); time.sleep(600)"], start_new_session=True)
    caught(child.pid, signal.SIGTERM, "SigIgn")  # it ignores SIGTERM now: only a SIGKILL ends it
    os.kill(child.pid, signal.SIGSTOP)  # a worker frozen by the user
    signal.signal(signal.SIGINT, signal.default_int_handler)
    real_wait, waits = child.wait, []

    def wait(timeout=None):
        waits.append(timeout)
        if len(waits) == 1:  # the impatient second Ctrl-C, while stop_group waits out the grace
            os.kill(os.getpid(), signal.SIGINT)
        return real_wait(timeout)

    child.wait = wait
    with pytest.raises(KeyboardInterrupt):
        stop_group(child, grace_s=30)
    assert waits[0] == 30  # the Ctrl-C came during the grace, not before it
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


def _send_and_see_it_arrive(sig: int) -> None:
    """Send this process `sig` and return once it has arrived: CPython's C-level handler writes the
    signal's number to the wakeup fd, whichever thread the kernel picked. A Python-level handler that
    was not held back then runs at the interpreter's next check (the loop below), before the caller's
    next line."""
    import select

    r, w = os.pipe()
    os.set_blocking(w, False)
    old = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    try:
        os.kill(os.getpid(), sig)
        ready, _, _ = select.select([r], [], [], HANG_GUARD_S)  # a hang guard only
        assert ready and sig in os.read(r, 64)
    finally:
        signal.set_wakeup_fd(old)
        os.close(r)
        os.close(w)
    for _ in range(3):  # backward jumps: where the interpreter runs pending handlers
        pass


def test_deferred_holds_a_signal_even_while_other_threads_run():
    import threading

    from bench.measure.signals import deferred, interrupt_on_sigterm

    interrupt_on_sigterm()
    done, release = [], threading.Event()
    with pytest.raises(KeyboardInterrupt):
        with deferred():
            busy = threading.Thread(target=release.wait, args=(HANG_GUARD_S,))  # a thread the kernel may pick
            busy.start()
            try:
                _send_and_see_it_arrive(signal.SIGTERM)
                done.append("the block finished")
            finally:
                release.set()
                busy.join()
    assert done == ["the block finished"]


def test_the_sampler_stops_cleanly_when_its_process_group_gets_sigterm(capfd, own_tmp_and_handlers):
    from bench.measure.sampler import Sampler

    s = Sampler(20, time.monotonic_ns()).start([{"name": "host", "pid": os.getpid(), "period_s": 0.05}])
    wait_until(lambda: sampled(s), "a first sample")  # its start alone can take a second on a loaded machine
    os.killpg(s.proc.pid, signal.SIGTERM)  # the sampler leads its own session and process group
    s.proc.wait(timeout=HANG_GUARD_S)
    status, samples, fate = s.stop()
    err = capfd.readouterr().err
    assert "Fatal Python error" not in err and "Traceback" not in err
    assert status["host"]["available"] and samples  # it wrote its status and samples before it left
    assert fate["alive_to_end"] is False and "exit code 0" in fate["reason"]
    assert leftovers(own_tmp_and_handlers) == []


# ---- every catchable terminating signal is an interrupt ----------------------------------------------

OTHERS = [s for s in CATCHABLE if s not in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)]


@pytest.mark.parametrize("sig", OTHERS, ids=[s.name for s in OTHERS])
def test_a_terminating_signal_is_an_interrupt_that_keeps_the_report(sig, tmp_path, capsys, monkeypatch,
                                                                    own_tmp_and_handlers):
    sent = _signal_on(monkeypatch, lambda e: e["event"] == "progress" and e.get("phase") == "measure"
                      and e["done"] >= 2, sig)  # steps were measured: they must be in the report
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "run", *QUICK, *ONE, "--steps", 100000, "--in-process", "--sample-hz", 0,
                                "--out", out, "--quiet")
    assert sent and code == 130, err
    report = only_report(out)
    assert report.status == "interrupted" and report.results[0].timing.step_times_s
    assert leftovers(own_tmp_and_handlers) == []


@pytest.mark.parametrize("sig", [signal.SIGQUIT, signal.SIGUSR1, signal.SIGALRM])
def test_deferred_holds_every_stop_signal(sig):
    from bench.measure.signals import deferred, interrupt_on_sigterm

    interrupt_on_sigterm()
    done = []
    with pytest.raises(KeyboardInterrupt):
        with deferred():
            _send_and_see_it_arrive(sig)
            done.append("whole")
    assert done == ["whole"]


def test_a_signal_something_else_handles_is_left_to_it():
    """A profiler's SIGPROF handler, nohup's ignored SIGHUP: not taken over."""
    from bench.measure.signals import interrupt_on_sigterm, raise_interrupt

    def profiler(signum, frame):
        pass

    signal.signal(signal.SIGPROF, profiler)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    interrupt_on_sigterm()
    assert signal.getsignal(signal.SIGPROF) is profiler and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGUSR2) is raise_interrupt


# ---- what killed runs leave behind ----------------------------------------------------------------------

def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid  # reaped: no process has it now (the system hands PIDs out in turn)


def _leave(tmp, pid, start, kind="run", name_end="abcd1234"):
    from bench.core import scratch

    if kind == "run":
        d = tmp / f"{scratch.RUN}{pid}-{start}-{name_end}"
        d.mkdir()
        (d / "blender-finetune-0.events").write_text("{}\n")
        return d
    f = tmp / f"{scratch.SAMPLES}{pid}-{start}-{name_end}.jsonl"
    f.write_text("{}\n")
    return f


def test_leftovers_of_dead_runs_go_and_everything_else_stays(own_tmp_and_handlers):
    from bench.core.scratch import clean_stale, start_time

    tmp, dead, me = own_tmp_and_handlers, _dead_pid(), os.getpid()
    gone = [_leave(tmp, dead, 1700000000), _leave(tmp, dead, 1700000000, "samples"),
            _leave(tmp, os.getppid(), 1, "run", "reused")]  # a live PID, but another start: its owner is dead
    kept = [_leave(tmp, me, start_time(me), "run"), _leave(tmp, me, start_time(me), "samples"),
            tmp / "bench-run-oldstyle1", tmp / "bench-rescue", tmp / "bench-samples-notours.txt"]
    for p in kept[2:4]:
        p.mkdir()
    kept[4].write_text("x")
    link = tmp / f"bench-run-{dead}-1700000000-link"
    link.symlink_to(kept[3])  # a link named like a run folder: never followed, never removed
    file_as_dir = tmp / f"bench-run-{dead}-1700000000-afile"
    file_as_dir.write_text("not a folder")  # not the kind the name says
    removed = clean_stale(str(tmp))
    assert sorted(removed) == sorted(p.name for p in gone)
    assert not any(p.exists() for p in gone) and all(p.exists() for p in kept)
    assert link.is_symlink() and file_as_dir.exists() and kept[3].is_dir()


@pytest.mark.skipif(os.getuid() != 0, reason="only root can give a file to another user")
def test_another_users_leftovers_stay(own_tmp_and_handlers):
    from bench.core.scratch import clean_stale

    theirs = _leave(own_tmp_and_handlers, _dead_pid(), 1700000000)
    os.chown(theirs, 12345, 12345)
    assert clean_stale(str(own_tmp_and_handlers)) == [] and theirs.exists()


def test_the_next_run_cleans_the_leftovers_of_a_killed_one_and_says_so(tmp_path, capsys, own_tmp_and_handlers):
    stale = [_leave(own_tmp_and_handlers, _dead_pid(), 1700000000), _leave(own_tmp_and_handlers, _dead_pid(),
                                                                           1700000001, "samples")]
    code, _, err = run_cli(capsys, "run", *QUICK, *ONE, "--in-process", "--sample-hz", 0, "--out", tmp_path / "o")
    assert code == 0, err
    assert not any(p.exists() for p in stale) and "removed what 2 killed run(s) left" in err
    assert leftovers(own_tmp_and_handlers) == []


@pytest.mark.slow
def test_a_run_killed_outright_leaves_files_the_next_run_removes(tmp_path, own_tmp_and_handlers):
    out = tmp_path / "out"
    proc = subprocess.Popen(bench_cmd("run", *QUICK, *ONE, "--steps", 100000, "--sample-hz", 2, "--out", out),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def started_its_worker():  # what the next run must clean: the run's folder with the worker's events in it,
        assert proc.poll() is None, proc.stderr.read()  # and the sampler's file
        tmp = own_tmp_and_handlers
        return list(tmp.glob("bench-run-*/*.events")) and list(tmp.glob("bench-samples-*"))

    wait_until(started_its_worker, "the worker's events and the sampler's file", poll_s=0.05)
    started = psutil.Process(proc.pid).children(recursive=True)  # its worker and its sampler
    proc.kill()  # SIGKILL: nothing of bench runs after this
    proc.wait(timeout=HANG_GUARD_S)
    _, alive = psutil.wait_procs(started, timeout=HANG_GUARD_S)  # they go by themselves: the worker
    assert alive == []  # (PR_SET_PDEATHSIG) and the sampler (end of input)
    left = leftovers(own_tmp_and_handlers)
    assert any(n.startswith("bench-run-") for n in left) and any(n.startswith("bench-samples-") for n in left)
    done = run_bench("run", *QUICK, *ONE, "--in-process", "--sample-hz", 0, "--out", tmp_path / "next")
    assert done.returncode == 0, done.stderr
    assert leftovers(own_tmp_and_handlers) == [] and "killed run(s) left" in " ".join(done.stderr.split())
