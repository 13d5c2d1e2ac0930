"""Fault class: unbounded inputs, refused naming their flag before anything runs."""

from __future__ import annotations

import pytest
from conftest import cli_run as run_cli
from faultkit import (
    QUICK,
    fault_fixture,  # noqa: F401 - each case's own temporary directory
    only_report,
)

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
