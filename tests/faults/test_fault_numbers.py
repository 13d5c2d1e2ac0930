"""Fault class: numbers the code cannot hold — NaN and infinity, and values beyond any real quantity —
from the command line, from a run, and from report files (current and old schemas)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import cli_run as run_cli
from faultkit import (
    ONE,
    QUICK,
    fault_fixture,  # noqa: F401 - each case's own temporary directory
    only_report,
)
from reportgen import make_report

from bench.model.io import dump_report

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


# ---- numbers beyond any real quantity, read from report files -----------------------------------------
# Every number of a report is bounded where the model declares it (bench/core/typed.py: ±1e30, whole
# numbers within 64 bits, times 1970-2261), so what loads can be summed, multiplied and converted.

HUGE = 10 ** 400


def _result(d):
    return d["results"][0]


def _repeat(d):
    return d["results"][0]["timing"]["repeats"][0]


BEYOND = {  # report JSON -> the same with one number no code can hold
    "400-digit count in params": lambda d: _result(d)["params"].update(batch_size=HUGE),
    "400-digit repeat index": lambda d: _repeat(d).update(index=HUGE),
    "400-digit thread count": lambda d: _repeat(d).update(threads=HUGE),
    "400-digit environment value": lambda d: d["environment"]["host"].update(cpu_count=HUGE),
    "400-digit handicap in the config": lambda d: d["config"].update(measure={"handicap": HUGE}),
    "400-digit workload metric": lambda d: _result(d)["workload_metrics"].update(requests=HUGE),
    "400-digit sample count of a summary": lambda d: _result(d)["metrics"]["step_time_s"].update(n=HUGE),
    "400-digit samples in a step": lambda d: _repeat(d)["step_samples"].__setitem__(0, HUGE),
    "1e308 samples per step (their sum overflows)": lambda d: _repeat(d).update(
        step_samples=[1e308] * len(_repeat(d)["step_samples"])),
    "1e300 seconds of set-up": lambda d: _repeat(d).update(setup_s=1e300),
    "1e300 bytes of memory": lambda d: _result(d)["memory"].update(device_peak_bytes=1e300),
    "-1e300 CPU seconds": lambda d: _repeat(d).update(cpu_s=-1e300),
    "1e300 FLOPs per step": lambda d: _result(d).update(flops_per_step=1e300),
    "a telemetry sample of 1e300 W": lambda d: d["telemetry"]["samples"][0].update({"gpu0.power_w": 1e300}),
    "created in year 1 east of UTC": lambda d: d.update(created_at="0001-01-01T00:00:00+05:00", label=None),
    "created in year 9999 west of UTC": lambda d: d.update(created_at="9999-12-31T23:59:59-05:00", label=None),
    "created in 2300": lambda d: d.update(created_at="2300-01-01T00:00:00+00:00"),
    "created before 1970": lambda d: d.update(created_at="1969-12-31T23:59:59+00:00"),
    "created with no UTC offset": lambda d: d.update(created_at="2026-01-01T00:00:00"),
}


def _compare_with(tmp_path, capsys, bad_data, *extra):
    a = dump_report(make_report("a", 0.2, repeats=3), tmp_path / "a.json")
    b = dump_report(make_report("b", 0.1, seed=1, repeats=3), tmp_path / "b.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bad_data))
    return run_cli(capsys, "compare", a, b, bad, *extra)


@pytest.mark.parametrize("kind", list(BEYOND))
def test_a_number_beyond_any_quantity_is_named_and_the_rest_compared(kind, tmp_path, capsys):
    data = make_report("x", 0.1, repeats=3, seed=5).to_json()
    BEYOND[kind](data)
    code, out, err = _compare_with(tmp_path, capsys, data, "--csv", tmp_path / "o.csv", "--json", tmp_path / "o.j")
    assert code == 1 and "bad.json" in err and "internal error" not in err, err
    assert "· samples/s ·" in out and "b vs a" in out.replace("\n", " ")  # the other two were compared
    assert (tmp_path / "o.csv").exists()


def _v1(mutate):
    data = json.loads((FIXTURES / "report-v1-tiny.json").read_text())
    data["run_id"] = "old-one-0000"
    mutate(data)
    return data


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
OLD = {  # schema 1 and 2 files whose migration meets a number it cannot hold
    "v1 clock of 1e308 MHz (x 1e6 is infinite)": lambda d: d["telemetry"]["samples"][0].update(
        {"gpu0.sm_clock_mhz": 1e308}),
    "v1 energy of 10**400 J with a per-sample share": lambda d: d["results"][0].update(
        energy={"joules": HUGE, "per_sample_j": 1.0, "devices": {"cuda:0": {"joules": HUGE}}}),
    "v1 per-sample energy of 10**400 J": lambda d: d["results"][0].update(
        energy={"joules": 1.0, "per_sample_j": HUGE, "devices": {"cuda:0": {"joules": 1.0}}}),
    "v1 set-up of 1e300 s": lambda d: d["results"][0]["timing"].update(setup_s=1e300),
    "v1 figure of 10**400": lambda d: d["results"][0]["metrics"].update(custom_rate=HUGE),
    "v1 params nested 10**400": lambda d: d["results"][0]["params"].update(model={"layers": HUGE}),
    "v2 with a 400-digit repeat index": "v2",
}


@pytest.mark.parametrize("kind", list(OLD))
def test_an_old_report_whose_migration_meets_a_huge_number_is_named(kind, tmp_path, capsys):
    if OLD[kind] == "v2":
        data = json.loads((FIXTURES / "report-v2-tiny.json").read_text())
        data["run_id"] = "old-two-0000"
        data["results"][0]["timing"]["repeats"][0]["index"] = HUGE
    else:
        data = _v1(OLD[kind])
    code, out, err = _compare_with(tmp_path, capsys, data)
    assert code == 1 and "bad.json" in err and "internal error" not in err, err
    assert "b vs a" in out.replace("\n", " ")


# ---- one file the code did not expect never ends the comparison of the others ---------------------------
# Beyond the bounds, a guard: whatever one file makes the analysis or a renderer raise, that file is
# named and set aside (bench/analysis/load.py isolated). Faults are injected by name, deterministically.

def _poison(monkeypatch, when, where="render"):
    """Make the comparison raise where `when(run names)` says so: in a renderer (the verdict's words,
    which every output shows) or in the analysis (one workload's comparison)."""
    if where == "render":
        from bench.render import words

        real = words.short

        def short(row):
            if when({row.run.name}):
                raise OverflowError("an injected fault")
            return real(row)

        monkeypatch.setattr(words, "short", short)
    else:
        from bench.analysis import compare

        real_cw = compare.compare_workload

        def compare_workload(runs, base, rules):
            if when({r.name for r in runs}):
                raise OverflowError("an injected fault")
            return real_cw(runs, base, rules)

        monkeypatch.setattr(compare, "compare_workload", compare_workload)


def _three(tmp_path, third="poison"):
    return [dump_report(make_report(n, m, seed=i, repeats=3), tmp_path / f"{n}.json")
            for i, (n, m) in enumerate((("a", 0.2), ("b", 0.1), (third, 0.15)))]


@pytest.mark.parametrize("out_flag", [[], ["--json", "-"], ["--csv", "o.csv"], ["--markdown", "o.md"]])
def test_a_file_that_breaks_a_renderer_is_named_and_the_others_compared(out_flag, tmp_path, capsys, monkeypatch):
    _poison(monkeypatch, lambda names: "poison" in names)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "compare", *_three(tmp_path), *out_flag)
    assert code == 1, err
    assert "poison.json: cannot be compared (OverflowError: an injected fault)" in err and "a bug in bench" in err
    if out_flag[:2] == ["--json", "-"]:
        doc = json.loads(out)
        assert {r["run"] for w in doc["workloads"] for r in w["rows"]} == {"a", "b"}
    elif out_flag:
        assert "poison" not in (tmp_path / out_flag[1]).read_text() and "b" in (tmp_path / out_flag[1]).read_text()
    else:
        assert "b vs a" in out.replace("\n", " ") and "poison" not in out


def test_a_pair_that_breaks_together_loses_the_later_file_only(tmp_path, capsys, monkeypatch):
    _poison(monkeypatch, lambda names: {"b", "poison"} <= names, "analysis")  # each is fine alone, not together
    code, out, err = run_cli(capsys, "compare", *_three(tmp_path))
    assert code == 1 and "poison.json: cannot be compared" in err and "b.json" not in err, err
    assert "b vs a" in out.replace("\n", " ")


def test_a_fault_that_every_file_meets_is_a_bug_said_once_per_file_not_a_traceback(tmp_path, capsys, monkeypatch):
    _poison(monkeypatch, lambda names: True, "analysis")
    code, _, err = run_cli(capsys, "compare", *_three(tmp_path))
    assert code == 2 and err.count("cannot be compared") == 3 and "no usable report" in err


def test_bench_debug_shows_the_traceback_instead(tmp_path, capsys, monkeypatch):
    from bench import cli

    _poison(monkeypatch, lambda names: "poison" in names)
    monkeypatch.setenv("BENCH_DEBUG", "1")
    with pytest.raises(OverflowError):
        cli.cli(["compare", *map(str, _three(tmp_path))])
