"""Fault class: unbounded inputs, refused naming their flag before anything runs.

List options are bounded where they are declared (`opt()`: at most `max_items` values, each once), so
every list flag — run's and compare's, built-in and plug-in — holds it without a check of its own."""

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


def _many(n, start=1):
    return ",".join(str(start + i) for i in range(n))


RATES = ["--workload", "blender-serve"]
LISTS = [  # the class: a list option given more values than it holds, or a value twice
    ([*RATES, "--qps", _many(65)], "--qps: at most 64 values, got 65"),
    ([*RATES, "--qps", _many(100_000)], "--qps: at most 64 values, got 100000"),
    ([*RATES, "--qps", "2,4,2"], "--qps: 2.0 is given twice"),
    ([*RATES, "--qps", "2,2.0"], "--qps: 2.0 is given twice"),  # the same rate spelt twice
    (["--scaling", "1,2,1"], "--scaling: 1 is given twice"),
    (["--scaling", _many(17)], "--scaling: at most 16 values, got 17"),
    (["--workload", "blender-finetune", "--workload", "blender-finetune"], "--workload: 'blender-finetune' is given"),
    ([*(x for i in range(65) for x in ("--workload", f"w{i}"))], "--workload: at most 64 values, got 65"),
]


@pytest.mark.parametrize("flags,said", LISTS, ids=[s[:40] for _, s in LISTS])
def test_a_list_option_holds_a_bounded_number_of_values_each_once(flags, said, tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", *QUICK, "--out", tmp_path / "out", *flags)
    assert code == 2 and said in err, err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.json"))


@pytest.mark.parametrize("flags,said", [
    ([f"--price=cpu{i}=1" for i in range(65)], "--price: at most 64 values, got 65"),
    (["--price", "cpu=1", "--price", "cpu=1"], "--price: 'cpu=1' is given twice"),
    ([f"--fail-on=samples_per_s:{i + 1}%" for i in range(65)], "--fail-on: at most 64 values, got 65"),
    (["--fail-on", "samples_per_s:5%", "--fail-on", "samples_per_s:5%"], "--fail-on: 'samples_per_s:5%' is given"),
])
def test_compare_list_options_are_bounded_the_same_way(flags, said, tmp_path, capsys):
    from bench.model.io import dump_report
    from reportgen import make_report

    a = dump_report(make_report("a", 0.1, repeats=3), tmp_path / "a.json")
    code, _, err = run_cli(capsys, "compare", a, a, *flags)
    assert code == 2 and said in err, err


@pytest.mark.parametrize("flags,flag", [(["--steps", "3", "--steps", "5"], "--steps"),
                                        (["--device", "cpu", "--device", "cuda"], "--device"),
                                        (["--qps", "1,2", "--qps", "4", *RATES], "--qps"),
                                        (["--out", "a", "--out", "b"], "--out")])
def test_a_flag_given_twice_with_two_values_says_which_counts(flags, flag, tmp_path, capsys, monkeypatch):
    """The last counts (a wrapper's default can be overridden), and that is said, not silent."""
    from bench.launch import config

    monkeypatch.setattr(config, "check_before_run", lambda cfg: (_ for _ in ()).throw(SystemExit(0)))  # no run
    _, _, err = run_cli(capsys, "run", *flags)
    assert f"note: {flag} {flags[1]} is overridden by the later {flag} {flags[3]}" in err, err
