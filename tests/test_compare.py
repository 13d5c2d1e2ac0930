"""Comparisons and verdicts: run-to-run variance in the interval, the practical band, contention,
too few repeats, duplicates, baselines, gates."""

import io
import random

import pytest
from reportgen import make_report
from rich.console import Console

from bench.analysis.compare import compare
from bench.analysis.options import parse_gate
from bench.core import stats
from bench.core.errors import ConfigError
from bench.model.report import Contention, RankResult
from bench.render.records import record
from bench.render.words import display, gate_text, method, sentence
from bench.render.words import verdict_text as said


def cmp(*reports, **kw):
    return compare([(f"{r.label}.json", r) for r in reports], **kw)


def gates(reports, spec):
    """The gates that did not pass, in words: [(fail | inconclusive, what)]."""
    c = compare([r if isinstance(r, tuple) else (f"{r.label}.json", r) for r in reports], gates=(parse_gate(spec),))
    return [(g.outcome, gate_text(g)) for g in c.gates if g.outcome != "pass"]


def row(c, name):
    return next(r for r in c.rows if r.run.name == name)


def test_a_clear_speedup_reads_faster_with_its_interval():
    [c] = cmp(make_report("slow", 0.2, repeats=3), make_report("fast", 0.1, seed=1, repeats=3))
    base, other = c.rows
    assert base.baseline and base.verdict == "baseline" and said(base) == "baseline"
    s = other.speedup
    assert s.verdict == "faster" and s.ratio == pytest.approx(2.0, rel=0.05) and 1.9 < s.ci_low < 2 < s.ci_high < 2.1
    assert said(other) == f"{s.ratio:.2f}x faster (95 % CI {s.ci_low:.2f}–{s.ci_high:.2f}x)"
    assert method(s) == "Welch t on log throughputs, 3 vs 3 repeats" and s.method == "welch"


def test_slower_puts_the_interval_in_the_headlines_direction():
    [c] = cmp(make_report("a", 0.1, repeats=3), make_report("b", 0.15, seed=2, repeats=3))
    s = c.rows[1].speedup
    assert s.verdict == "slower"
    head, lo, hi = 1 / s.ratio, 1 / s.ci_high, 1 / s.ci_low
    assert lo < head < hi  # 0.1 printed "1.56x slower [0.62, 0.66]": the interval the other way round
    assert said(c.rows[1]) == f"{head:.2f}x slower (95 % CI {lo:.2f}–{hi:.2f}x)"


def test_a_difference_inside_the_band_is_same_within_2_percent():
    [c] = cmp(make_report("a", 0.1, repeats=5, cv=0.005), make_report("b", 0.1005, seed=3, repeats=5, cv=0.005))
    assert c.rows[1].speedup.verdict == "same" and said(c.rows[1]).startswith("same within 2 % (95 % CI")


def test_an_interval_that_straddles_the_band_is_inconclusive():
    a = make_report("a", 0.1, repeat_means=[0.1, 0.12, 0.09])
    b = make_report("b", 0.1, seed=4, repeat_means=[0.1, 0.085, 0.115])
    [c] = cmp(a, b)
    assert c.rows[1].speedup.verdict == "inconclusive" and said(c.rows[1]).startswith("no clear difference: ")
    assert c.rows[1].speedup.reason.code == "unclear"


def test_one_repeat_gives_a_ratio_but_no_verdict():
    [c] = cmp(make_report("a", 0.2), make_report("b", 0.1, seed=1))
    s = c.rows[1].speedup
    assert s.verdict == "no_verdict" and "faster" not in said(c.rows[1]) and s.reason.code == "one_repeat"
    assert "1 repeat: run-to-run variance unknown; within-run 95 % CI" in said(c.rows[1])
    [c] = cmp(make_report("a", 0.2, repeats=2), make_report("b", 0.1, seed=1, repeats=2))
    assert "a verdict needs 3 per side (--min-repeats)" in said(c.rows[1])
    assert c.rows[1].speedup.reason.values == {"repeats": 2, "needed": 3}
    [c] = cmp(make_report("a", 0.2, repeats=2), make_report("b", 0.1, seed=1, repeats=2), min_repeats=2)
    assert c.rows[1].speedup.verdict == "faster"


