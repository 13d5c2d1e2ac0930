"""Fault injection, class by class: what a hostile user or a flaky machine does to a run or a compare.

Every case asserts the exit code the README promises, that no Python traceback reached the user, and,
whenever a step was measured, that the report exists, loads (it is valid) and says what happened.

1. non-finite numbers        5. a dead or frozen sampler
2. writes that fail          6. hostile report files for compare
3. signals at every phase    7. exports: atomic and escaped per format
4. unbounded inputs          8. the environment: ASCII terminals, a busy rendezvous port

Runs go through `cli.cli()` in this process (monkeypatching is how a fault is placed at an exact
moment) or through a subprocess where the fault is the process's own (a signal while it starts, a
file-size limit, an ASCII stdout). Telemetry is off unless the case is about the sampler.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import cli_run as run_cli
from reportgen import make_report

from bench.model.io import dump_report, load_report

QUICK = ["--device", "cpu", "--preset", "tiny", "--repeats", "1", "--steps", "3", "--warmup", "1"]
ONE = ["--workload", "retrieval-encode"]  # the fastest workload to set up


# ---- helpers -------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def own_tmp_and_handlers(tmp_path, monkeypatch):
    """Each case its own temporary directory (to see what leaked) and its signal handlers restored."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("TMPDIR", str(tmp))
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield tmp
    for s, h in saved.items():
        signal.signal(s, h)



def bench_cmd(*args):
    return [sys.executable, "-c", "import sys; from bench.entry import main; sys.argv[0] = 'bench'; main()",
            *map(str, args)]


def run_bench(*args, timeout=300, **kw):
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


# ---- 1. non-finite numbers -----------------------------------------------------------------------

NUMBER_FLAGS = ["--lr", "--time-budget", "--sample-hz", "--peak-tflops", "--handicap", "--dist-timeout"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "NaN"])
@pytest.mark.parametrize("flag", NUMBER_FLAGS)
def test_a_non_finite_option_is_refused_before_anything_runs(flag, value, tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", *QUICK, flag, value, "--out", tmp_path / "out")
    assert code == 2 and flag in err
    assert not list((tmp_path / "out").glob("*.json")) if (tmp_path / "out").exists() else True


def test_a_diverging_loss_keeps_its_report(tmp_path, capsys, monkeypatch):
    """The loss turns NaN, then infinite, at fixed steps: injected, not left to a CPU's rounding (whether
    a large learning rate diverges depends on the machine's arithmetic)."""
    import torch

    from workloads.blender_finetune import BlenderFinetune

    real, calls = BlenderFinetune.train_step, []

    def diverging(self, batch):
        loss = real(self, batch)
        calls.append(1)
        bad = {4: float("nan"), 5: float("inf")}.get(len(calls))  # after the warm-up step: measured steps 3, 4
        return torch.full_like(loss, bad) if bad is not None else loss

    monkeypatch.setattr(BlenderFinetune, "train_step", diverging)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "run", *QUICK, "--steps", 5, "--workload", "blender-finetune",
                           "--in-process", "--sample-hz", 0, "--out", out, "--quiet")
    assert code == 0, err
    result = only_report(out).results[0]
    loss = result.timing.repeats[0].series["loss"]
    assert len(loss) == 5 and loss[2] is None and loss[3] is None and None not in loss[:2] + loss[4:]
    assert "non_finite" in result.codes() and len(result.timing.step_times_s) == 5


def test_nan_anywhere_in_a_result_becomes_null_with_a_warning(tmp_path, capsys, monkeypatch):
    from workloads.retrieval_encode import RetrievalEncode

    monkeypatch.setattr(RetrievalEncode, "metrics",
                        classmethod(lambda cls, repeats, params, options=None: {"odd.value": float("nan"), "odd.big": float("inf"),
                                                                  "fine": 1.5}))
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "run", *QUICK, *ONE, "--in-process", "--sample-hz", 0, "--out", out)
    assert code == 0, err
    result = only_report(out).results[0]
    assert result.workload_metrics["odd.value"] is None and result.workload_metrics["odd.big"] is None
    assert result.workload_metrics["fine"] == 1.5
    [w] = [w for w in result.warnings if w.code == "non_finite"]
    assert "workload_metrics.odd.value" in w.message and "2 value(s)" in w.message


