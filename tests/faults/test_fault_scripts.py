"""Fault class: the benchmark scripts (benchmarks/device_check.py, benchmarks/verdicts.py) held to
bench's own standards — a bad number, a device that is missing, a directory that cannot be written —
each said in one line naming the flag or the path, bench's exit codes (2 bad input, 1 a failure),
never a traceback, and before any work. Their options are declared and checked as bench's are
(benchmarks/_scriptkit.py on bench/core/options.py)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from faultkit import HANG_GUARD_S
from faultkit import fault_fixture  # noqa: F401 - each case's own temporary directory

ROOT = Path(__file__).resolve().parents[2]


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dc():
    return _script("device_check")


@pytest.fixture(scope="module")
def verdicts():
    return _script("verdicts")


def _main(module, capsys, *argv):
    code = module.main([str(a) for a in argv])
    c = capsys.readouterr()
    assert "Traceback" not in c.out + c.err, c.out + c.err
    return code, " ".join(c.err.split())


def _subprocess(name, *argv, env=None):
    """The script as a user runs it: `PYTHONPATH=. python benchmarks/NAME.py ...`."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *map(str, argv)],
                          capture_output=True, text=True, timeout=HANG_GUARD_S, env=environ, cwd=ROOT)
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done.returncode, " ".join(done.stderr.split())


@pytest.fixture
def no_work(dc, monkeypatch):
    """Any check that starts is a failure of the case: bad input is refused before work."""
    def started(*_a, **_k):
        raise AssertionError("the checks started")

    monkeypatch.setattr(dc, "run_rows", started)
    monkeypatch.setattr(dc, "pin_card", started)


@pytest.mark.parametrize("budget,said", [("nan", "finite"), ("inf", "finite"), ("-inf", "finite"),
                                         ("1e999", "finite"), ("-3", "more than 0"), ("0", "more than 0"),
                                         ("1e9", "at most"), ("ten", "number"), ("", "")])
def test_a_budget_that_is_no_number_of_seconds_is_refused(budget, said, dc, no_work, capsys):
    code, err = _main(dc, capsys, "--device", "cpu", f"--budget={budget}")
    assert code == 2 and "--budget" in err and said in err, err


@pytest.mark.parametrize("device,said", [("hpu", "habana_frameworks is not importable"),
                                         ("foo", "'foo' is not one of"), ("CPU ", "is not one of"),
                                         ("cuda\x1b[2J", "\\x1b")])
def test_a_device_that_is_missing_is_said_not_a_traceback(device, said, dc, no_work, capsys):
    code, err = _main(dc, capsys, "--device", device)
    assert code == 2 and "--device" in err and said in err and "\x1b" not in err, err


def test_a_cuda_device_hidden_from_the_process_is_said_through_the_command_line():
    code, err = _subprocess("device_check", "--device", "cuda", env={"CUDA_VISIBLE_DEVICES": ""})
    assert code == 2 and err.startswith("error: --device cuda:"), err


def test_nan_through_the_command_line_is_refused():
    code, err = _subprocess("device_check", "--budget", "nan")
    assert (code, err) == (2, "error: --budget: must be a finite number, got 'nan'")


def test_a_temporary_directory_that_cannot_be_written_fails_the_gather_check_by_name(dc, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(blocker / "tmp"))  # a directory under a file: never writable
    fact = dc.check_gather("cpu", SimpleNamespace(count=lambda: 2, dist_backend="gloo"))
    assert fact["ok"] is False and "cannot write its script" in fact["result"], fact


@pytest.mark.parametrize("make", [
    lambda p: open(p / "a-file" / "out.json", "w"),  # a directory under a file
    lambda p: open("/dev/full", "wb", buffering=0).write(b"x"),  # a full disk
    lambda p: os.mkdir(p / "a-file"),  # one that is there already, as a file
])
def test_a_write_that_fails_during_the_checks_is_one_line_naming_it(make, dc, tmp_path, monkeypatch, capsys):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setattr(dc, "check_device", lambda o: make(tmp_path) and 0)
    code, err = _main(dc, capsys, "--device", "cpu")
    assert code == 1 and err.startswith("error: ") and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("argv,said", [
    (["--aa", "-1"], "--aa: must be at least 0"), (["--aa", "nan"], "--aa: expected a whole number"),
    (["--ab", "2.5"], "--ab: expected a whole number"), (["--ab", "1e6"], "--ab"),
    (["--aa", "10000000"], "--aa: must be at most"), ([], "--dir: required"),
    (["--evaluate", "--generate-only"], "give one"), (["--dir", "runs\x00x"], "--dir: contains a NUL"),
])
def test_verdicts_refuses_options_that_are_no_counts_before_any_run(argv, said, verdicts, tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.setattr(verdicts, "bench", lambda *_: pytest.fail("a run started"))
    given = argv if "--dir" in argv or not argv else ["--dir", tmp_path / "runs", *argv]
    code, err = _main(verdicts, capsys, *given)
    assert code == 2 and said in err, err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("where", [lambda p: p / "a-file", lambda p: p / "a-file" / "runs",
                                   lambda p: Path("/proc/self/runs")])
def test_verdicts_says_a_directory_that_cannot_be_made_through_the_command_line(where, tmp_path):
    (tmp_path / "a-file").write_text("")
    code, err = _subprocess("verdicts", "--dir", where(tmp_path), "--evaluate")
    assert code == 1 and err.startswith("error: ") and str(where(tmp_path)) in err, err
