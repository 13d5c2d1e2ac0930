"""bench runs from a plain checkout, with nothing installed: `PYTHONPATH=. python -m bench ...`."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def archive(tmp_path: Path) -> Path:
    """The checkout's files as they stand (tracked, and untracked but not ignored), copied alone: on a
    clean CI checkout this is exactly `git archive HEAD`."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    out = tmp_path / "checkout"
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, out / name)
    return out


@pytest.mark.slow
def test_python_m_bench_lists_and_runs_from_a_checkout_without_install(tmp_path):
    src = archive(tmp_path)
    # -S: no .pth files, so no editable install of bench is visible; the packages bench needs stay
    # importable through PYTHONPATH. Workers inherit -S (bench.core.proc.python_argv).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([".", sysconfig.get_paths()["purelib"]])}
    python = [sys.executable, "-S"]
    listed = subprocess.run([*python, "-m", "bench", "list", "--json"], cwd=src, env=env, capture_output=True,
                            text=True, timeout=900)
    assert listed.returncode == 0, listed.stderr
    assert '"blender-finetune"' in listed.stdout and '"retrieve-refine"' in listed.stdout  # registered in code
    done = subprocess.run([*python, "-m", "bench", "run", "--device", "cpu", "--workload", "blender-finetune",
                           "--steps", "3", "--warmup", "1", "--repeats", "1", "--out", str(tmp_path / "out"), "--quiet"],
                          cwd=src, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    from bench.model.io import load_report

    [path] = (tmp_path / "out").glob("*.json")
    report = load_report(path)
    assert report.results[0].status == "ok" and report.provenance.launcher == "process"
    assert report.provenance.git_commit is None  # it ran from the archive (no .git), not from this checkout


@pytest.mark.slow
def test_the_device_check_runs_from_a_checkout_on_cpu(tmp_path):
    src = archive(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([".", sysconfig.get_paths()["purelib"]])}
    # a small budget: the first check always runs, the rest say they ran past it; the timeout is a hang guard
    done = subprocess.run([sys.executable, "-S", "benchmarks/device_check.py", "--device", "cpu", "--quick",
                           "--budget", "20"], cwd=src, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = " ".join(done.stdout.split())
    for name in ("blender-finetune", "blender-generate", "retrieval-encode", "retrieve-refine"):
        for prec in ("fp32", "bf16"):  # a row, or (on a loaded machine) a line saying it ran out of time
            assert f"{name} │ {prec}" in out or f"skipped {name} {prec}: past the" in out, (name, prec)
    assert "blender-finetune │ fp32" in out  # the first check always runs
    assert "bench/plain" in out and "parity" in out and "same" in out


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "benchmarks").glob("*.py") if p.name[0] != "_"))  # _: shared code
def test_every_benchmark_script_starts(script):
    """A benchmark script that no longer imports is found here, not by the next person who needs it."""
    done = subprocess.run([sys.executable, f"benchmarks/{script}", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout.lower()
