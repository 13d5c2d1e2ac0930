"""Fault class: inputs that contradict each other. Two files that claim one run but differ, a baseline
that names one of them, two prices for one label, flags that a configuration would ignore: each is
refused (exit 2, naming the flag) or set aside and said (exit 1, naming the files), never resolved
by picking one silently."""

from __future__ import annotations

import json

import pytest
from conftest import cli_run as run_cli
from faultkit import QUICK
from faultkit import fault_fixture  # noqa: F401 - each case's own temporary directory
from reportgen import make_report

from bench.model.io import dump_report


def _pair(tmp_path, change):
    """a.json, b.json, and c.json: a's run_id with `change` applied to a's content."""
    a = dump_report(make_report("a", 0.2, repeats=3), tmp_path / "a.json")
    b = dump_report(make_report("b", 0.1, seed=1, repeats=3), tmp_path / "b.json")
    data = json.loads(a.read_text())
    change(data)
    c = tmp_path / "c.json"
    c.write_text(json.dumps(data))
    return a, b, c


def _times(d, factor):
    for rep in d["results"][0]["timing"]["repeats"]:
        rep["step_times_s"] = [t * factor for t in rep["step_times_s"]]


CLAIMS = {  # one run_id, other content
    "step times 5x apart": (lambda d: _times(d, 5), "results[0].timing.repeats[0].step_times_s[0]"),
    "another label": (lambda d: d.update(label="not a"), "label"),
    "another device": (lambda d: d["environment"]["device"].update(device_name="Other CPU"),
                       "environment.device.device_name"),
    "one repeat fewer": (lambda d: d["results"][0]["timing"]["repeats"].pop(), "results[0].timing.repeats"),
    "another time": (lambda d: d.update(created_at="2026-11-29T00:00:00+00:00"), "created_at"),
}


@pytest.mark.parametrize("kind", list(CLAIMS))
def test_files_that_claim_one_run_but_differ_are_both_set_aside_and_named(kind, tmp_path, capsys):
    change, field = CLAIMS[kind]
    a, b, c = _pair(tmp_path, change)
    code, out, err = run_cli(capsys, "compare", b, a, c)
    text = " ".join(out.split())
    assert code == 1, err
    assert f"{a}, {c}: set aside, not compared" in text and field in text and "run_id a-0-id" in text
    assert "b" in text and "a vs b" not in text  # neither of the two was compared as "the" run


def test_an_exact_copy_is_dropped_as_the_same_run_not_a_conflict(tmp_path, capsys):
    a, b, c = _pair(tmp_path, lambda d: None)
    code, out, _ = run_cli(capsys, "compare", a, b, c)
    assert code == 0 and f"{c}: dropped, the same run as {a}" in " ".join(out.split())


def test_a_baseline_that_names_one_of_a_conflicting_pair_is_refused(tmp_path, capsys):
    a, b, c = _pair(tmp_path, lambda d: _times(d, 5))
    for spec in (str(c), "c.json", "a-0-id", "a"):
        code, _, err = run_cli(capsys, "compare", a, b, c, "--baseline", spec)
        assert code == 2 and "which was set aside" in err, (spec, err)


def test_the_dataframe_facade_sets_a_conflicting_pair_aside_too(tmp_path):
    from bench import load_reports

    a, b, c = _pair(tmp_path, lambda d: _times(d, 5))
    frame = load_reports([a, b, c])
    assert set(frame["run"]) == {"b"}


@pytest.mark.parametrize("flags,said", [
    (["--price", "cpu=1", "--price", "cpu=2"], "--price: two prices for 'cpu': 1/1"),
    (["--price", "a=1/2", "--price", "a=1/4"], "--price: two prices for 'a': 1/2"),
    (["--price", "hpu=dl1.24xlarge", "--price", "hpu=12/8"], "--price: two prices for 'hpu': 13.11/8"),
    (["--price", "cpu=1", "--prices", "{file}"], "two prices for 'cpu'"),
])
def test_two_prices_for_one_label_are_refused_not_the_first_taken(flags, said, tmp_path, capsys):
    a, b, _ = _pair(tmp_path, lambda d: None)
    (tmp_path / "prices.txt").write_text("# prices\ncpu=3\n")
    flags = [f.format(file=tmp_path / "prices.txt") for f in flags]
    code, _, err = run_cli(capsys, "compare", a, b, *flags)
    assert code == 2 and said in err, err


def test_the_same_price_from_a_flag_and_a_file_counts_once(tmp_path, capsys):
    a, b, _ = _pair(tmp_path, lambda d: None)
    (tmp_path / "prices.txt").write_text("cpu=3\n")
    code, out, err = run_cli(capsys, "compare", a, b, "--price", "cpu=3", "--prices", tmp_path / "prices.txt")
    assert code == 0, err


def test_a_price_that_names_no_run_is_said(tmp_path, capsys):
    a, b, _ = _pair(tmp_path, lambda d: None)
    code, out, err = run_cli(capsys, "compare", a, b, "--price", "cpu=3", "--price", "gaudi-box=9")
    assert code == 0, err
    assert "the price for 'gaudi-box' (given with --price) matches no run, so it priced nothing" in " ".join(out.split())


IGNORED = [  # flags this configuration would ignore
    (["--scaling", "1,2", "--nproc", "4"], "--nproc: --scaling gives the world sizes"),
    (["--scaling", "1,2", "--nproc", "1"], "--nproc: --scaling gives the world sizes"),  # even the default value
    (["--dist-timeout", "30"], "--dist-timeout: only applies to several ranks"),
    (["--rdzv-endpoint", "127.0.0.1:29500"], "--rdzv-endpoint: only applies to several ranks"),
    (["--node-rank", "0"], "--node-rank: only applies with --nnodes above 1"),
    (["--min-steps", "10"], "--min-steps: only applies with --time-budget"),
]


@pytest.mark.parametrize("flags,said", IGNORED, ids=[s.split(":")[0] for _, s in IGNORED])
def test_a_flag_the_configuration_would_ignore_is_refused_before_work(flags, said, tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", *QUICK, "--out", tmp_path / "out", *flags)
    assert code == 2 and said in err, err
    assert not (tmp_path / "out").exists()


def test_the_same_flags_where_they_count_are_taken(tmp_path, capsys):
    from conftest import run_config

    assert run_config("--nproc", 2, "--dist-timeout", 30).launch.dist_timeout == 30
    assert run_config("--time-budget", 5, "--min-steps", 10).measure.min_steps == 10
    assert run_config("--nproc", 2, "--nnodes", 2, "--node-rank", 1, "--rdzv-endpoint", "h:1").launch.node_rank == 1