def test_a_contended_run_withholds_the_verdict_and_says_why():
    a, b = make_report("a", 0.2, repeats=3), make_report("b", 0.1, seed=1, repeats=3)
    b.results[0].timing.repeats[1].contention = Contention(0.7, 0.0, reasons=["other processes used 0.70 CPU cores "
                                                                               "during the measured steps"])
    [c] = cmp(a, b)
    assert c.rows[1].speedup.reason.code == "contended"
    assert said(c.rows[1]) == ("inconclusive: b was contended (repeat 1: other processes used 0.70 CPU cores "
                                 "during the measured steps)")
    noisy = make_report("n", 0.1, seed=5, repeats=4)
    rep = noisy.results[0].timing.repeats[2]
    rep.step_times_s = [t * (1 + 0.6 * (i % 2)) for i, t in enumerate(rep.step_times_s)]  # one disturbed repeat
    [c] = cmp(make_report("a", 0.1, repeats=4), noisy)
    assert "inconclusive: n was contended (repeat 2: its steps varied" in said(c.rows[1])


def _probed(label, mean_s, probe_s, seed=0, host="host-a"):
    r = make_report(label, mean_s, seed=seed, repeats=3, host=host)
    for i, rep in enumerate(r.results[0].timing.repeats):
        rep.host_probe_s = probe_s * (1 + 0.01 * i)
    return r


def test_a_machine_whose_own_speed_moved_between_two_runs_gets_no_verdict():
    # the A/A case it comes from: the same command 12 s apart, 1.30x slower, every repeat agreeing
    a, b = _probed("a", 0.1, 0.0032), _probed("b", 0.13, 0.0041, seed=1)
    [c] = cmp(a, b)
    assert c.rows[1].verdict == "inconclusive" and c.rows[1].speedup.reason.code == "host_changed"
    assert said(c.rows[1]).startswith("inconclusive: the machine itself ran 1.28x slower during b (a fixed reference")
    assert [o for o, _ in gates([("a", a), ("b", b)], "samples_per_s:5%")] == ["inconclusive"]
    [c] = cmp(a, _probed("b", 0.13, 0.0033, seed=1))  # the machine held its speed: the workload changed
    assert c.rows[1].verdict == "slower"
    [c] = cmp(a, _probed("b", 0.13, 0.0041, seed=1, host="host-b"))  # another machine: its workload decides
    assert c.rows[1].verdict == "slower"
    two = _probed("b", 0.13, 0.0041, seed=1)
    for rep in two.results[0].timing.repeats:
        rep.threads = 2  # the kernel on two threads hands work between them: its time is not the one-thread one's
    for rep in a.results[0].timing.repeats:
        rep.threads = 1
    [c] = cmp(a, two)
    assert c.rows[1].verdict == "slower"


def test_an_interrupted_run_is_marked_and_gets_no_verdict():
    b = make_report("b", 0.1, seed=1, repeats=3)
    b.results[0].status = "interrupted"
    [c] = cmp(make_report("a", 0.2, repeats=3), b)
    assert said(c.rows[1]) == "inconclusive: b was interrupted" and display(c.rows[1].run) == "b (interrupted)"


def test_a_failed_result_is_shown_as_failed():
    b = make_report("b", 0.1, seed=1)
    b.results[0].status, b.results[0].error = "failed", "RuntimeError: boom"
    b.results[0].timing.repeats[0].step_times_s = []
    b.results[0].timing.repeats[0].step_samples = []
    b.results[0].timing.repeats[0].step_tokens = []
    [c] = cmp(make_report("a", 0.2), b)
    assert c.rows[1].verdict == "failed" and said(c.rows[1]) == "failed: RuntimeError: boom"
    assert record(c.rows[1], c)["status"] == "failed" and display(c.rows[1].run) == "b (failed)"


def test_different_identity_is_not_comparable_and_says_force_compares_anyway():
    a = make_report("a", 0.1, repeats=3)
    b = make_report("b", 0.1, repeats=3, params={"batch_size": 24, "precision": "bf16"})
    [c] = cmp(a, b)
    r = c.rows[1]
    assert not r.comparable and r.speedup is None and r.differences == ["batch_size", "precision"]
    assert said(r) == "not comparable (batch_size, precision differ; --force compares anyway, marked)"
    [c] = cmp(a, b, force=True)
    assert c.rows[1].speedup.ratio is not None and "(forced: batch_size, precision differ)" in said(c.rows[1])


def test_duplicates_are_dropped_with_a_note():
    a, b = make_report("a", 0.1), make_report("b", 0.2, seed=1)
    comp = compare([("a.json", a), ("a.json", a), ("copy.json", a), ("b.json", b)])
    assert [r.run.name for r in comp.workloads[0].rows] == ["a", "b"]
    assert any("copy.json: dropped, the same run as a.json" in sentence(n) for n in comp.notes)


