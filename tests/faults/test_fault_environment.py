"""Fault class: the environment — ASCII terminals, closed streams, a busy rendezvous port."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest
from conftest import cli_run as run_cli
from faultkit import (
    ONE,
    QUICK,
    bench_cmd,
    fault_fixture,  # noqa: F401 - each case's own temporary directory
    only_report,
    run_bench,
)
from reportgen import make_report

from bench.model.io import dump_report


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
    assert proc.wait(timeout=900) == (1 if extra else 0)  # the gate still decides
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err


@pytest.mark.parametrize("closed", [1, 2])
def test_a_closed_standard_stream_is_no_traceback(closed, tmp_path):
    done = subprocess.run(bench_cmd("list"), capture_output=closed == 1 and False, text=True, timeout=900,
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