def test_an_infinite_figure_made_in_the_worker_keeps_the_steps(tmp_path, capsys, monkeypatch):
    from bench.launch import worker

    monkeypatch.setattr(worker, "_peak", lambda backend, cfg: (1e-300, "a peak too small to be real"))
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "run", *QUICK, *ONE, "--in-process", "--sample-hz", 0, "--out", out)
    assert code == 0, err
    result = only_report(out).results[0]
    assert result.timing.step_times_s and result.status == "ok"
    assert "non_finite" in result.codes() and result.metrics.mfu.value is None


def test_nan_telemetry_values_become_null_and_are_counted():
    from bench.model.fields import null_non_finite

    samples = [{"t": 0.0, "gpu0.power_w": float("nan")}, {"t": 0.1, "gpu0.power_w": 250.0, "x": [1.0, float("inf")]}]
    assert null_non_finite(samples) == ["[0].gpu0.power_w", "[1].x[1]"]
    assert samples == [{"t": 0.0, "gpu0.power_w": None}, {"t": 0.1, "gpu0.power_w": 250.0, "x": [1.0, None]}]


# ---- 2. writes that fail -------------------------------------------------------------------------

def _fail_writes_under(monkeypatch, folder: Path, err: int):
    from bench.model import io

    real = io.write_atomic

    def failing(path, text):
        if Path(path).parent == folder:
            raise OSError(err, os.strerror(err))
        return real(path, text)

    monkeypatch.setattr(io, "write_atomic", failing)


def test_a_full_disk_sends_the_report_to_the_rescue_folder(tmp_path, capsys, monkeypatch, own_tmp_and_handlers):
    out = tmp_path / "out"
    out.mkdir()
    _fail_writes_under(monkeypatch, out, errno.ENOSPC)
    code, stdout, err = run_cli(capsys, "run", *QUICK, *ONE, "--in-process", "--sample-hz", 0, "--out", out)
    assert code == 1
    rescue = own_tmp_and_handlers / "bench-rescue"
    report = only_report(rescue)
    assert report.results[0].status == "ok" and report.results[0].timing.step_times_s
    assert "No space left on device" in err and str(rescue) in err.replace("\n", "")
    assert str(rescue) in stdout.replace("\n", "")  # the path scripts read is the rescued one
    assert not list(out.iterdir()) and leftovers(own_tmp_and_handlers) == []


@pytest.mark.slow
def test_a_file_size_limit_sends_the_report_to_the_rescue_folder(tmp_path, own_tmp_and_handlers):
    def limit():  # a soft limit below the report's size; the hard limit stays unlimited
        resource.setrlimit(resource.RLIMIT_FSIZE, (4000, resource.RLIM_INFINITY))

    out = tmp_path / "out"
    done = run_bench("run", *QUICK, *ONE, "--in-process", "--sample-hz", 0, "--out", out, "--quiet",
                     preexec_fn=limit)
    assert done.returncode == 1, done.stderr
    assert "File too large" in done.stderr
    report = only_report(own_tmp_and_handlers / "bench-rescue")
    assert report.results[0].status == "ok"
    assert not list(out.glob("*")), "no half-written report where the limit struck"


@pytest.mark.slow
def test_a_file_size_limit_in_the_worker_processes_loses_nothing(tmp_path, own_tmp_and_handlers):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4000, resource.RLIM_INFINITY))

    out = tmp_path / "out"
    done = run_bench("run", *QUICK, *ONE, "--sample-hz", 2, "--out", out, "--quiet", preexec_fn=limit)
    assert done.returncode == 1, done.stderr  # the report itself was rescued
    report = only_report(own_tmp_and_handlers / "bench-rescue")
    assert report.results[0].status == "ok" and len(report.results[0].timing.step_times_s) == 3


