"""--fail-on on any declared figure, in its direction, from the figure's value in each repeat; an
inconclusive gate says what would give it a verdict."""

from __future__ import annotations

import random

import pytest
from conftest import cli_run
from reportgen import generation_report, make_report

from bench.analysis.compare import compare
from bench.analysis.options import parse_gate
from bench.core.errors import ConfigError
from bench.launch.launcher import repeat_figures
from bench.model.io import dump_report
from bench.model.report import Contention, FigureSpec, Summary, ThreadChoice
from bench.render.words import gate_text

P99 = "workload_metrics.ttft_s.p99"


def with_p99(label, p99_s, seed=0, repeats=3, cv=0.03):
    """A generation run whose repeats' TTFT p99 scatter around p99_s."""
    rng = random.Random(seed)
    r = generation_report(label, 0.1, seed=seed, repeats=repeats)
    for rep in r.results[0].timing.repeats:
        rep.figure_values[P99] = p99_s * (1 + rng.gauss(0, cv))
    return r


def outcomes(spec, *reports):
    c = compare([(f"{r.label}.json", r) for r in reports], gates=(parse_gate(spec),))
    return {g.run: g for g in c.gates}


def test_a_latency_gate_fails_on_a_conclusive_rise_and_passes_a_fall():
    base = with_p99("base", 0.100, cv=0.01)
    got = outcomes("ttft_s.p99:10%", base, with_p99("worse", 0.130, seed=1), with_p99("better", 0.070, seed=2),
                   with_p99("close", 0.101, seed=3, cv=0.01))
    assert (got["worse"].outcome, got["better"].outcome, got["close"].outcome) == ("fail", "pass", "pass")
    assert got["worse"].better == "lower" and got["worse"].figure == P99
    text = gate_text(got["worse"])
    assert "ttft_s.p99: 1.3" in text and "the baseline's, higher" in text and "limit 10% above" in text
    assert "faster" not in text and "slower" not in text  # a latency is not a speed


def test_a_gate_on_a_metrics_figure_is_recomputed_from_the_raw_times():
    """retrieve-refine declares `metrics.step_time_s.p99` (request p99): older reports have no values per
    repeat, and the raw step times give them."""
    figs = (FigureSpec("metrics.tokens_per_s", "new tokens/s", "tokens/s", "higher", lead=True),
            FigureSpec("metrics.step_time_s.p99", "request p99", "s", "lower"))
    base = make_report("base", 0.1, repeats=3, workload="retrieve-refine", figures=figs, main_metric="tokens_per_s")
    slow = make_report("slow", 0.14, repeats=3, seed=1, workload="retrieve-refine", figures=figs,
                       main_metric="tokens_per_s")
    assert outcomes("step_time_s.p99:10%", base, slow)["slow"].outcome == "fail"


def test_gates_the_workloads_cannot_answer_are_errors():
    base, other = with_p99("base", 0.1), with_p99("other", 0.1, seed=1)
    with pytest.raises(ConfigError, match="--fail-on recall.recall_at_1: no workload compared has that figure"):
        outcomes("recall.recall_at_1:5%", base, other)
    tune = (FigureSpec("metrics.samples_per_s", "samples/s", "samples/s", "higher", lead=True),
            FigureSpec("workload_metrics.loss_first", "loss first", "", "none"))
    a, b = make_report("a", 0.1, repeats=3, figures=tune), make_report("b", 0.1, repeats=3, seed=1, figures=tune)
    with pytest.raises(ConfigError, match="no better direction"):
        outcomes("loss_first:5%", a, b)
    for bad in ("ttft_s.p99", "ttft s:5%", "x" * 200 + ":5%", "ttft_s.p99:0%"):
        with pytest.raises(ConfigError, match="--fail-on"):
            parse_gate(bad)


def test_an_inconclusive_gate_says_what_would_give_it_a_verdict():
    base = with_p99("base", 0.1)
    shared = with_p99("shared", 0.1, seed=1)
    shared.environment.threads = ThreadChoice(threads=2, reason="free", cpus=2.0, other_load_cores=0.0)
    for rep in shared.results[0].timing.repeats:
        rep.threads = 2
        rep.contention = Contention(other_load_cores=1.0, reasons=["other processes used 1.00 CPU cores"])
    g = outcomes("ttft_s.p99:10%", base, shared)["shared"]
    assert g.outcome == "inconclusive" and g.hint.code == "quieter"
    assert ("for a verdict: run shared where nothing else shares the machine (other load used 1.0 of 2 cores), "
            "or again with --threads 1") in gate_text(g)
    few = outcomes("samples_per_s:5%", make_report("base", 0.1, repeats=3), make_report("few", 0.1, repeats=2))
    assert "--repeats 3 or more on each side (2 now)" in gate_text(few["few"])
    wide = outcomes("ttft_s.p99:10%", base, with_p99("wide", 0.105, seed=4, cv=0.2))["wide"]
    assert wide.outcome == "inconclusive" and wide.hint.code == "narrower"
    more, toward = wide.hint.values["more"], wide.hint.values["toward"]
    assert toward == "pass" and 1 <= more <= 100  # the p99 ratio (1.06x) is inside the 10 % limit
    assert (f"about {more} more repeats per side (3 now) would likely make it pass" in gate_text(wide)
            and "--target-ci" in gate_text(wide))


def test_the_cli_gates_a_latency_and_explains_exit_3(tmp_path, capsys):
    a = dump_report(with_p99("a", 0.1), tmp_path / "a.json")
    b = dump_report(with_p99("b", 0.13, seed=1), tmp_path / "b.json")
    c = dump_report(with_p99("c", 0.1, seed=2, repeats=2), tmp_path / "c.json")
    code, _, err = cli_run(capsys, "compare", a, b, "--fail-on", "ttft_s.p99:10%")
    assert code == 1 and "regression" in err
    code, _, err = cli_run(capsys, "compare", a, c, "--fail-on", "ttft_s.p99:10%")
    assert code == 3 and "for a verdict: --repeats 3" in err


class Fixed:
    """A workload's metrics: each repeat's TTFT is its index + 1."""

    @staticmethod
    def metrics(repeats, params, options):
        return {"ttft_s": Summary(n=1, median=repeats[0].index + 1.0, p99=repeats[0].index + 1.0),
                "label": "text"}


def test_the_launcher_records_each_declared_figure_per_repeat():
    r = make_report("a", 0.1, repeats=3, figures=(FigureSpec(P99, "TTFT p99", "s", "lower"),
                                                  FigureSpec("workload_metrics.label", "label", "", "none"),
                                                  FigureSpec("metrics.step_time_s.median", "step p50", "s", "lower")))
    repeat_figures(r.results[0], Fixed, None)
    reps = r.results[0].timing.repeats
    assert [rep.figure_values[P99] for rep in reps] == [1.0, 2.0, 3.0]
    assert all(rep.figure_values["workload_metrics.label"] is None for rep in reps)  # not a number
    assert reps[0].figure_values["metrics.step_time_s.median"] == pytest.approx(sorted(reps[0].step_times_s)[10],
                                                                                 rel=0.1)
