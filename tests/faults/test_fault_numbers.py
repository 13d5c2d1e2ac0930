"""Fault class: numbers the code cannot hold — NaN and infinity, and values beyond any real quantity."""

from __future__ import annotations

import pytest
from conftest import cli_run as run_cli
from faultkit import (
    ONE,
    QUICK,
    fault_fixture,  # noqa: F401 - each case's own temporary directory
    only_report,
)

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