def test_a_temporary_directory_that_takes_no_file_is_refused_before_work(tmp_path):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))

    done = run_bench("run", *QUICK, *ONE, "--out", tmp_path / "out", preexec_fn=limit)
    assert done.returncode == 2 and "temporary directory" in done.stderr


def test_when_even_the_rescue_fails_the_error_says_the_report_is_lost(tmp_path, capsys, monkeypatch):
    from bench.model import io

    def failing(path, text):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(io, "write_atomic", failing)
    code, _, err = run_cli(capsys, "run", *QUICK, *ONE, "--in-process", "--sample-hz", 0, "--out", tmp_path / "o")
    assert code == 1 and "the report is lost" in err and "Read-only file system" in err


@pytest.mark.parametrize("flag", ["--csv", "--markdown", "--json"])
def test_an_export_never_replaces_a_device_file_or_an_input(flag, tmp_path, capsys):
    import stat

    a = dump_report(make_report("a", 0.2, repeats=3), tmp_path / "a.json")
    b = dump_report(make_report("b", 0.1, seed=1, repeats=3), tmp_path / "b.json")
    code, _, _ = run_cli(capsys, "compare", a, b, flag, "/dev/null")
    assert code == 0 and stat.S_ISCHR(os.stat("/dev/null").st_mode)  # written into, not renamed over
    before = b.read_bytes()
    code, _, err = run_cli(capsys, "compare", a, b, flag, b)
    assert code == 2 and "is one of the reports being compared" in err and b.read_bytes() == before


@pytest.mark.parametrize("flag", ["--csv", "--markdown", "--html"])
def test_a_failed_export_leaves_the_previous_file_whole(flag, tmp_path, capsys, monkeypatch):
    a = dump_report(make_report("a", 0.2, repeats=3), tmp_path / "a.json")
    b = dump_report(make_report("b", 0.1, seed=1, repeats=3), tmp_path / "b.json")
    target = tmp_path / "export"
    target.write_text("the good previous export")

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    code, _, err = run_cli(capsys, "compare", a, b, flag, target)
    assert code == 1 and "No space left on device" in err
    assert target.read_text() == "the good previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json", "export", "tmp"]


# ---- 3. signals at every phase -------------------------------------------------------------------

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


# ---- 4. unbounded inputs -------------------------------------------------------------------------

UNBOUNDED = [
    (["--threads", "100000"], "--threads"),
    (["--seed", str(2 ** 64)], "--seed"),
    (["--seed", "-1"], "--seed"),
    (["--context-len", "5000", "--workload", "blender-generate"], "--context-len"),
    (["--new-tokens", "60000", "--workload", "blender-generate"], "--new-tokens"),
    (["--label-len", "100000"], "--label-len"),
    (["--sample-hz", "1e-300"], "--sample-hz"),
    (["--sample-hz", "1e300"], "--sample-hz"),
    (["--batch-size", str(10 ** 21)], "--batch-size"),
    (["--batch-size", "65536", "--context-len", "512"], "--batch-size"),
    (["--steps", str(10 ** 12)], "--steps"),
    (["--time-budget", "1e300"], "--time-budget"),
    (["--warmup", str(10 ** 9)], "--warmup"),
    (["--repeats", str(10 ** 6)], "--repeats"),
    (["--poly-codes", str(10 ** 9)], "--poly-codes"),
    (["--top-k", "5000", "--pool-size", "100", "--workload", "retrieval-encode"], "--pool-size"),
    (["--nproc", str(10 ** 6)], "--nproc"),
    (["--scaling", f"1,2,{10 ** 6}"], "--scaling"),
    (["--dist-timeout", "1e-300"], "--dist-timeout"),
    (["--beams", "1000"], "--beams"),
    (["--label", "a\x00b"], "--label"),
    (["--out", "a\x00b"], "--out"),
    (["--model", "x" * 5000], "--model"),
    (["--batch-size", "1" + "0" * 5000], "--batch-size"),
    (["--rdzv-endpoint", "host:99999", "--nnodes", "2"], "--rdzv-endpoint"),
    (["--rdzv-endpoint", "localhost:\u00b2", "--nnodes", "2"], "--rdzv-endpoint"),  # isdigit() says yes, int() no
    (["--peak-tflops", "5e-324"], "--peak-tflops"),  # a peak that makes MFU infinite
    (["--scaling", ",".join(["1"] * 5000)], "--scaling"),
    (["--scaling", "1,2,2"], "--scaling"),
]


