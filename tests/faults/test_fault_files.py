"""Fault class: hostile report files for compare — each named and skipped, the rest compared."""

from __future__ import annotations

import json
import os
import resource
import time

import pytest
from conftest import cli_run as run_cli
from faultkit import (
    fault_fixture,  # noqa: F401 - each case's own temporary directory
    run_bench,
)
from reportgen import make_report

from bench.model.io import dump_report


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
    assert "blender-finetune · samples/s" in out  # the two good reports were still compared


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
