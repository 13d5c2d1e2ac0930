"""Fault class: writes that fail — a full disk, a file-size limit, a read-only rescue, exports."""

from __future__ import annotations

import errno
import os
import resource
from pathlib import Path

import pytest
from conftest import cli_run as run_cli
from faultkit import (
    ONE,
    QUICK,
    fault_fixture,  # noqa: F401 - each case's own temporary directory
    leftovers,
    only_report,
    run_bench,
)
from reportgen import make_report

from bench.model.io import dump_report


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