@pytest.mark.parametrize("flags,named", UNBOUNDED, ids=[" ".join(f)[:40] for f, _ in UNBOUNDED])
def test_an_unbounded_input_is_refused_naming_its_flag(flags, named, tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", *QUICK, "--out", tmp_path / "out", *flags)
    assert code == 2 and named in err, err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.json"))


def test_a_pool_larger_than_host_memory_is_refused_before_it_is_built(tmp_path, capsys, monkeypatch):
    import psutil

    real = psutil.virtual_memory()
    monkeypatch.setattr(psutil, "virtual_memory", lambda: real._replace(available=8 * 2 ** 30))
    code, _, err = run_cli(capsys, "run", *QUICK, "--workload", "retrieval-encode", "--encoder", "bert-base",
                           "--pool-size", "10000000", "--out", tmp_path)
    assert code == 2 and "--pool-size" in err and "8.0 GiB available" in err


@pytest.mark.parametrize("workload,named,not_named", [("retrieval-encode", "--pool-size", "--new-tokens"),
                                                      ("blender-finetune", "--label-len", "--pool-size")])
def test_out_of_memory_names_what_this_workload_can_lower(workload, named, not_named, tmp_path, capsys, monkeypatch):
    from workloads import registry

    def setup(self):
        raise MemoryError()

    monkeypatch.setattr(registry.load(workload), "setup", setup)
    out = tmp_path / "out"
    code, _, _ = run_cli(capsys, "run", *QUICK, "--workload", workload, "--in-process", "--sample-hz", 0, "--out", out)
    assert code == 1
    result = only_report(out).results[0]
    assert result.status == "failed" and "out of host memory" in result.error
    assert named in result.error and not_named not in result.error


# ---- 5. a dead or frozen sampler -----------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("sig,said", [(signal.SIGKILL, "killed by signal 9"), (signal.SIGSTOP, "frozen")])
def test_a_sampler_that_dies_or_freezes_is_in_the_report(sig, said, tmp_path, capsys, monkeypatch,
                                                          own_tmp_and_handlers):
    from bench.launch.launcher import Launcher

    real, hit = Launcher.on_event, []

    def on_event(self, event):
        real(self, event)
        if not hit and event["event"] == "progress" and event.get("phase") == "measure":
            hit.append(self.sampler.proc.pid)
            os.kill(self.sampler.proc.pid, sig)

    monkeypatch.setattr(Launcher, "on_event", on_event)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "run", "--device", "cpu", "--preset", "tiny", "--repeats", 1, "--warmup", 1, *ONE,
                           "--in-process", "--time-budget", 4, "--out", out)
    assert hit and code == 0, err
    report = only_report(out)
    health = report.telemetry.health
    assert said in health.reason
    assert health.alive_to_end is (sig == signal.SIGSTOP)  # a frozen one was alive, and then killed
    measured = [c for c in health.phases if c.phase == "measure"]
    assert measured and measured[0].max_gap_s > 3
    assert "sampler_gaps" in report.results[0].codes()
    assert leftovers(own_tmp_and_handlers) == []


def _telemetry(samples, phases, period=0.1, alive=True, reason=None, accel=False):
    from bench.measure.validity import sampler_health
    from bench.model.report import Phase, Telemetry, TelemetrySource

    sources = {"gpu0": TelemetrySource("accelerator", "cuda", 0)} if accel else {}
    t = Telemetry(sample_hz=1 / period, phases=[Phase("w", *p) for p in phases], sources=sources,
                  samples=[{"t": x, "gpu0.util_percent": 90.0} for x in samples])
    t.health = sampler_health(t, period, {"alive_to_end": alive, "reason": reason})
    return t