def test_baseline_by_label_path_or_run_id_prefix_and_an_ambiguous_one_is_an_error():
    a, b, b2 = make_report("a", 0.1), make_report("b", 0.2, seed=1), make_report("b", 0.3, seed=2)
    [c] = compare([("x/a.json", a), ("x/b.json", b)], baseline="b")
    assert c.baseline.name == "b" and c.rows[1].baseline
    [c] = compare([("x/a.json", a), ("x/b.json", b)], baseline=b.run_id[:6])
    assert c.baseline.run_id == b.run_id
    with pytest.raises(ConfigError, match="matches no run"):
        compare([("x/a.json", a)], baseline="zzz")
    with pytest.raises(ConfigError, match="ambiguous, it matches 2 runs: b .*x/b.json.*; b .*x/b2.json"):
        compare([("x/a.json", a), ("x/b.json", b), ("x/b2.json", b2)], baseline="b")
    [c] = compare([("x/a.json", a), ("x/b.json", b), ("x/b2.json", b2)], baseline="x/b2.json")
    assert c.baseline.run_id == b2.run_id and c.baseline.path == "x/b2.json"


def test_a_handicapped_run_is_flagged():
    b = make_report("b", 0.12, seed=1, repeats=3)
    b.config = {"measure": {"handicap": 15.0}}
    comp = cmp(make_report("a", 0.1, repeats=3), b)
    assert any("b: ran with --handicap 15 %" in sentence(n) for n in comp.notes)


def test_gates_fail_only_on_conclusive_regressions():
    base = make_report("base", 0.1, repeats=3)
    comp = [base, make_report("slow", 0.125, seed=4, repeats=3), make_report("close", 0.101, seed=5, repeats=3)]
    outcomes = gates(comp, "samples_per_s:5%")
    assert [o for o, _ in outcomes] == ["fail"] and "slow vs base" in outcomes[0][1]
    assert gates(comp, "samples_per_s:30%") == []
    one = [base, make_report("slow", 0.2, seed=4)]  # one repeat: not conclusive, whatever the ratio
    assert [o for o, _ in gates(one, "samples_per_s:5%")] == ["inconclusive"]
    for bad in ("nonsense", "joy_per_s:5%", "samples_per_s:0%", "samples_per_s:nan%", "samples_per_s:150%"):
        with pytest.raises(ConfigError, match="--fail-on"):
            parse_gate(bad)


def test_metrics_are_recomputed_from_raw_times_not_trusted():
    r = make_report("a", 0.1)
    r.results[0].metrics.samples_per_s.value = 1e9  # a lie in the file
    [c] = cmp(r)
    assert record(c.rows[0], c)["samples_per_s"] == pytest.approx(8 / 0.1, rel=0.05)


def test_unknown_values_stay_none():
    [c] = cmp(make_report("a", 0.1))
    v = record(c.rows[0], c)
    assert v["device_power_w"] is None and v["energy_per_sample_j"] is None and v["device_util_percent"] is None


def test_reference_reports_are_flagged():
    from bench.model.io import load_report

    loaded = [(p, load_report(p)) for p in ("reports/reference/seed-habana-dl1.json",
                                            "reports/reference/seed-colab-p100.json")]
    [c] = compare(loaded)
    assert all(r.run.published for r in c.rows)
    other = c.rows[1]
    assert not other.comparable and {"model", "data", "batch_size"} <= set(other.differences)
    assert {w for r in c.rows for w in r.warnings} == {"idle_accelerator"}
    v = record(c.rows[0], c)
    assert v["device_util_max_percent"] == 6.0 and v["parlai.exps"] == pytest.approx(29.01)
    [c] = compare(loaded, force=True)
    assert "published figures: no raw times" in said(c.rows[1]) and c.rows[1].verdict == "no_verdict"
    assert c.rows[1].speedup.reason.code == "no_raw_times"


def test_scaling_groups_compute_efficiency():
    from bench.analysis.scaling import scaling_of

    one = make_report("n1", 0.1, params={"world_size": 1})
    two = make_report("n2", 0.1, params={"world_size": 2}, seed=1)
    two.results[0].per_rank = [RankResult(r, "ok", timing=two.results[0].timing) for r in (0, 1)]
    [g] = scaling_of([("a", one), ("b", two)])
    assert [p.world_size for p in g.points] == [1, 2]
    assert g.points[1].value == pytest.approx(2 * g.points[0].value, rel=0.05)
    assert g.points[1].efficiency == pytest.approx(1.0, rel=0.05)
    assert compare([("a", one), ("b", two)], force=True).scaling == [g]  # the comparison carries the same


def sweep(rates_threads, contended_base=False):
    """A --scaling sweep: (world size, samples/s per rank, threads per rank) per point."""
    out = []
    for i, (n, step_s, threads) in enumerate(rates_threads):
        r = make_report(f"n{n}", step_s, params={"world_size": n}, seed=i, repeats=3)
        for rep in r.results[0].timing.repeats:
            rep.threads = threads
        if contended_base and i == 0:
            r.results[0].timing.repeats[0].contention = Contention(other_load_cores=0.8, reasons=["other load"])
        r.results[0].per_rank = [RankResult(k, "ok", timing=r.results[0].timing) for k in range(n)] if n > 1 else []
        out.append((f"{n}.json", r))
    return out


