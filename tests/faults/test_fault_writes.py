"""Fault class: writes that fail — a full disk, a file-size limit, a read-only rescue, exports — and output
that cannot be written (standard output full, COLUMNS that is no width, paths no terminal can show)."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
from pathlib import Path

import pytest
from conftest import cli_run as run_cli
from faultkit import (
    HANG_GUARD_S,
    ONE,
    QUICK,
    bench_cmd,
    fault_fixture,  # noqa: F401 - each case's own temporary directory
    leftovers,
    only_report,
    run_bench,
)
from reportgen import make_report

from bench.model.io import dump_report


# Under a file-size limit Python would write truncated .pyc files (one short write, then a rename):
# the processes limited here write none.
def no_pyc() -> dict:
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


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
                     preexec_fn=limit, env=no_pyc())
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
    done = run_bench("run", *QUICK, *ONE, "--sample-hz", 2, "--out", out, "--quiet", preexec_fn=limit, env=no_pyc())
    assert done.returncode == 1, done.stderr  # the report itself was rescued
    report = only_report(own_tmp_and_handlers / "bench-rescue")
    assert report.results[0].status == "ok" and len(report.results[0].timing.step_times_s) == 3


def test_a_temporary_directory_that_takes_no_file_is_refused_before_work(tmp_path):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))

    done = run_bench("run", *QUICK, *ONE, "--out", tmp_path / "out", preexec_fn=limit, env=no_pyc())
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


# ---- output that cannot be written ---------------------------------------------------------------------
# Standard output that fails (a full disk, a file-size limit behind `>`) is an error naming it, exit 1;
# standard error that fails is dropped and the exit code says so; a run's report is kept and its path
# said on the other stream. No traceback, no "Exception ignored" at exit.

def _reports(tmp_path):
    a = dump_report(make_report("a", 0.2, repeats=3), tmp_path / "a.json")
    b = dump_report(make_report("b", 0.1, seed=1, repeats=3), tmp_path / "b.json")
    return a, b


def _no_noise(text):
    assert "Traceback" not in text and "Exception ignored" not in text and "internal error" not in text, text


@pytest.mark.parametrize("command", [["list"], ["list", "--json"], ["env"], ["compare"], ["compare", "--json", "-"],
                                     ["compare", "--markdown", "o.md"]])
def test_a_full_standard_output_is_one_error_not_a_traceback(command, tmp_path):
    extra = [*_reports(tmp_path)] if command[0] == "compare" else []
    with open("/dev/full", "w") as full:
        done = subprocess.run(bench_cmd(*command[:1], *extra, *command[1:]), stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=HANG_GUARD_S, cwd=tmp_path)
    _no_noise(done.stderr)
    assert done.returncode == 1 and "cannot write to standard output: No space left on device" in done.stderr


def test_a_run_whose_path_cannot_be_printed_says_where_its_report_is(tmp_path):
    out = tmp_path / "out"
    with open("/dev/full", "w") as full:
        done = subprocess.run(bench_cmd("run", *QUICK, *ONE, "--in-process", "--sample-hz", 0, "--out", out, "--quiet"),
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=HANG_GUARD_S)
    _no_noise(done.stderr)
    [path] = out.glob("*.json")
    assert done.returncode == 1 and f"the report was written to {path}" in " ".join(done.stderr.split())
    assert only_report(out).status == "ok"


def test_standard_output_opened_for_reading_is_one_error(tmp_path):
    """`bench compare ... 1</dev/null`: every write fails (EBADF)."""
    with open(os.devnull) as read_only:
        done = subprocess.run(bench_cmd("compare", *_reports(tmp_path)), stdout=read_only, stderr=subprocess.PIPE,
                              text=True, timeout=HANG_GUARD_S)
    _no_noise(done.stderr)
    assert done.returncode == 1 and "cannot write to standard output: Bad file descriptor" in done.stderr


def test_a_full_standard_error_loses_the_notes_not_the_tables(tmp_path):
    a, b = _reports(tmp_path)
    with open("/dev/full", "w") as full:
        done = subprocess.run(bench_cmd("compare", a, b, tmp_path / "missing.json", "--csv", tmp_path / "o.csv"),
                              stdout=subprocess.PIPE, stderr=full, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 1 and "b vs a" in " ".join(done.stdout.split())
    assert (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("columns", ["0", "-1", "abc", "5", "99999999"])
@pytest.mark.parametrize("command", ["list", "compare"])
def test_a_columns_value_that_is_no_width_is_said_and_ignored(columns, command, tmp_path, capsys, monkeypatch):
    extra = _reports(tmp_path) if command == "compare" else []
    if columns == "abc":  # one value through a process of its own, COLUMNS in the environment a shell gives it
        done = run_bench(command, *extra, env={**os.environ, "COLUMNS": columns})
        code, out, err = done.returncode, done.stdout, " ".join(done.stderr.split())
    else:  # the others in this process, its screens built from that environment as bench's import builds them
        from bench import cli
        from bench.render.screen import Screen

        monkeypatch.setenv("COLUMNS", columns)
        monkeypatch.setattr(cli, "err", Screen(stderr=True))
        monkeypatch.setattr(cli, "out", Screen())
        code, out, err = run_cli(capsys, command, *extra)
    assert code == 0, err
    assert ("b vs a" if command == "compare" else "blender-finetune") in " ".join(out.split())
    assert f"COLUMNS={columns} is not a width" in err
    assert max(len(line) for line in out.splitlines()) <= 80  # laid out for 80 columns, not 0 or 10^8


@pytest.mark.parametrize("name", ["new\nline", "esc\x1b[31m", "tab\tbed", "quote'd\n"])
def test_a_report_path_with_control_characters_is_printed_so_a_shell_can_use_it(name, tmp_path, capsys):
    import shutil

    out = tmp_path / name
    code, stdout, err = run_cli(capsys, "run", *QUICK, *ONE, "--in-process", "--sample-hz", 0, "--out", out, "--quiet")
    assert code == 0, err
    [path] = out.glob("*.json")
    printed = stdout.strip()
    assert "\n" not in printed and "\x1b" not in printed and printed.startswith("$'")
    if shutil.which("bash"):
        back = subprocess.run(["bash", "-c", f"printf %s {printed}"], capture_output=True, timeout=HANG_GUARD_S)
        assert back.stdout == os.fsencode(str(path))


def test_an_export_path_with_a_newline_is_said_so_a_shell_can_use_it(tmp_path, capsys):
    target = tmp_path / "out\nput.csv"
    code, _, err = run_cli(capsys, "compare", *_reports(tmp_path), "--csv", target)
    assert code == 0 and target.exists()
    assert "wrote $'" in err and "out\\nput.csv'" in err