def test_coverage_is_per_phase_with_its_longest_gap():
    t = _telemetry([0.1 * i for i in range(1, 20)] + [6.0 + 0.1 * i for i in range(10)],
                   [("setup", 0.0, 2.0, 0), ("measure", 2.0, 7.0, 0)])
    setup, measure = t.health.phases
    assert setup.samples == 19 and setup.max_gap_s == pytest.approx(0.1)
    assert measure.samples == 10 and measure.max_gap_s == pytest.approx(4.0)
    assert measure.samples_per_s == pytest.approx(2.0)


def test_a_gap_in_the_measured_steps_warns_and_leaves_the_accelerator_unjudged():
    from bench.devices.registry import spec
    from bench.measure.validity import telemetry_checks
    from bench.model.report import Repeat, Result, Timing

    t = _telemetry([0.1 * i for i in range(30)] + [6.0 + 0.1 * i for i in range(10)],
                   [("measure", 0.0, 7.0, 0)], accel=True)
    result = Result("w", "ok", timing=Timing([Repeat(0, step_times_s=[0.5] * 10, step_samples=[1] * 10,
                                                     step_tokens=[1] * 10)]))
    telemetry_checks(result, t, spec("cuda"))
    assert {"sampler_gaps", "not_judged"} <= result.codes()
    assert "idle_accelerator" not in result.codes()


def test_a_steady_sampler_gives_no_warning():
    from bench.measure.validity import sampler_checks
    from bench.model.report import Result

    t = _telemetry([0.1 * i for i in range(71)], [("measure", 0.0, 7.0, 0)])
    result = Result("w", "ok")
    assert sampler_checks(result, t) and not result.warnings


def test_a_sampler_that_died_before_a_short_phase_ended_is_named():
    from bench.measure.validity import sampler_checks
    from bench.model.report import Result

    t = _telemetry([0.1 * i for i in range(5)], [("measure", 0.0, 0.6, 0)], alive=False,
                   reason="the sampler process ended before the run did (killed by signal 9)")
    result = Result("w", "ok")
    assert not sampler_checks(result, t)
    assert "ended after the last sample" in result.warnings[0].message
    assert "signal 9" in result.warnings[0].message


# ---- 6. hostile report files for compare ---------------------------------------------------------

def _good(tmp_path, name="good.json", **kw):
    return dump_report(make_report(name, 0.1, repeats=3, **kw), tmp_path / name)


HOSTILE = {
    "deeply nested": lambda p: p.write_text("[" * 200_000 + "]" * 200_000),
    "deeply nested object": lambda p: p.write_text('{"a":' * 100_000 + "1" + "}" * 100_000),
    "empty": lambda p: p.write_text(""),
    "binary": lambda p: p.write_bytes(bytes(range(256)) * 10),
    "truncated": lambda p: p.write_text('{"schema_version": 2, "results": ['),
    "NaN literal": lambda p: p.write_text(json.dumps(_nan_data())),
    "future schema": lambda p: p.write_text(json.dumps({**_good_data(), "schema_version": 99})),
    "a list": lambda p: p.write_text("[1, 2, 3]"),
    "huge integer": lambda p: p.write_text('{"schema_version": ' + "9" * 5000 + "}"),
    "a directory": lambda p: p.mkdir(),
    "a FIFO": lambda p: os.mkfifo(p),
}


def _good_data():
    return make_report("x", 0.1, repeats=3).to_json()


def _nan_data():
    data = _good_data()
    data["results"][0]["timing"]["repeats"][0]["step_times_s"][0] = float("nan")  # json.dumps writes NaN
    return data


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_hostile_file_is_named_and_skipped_and_the_rest_compared(kind, tmp_path, capsys):
    a, b = _good(tmp_path, "a.json"), _good(tmp_path, "b.json", seed=1)
    bad = tmp_path / "bad.json"
    HOSTILE[kind](bad)
    started = time.monotonic()
    code, out, err = run_cli(capsys, "compare", a, b, bad)
    assert time.monotonic() - started < 60  # a FIFO with no writer must not block
    assert code == 1 and "bad.json" in err
    assert "samples_per_s" in out  # the two good reports were still compared