def test_scaling_holds_threads_per_rank_and_flags_what_nothing_explains():
    from bench.analysis.scaling import scaling_of
    from bench.render.compare_view import scaling_table

    def codes(loaded):
        [g] = scaling_of(loaded)
        return [(n.code, n.values.get("base_contended")) for n in g.notes], g

    # world size 1 with two threads, each of 2 ranks with one: the seed of a 1496 % efficiency
    found, g = codes(sweep([(1, 0.1, 2), (2, 0.1, 1)]))
    assert found == [("scaling_threads", None)] and [p.threads for p in g.points] == [2, 1]
    found, g = codes(sweep([(1, 0.1, 1), (2, 0.063, 1)]))  # 158.6 %, the same threads: unexplained
    assert found == [("superlinear", False)] and g.points[1].efficiency == pytest.approx(1.586, rel=0.05)
    assert codes(sweep([(1, 0.1, 1), (2, 0.063, 1)], contended_base=True))[0] == [("superlinear", True)]
    assert codes(sweep([(1, 0.1, 1), (2, 0.11, 1), (4, 0.12, 1)]))[0] == []  # below 100 %: nothing to flag
    text = io.StringIO()
    Console(file=text, width=200).print(scaling_table(scaling_of(sweep([(1, 0.1, 1), (2, 0.063, 1)]))))
    assert "above 100 % with the same threads per rank, which nothing in the runs explains" in text.getvalue()
    assert "samples/s" in text.getvalue() and "samples_per_s" not in text.getvalue()  # the figure's unit


def test_load_reports_gives_one_row_per_run_and_workload(tmp_path):
    import bench
    from bench.model.io import dump_report

    paths = [dump_report(make_report(n, 0.1, seed=i), tmp_path / f"{n}.json") for i, n in enumerate("ab")]
    frame = bench.load_reports(paths)
    assert list(frame["label"]) == ["a", "b"] and frame["samples_per_s"].iloc[0] == pytest.approx(80, rel=0.05)
    assert "param_batch_size" in frame.columns
    assert list(frame["verdict"]) == ["baseline", "no_verdict"] and frame["speedup"].iloc[1] > 0
    assert str(frame["created_at"].dtype).startswith("datetime64") and frame["created_at"].dt.tz is not None


def simulated_false_verdicts(method, pairs=400, repeats=3, between=0.05, within=0.02, steps=20, seed=7):
    """A/A pairs where each repeat's mean drifts by `between` (run-to-run) and steps by `within`."""
    rng = random.Random(seed)
    false = 0
    for _ in range(pairs):
        sides = []
        for _ in range(2):
            reps = []
            for _ in range(repeats):
                mean = 0.1 * (1 + rng.gauss(0, between))
                reps.append([mean * (1 + rng.gauss(0, within)) for _ in range(steps)])
            sides.append(reps)
        false += method(*sides)
    return false / pairs


def test_the_method_holds_its_level_where_a_bootstrap_over_steps_does_not():
    def welch(a, b):
        rates = [[1 / (sum(r) / len(r)) for r in side] for side in (a, b)]
        d = stats.welch_ratio(*rates)
        return d["ci_low"] > 1.02 or d["ci_high"] < 1 / 1.02

    def step_bootstrap(a, b):  # 0.1's method: every step of all repeats resampled alike
        flat = [[t for r in side for t in r] for side in (a, b)]
        d = stats.ratio_ci([1] * len(flat[1]), flat[1], [1] * len(flat[0]), flat[0])
        return d["significant"]

    assert simulated_false_verdicts(welch) <= 0.03
    assert simulated_false_verdicts(step_bootstrap) > 0.3  # why 0.1 said "24.05x slower" for identical commands


def test_a_latency_leads_verdict_counts_each_sides_repeats_as_its_own(monkeypatch):
    """A figure better lower is compared baseline / run; the repeat counts stay (the run's, the baseline's)."""
    from bench.analysis import verdicts

    monkeypatch.setattr(verdicts, "sides", lambda *a: ([0.010, 0.011], [0.020, 0.021, 0.019, 0.020]))
    monkeypatch.setattr(verdicts, "withheld", lambda run: None)
    monkeypatch.setattr(verdicts, "host_changed", lambda run, base: None)
    s = verdicts.figure_speedup(None, None, "ttft_s.p99", "workload_metrics.ttft_s.p99", min_repeats=2, lower=True)
    assert s.repeats == (2, 4)