@pytest.mark.parametrize("kind", ["no work", "steps of 1 ns", "steps of 100 days"])
def test_extreme_but_valid_values_give_dashes_not_nan_or_numpy_warnings(kind, tmp_path, capsys):
    import warnings

    r = make_report("odd", 0.1, repeats=3)
    for rep in r.results[0].timing.repeats:
        n = len(rep.step_times_s)
        if kind == "no work":
            rep.step_samples, rep.step_tokens = [0.0] * n, [0.0] * n
        else:
            rep.step_times_s = [1e-9 if kind == "steps of 1 ns" else 8.64e6] * n
    a = dump_report(r, tmp_path / "a.json")
    b = _good(tmp_path, "b.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy RuntimeWarning would fail the command here
        code, out, err = run_cli(capsys, "compare", a, b, "--csv", tmp_path / "o.csv", "--width", 200)
    assert code == 0, err
    assert "nan" not in out.lower() and "inf " not in out and "RuntimeWarning" not in err
    assert "nan" not in (tmp_path / "o.csv").read_text().lower()


def test_a_file_that_is_nothing_but_hostile_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("[" * 200_000)
    code, _, err = run_cli(capsys, "compare", bad)
    assert code == 2 and "no usable report" in err


@pytest.mark.slow
def test_a_report_with_a_million_steps_compares_in_bounded_time_and_memory(tmp_path):
    big = make_report("big", 0.01, n=10)
    rep = big.results[0].timing.repeats[0]
    n = 1_000_000
    rep.step_times_s, rep.step_samples, rep.step_tokens = [0.01] * n, [8.0] * n, [160.0] * n
    path = dump_report(big, tmp_path / "big.json")

    def limit():  # 3 GiB of address space: the 0.1 bootstrap of 2000 x n indices wanted 15 GiB
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2 ** 30, resource.RLIM_INFINITY))

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = run_bench("compare", path, _good(tmp_path), timeout=600, preexec_fn=limit, env=env)
    assert done.returncode == 0, done.stderr
    assert "big" in done.stdout


def test_a_huge_string_in_a_report_is_cut_in_every_output(tmp_path, capsys):
    pytest.importorskip("plotly")
    huge = "A" * 20_000_000  # 20 MB; the class is 'copied whole', the size only makes it slow
    a = dump_report(make_report(huge, 0.2, repeats=3, device_name=huge, params={"model": huge}), tmp_path / "a.json")
    b = dump_report(make_report("b", 0.1, seed=1, repeats=3, params={"model": huge}), tmp_path / "b.json")
    outs = {flag: tmp_path / f"out.{flag[2:]}" for flag in ("--html", "--csv", "--markdown")}
    code, out, err = run_cli(capsys, "compare", a, b, *[x for kv in outs.items() for x in kv])
    assert code == 0, err[:2000]
    assert len(out) + len(err) < 200_000
    for path in outs.values():
        assert path.stat().st_size < 6_000_000, path  # plotly.js alone is ~4.6 MB of the HTML


# ---- 7. exports: atomic and escaped per format ---------------------------------------------------

HOSTILE_TEXT = "=HYPERLINK(\"http://x\")|pipe\nnew line <b>raw</b> \x1b[31mred\x1b[0m \x07 \u202eevil"


def test_report_strings_are_escaped_for_each_format(tmp_path, capsys):
    import csv

    a = dump_report(make_report(HOSTILE_TEXT, 0.2, repeats=3, device_name=HOSTILE_TEXT, host=HOSTILE_TEXT,
                                warnings=[{"code": "noisy", "message": HOSTILE_TEXT}]), tmp_path / "a.json")
    b = dump_report(make_report("-2+3", 0.1, seed=1, repeats=3), tmp_path / "b.json")
    md, csv_path = tmp_path / "o.md", tmp_path / "o.csv"
    code, out, err = run_cli(capsys, "compare", a, b, "--markdown", md, "--csv", csv_path)
    assert code == 0, err
    for text in (out, err):  # the terminal: no raw control sequence, bidi override or bell
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\x1b" in out  # shown, not executed
    lines = md.read_text().splitlines()
    assert len({line.count(" | ") for line in lines if line.startswith("| ")}) == 1  # no cell broke the table
    assert "<b>" not in md.read_text() and "\x1b" not in md.read_text()
    cells = [c for row in csv.reader(csv_path.open()) for c in row]
    assert not any(c.startswith(("=", "+", "@")) for c in cells)
    assert "'-2+3" in cells and any(c.startswith("'=HYPERLINK") for c in cells)


# ---- 8. the environment --------------------------------------------------------------------------

@pytest.mark.slow
def test_an_ascii_terminal_gets_every_command_working(tmp_path):
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "LANG": "C", "LC_ALL": "C", "PYTHONUTF8": "0"}
    listed = run_bench("list", env=env)
    assert listed.returncode == 0 and "blender-finetune" in listed.stdout
    out = tmp_path / "out"
    ran = run_bench("run", *QUICK, *ONE, "--in-process", "--sample-hz", 0, "--out", out, "--label", "caf\u00e9 \u2014",
                    env=env)
    assert ran.returncode == 0, ran.stderr
    [path] = out.glob("*.json")
    assert str(path) in ran.stdout.replace("\n", "")  # the path is printed after the summary
    compared = run_bench("compare", path, path, env=env)
    assert compared.returncode == 0 and "retrieval-encode" in compared.stdout
    assert only_report(out).label == "caf\u00e9 \u2014"  # the report itself keeps the text


@pytest.mark.parametrize("extra", [[], ["--fail-on", "samples_per_s:5%"]])
def test_a_closed_pipe_ends_quietly_with_the_commands_own_exit_code(extra, tmp_path):
    a = dump_report(make_report("a", 0.2, repeats=3), tmp_path / "a.json")
    b = dump_report(make_report("b", 0.4, seed=1, repeats=3), tmp_path / "b.json")  # conclusively slower
    proc = subprocess.Popen(bench_cmd("compare", a, b, "--width", 80, *extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # `| head -1`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == (1 if extra else 0)  # the gate still decides
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err


@pytest.mark.parametrize("closed", [1, 2])
def test_a_closed_standard_stream_is_no_traceback(closed, tmp_path):
    done = subprocess.run(bench_cmd("list"), capture_output=closed == 1 and False, text=True, timeout=120,
                          preexec_fn=lambda: os.close(closed), stdout=subprocess.PIPE if closed == 2 else None,
                          stderr=subprocess.PIPE if closed == 1 else None)
    assert done.returncode == 0, (done.stdout or "") + (done.stderr or "")
    assert "Traceback" not in (done.stdout or "") + (done.stderr or "")


def test_a_rendezvous_port_in_use_is_refused_before_anything_runs(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run_cli(capsys, "run", *QUICK, "--nproc", 2, "--nnodes", 2, "--node-rank", 0,
                               "--rdzv-endpoint", f"127.0.0.1:{port}", "--out", tmp_path)
    assert code == 2 and "--rdzv-endpoint" in err and "already in use" in err


def test_a_dead_worker_is_described_by_its_error_line_not_its_traceback():
    from bench.launch.launcher import last_error

    log = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n    boom()\n"
           "torch.distributed.DistNetworkError: The server socket has failed to listen on any local network "
           "address. port: 29500, useIpv6: false, code: -98, name: EADDRINUSE\n")
    assert last_error(log).startswith("torch.distributed.DistNetworkError: The server socket")
    assert last_error("Fatal Python error: Segmentation fault\n\nThread 0x1 (most recent call first):\n  File x") \
        == "Fatal Python error: Segmentation fault"
    assert last_error("") is None
