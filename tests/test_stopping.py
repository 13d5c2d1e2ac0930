"""--target-ci: repeats until the lead throughput's interval is narrow enough, on a fake clock and fake
throughputs; disturbed repeats kept, set aside and redone; compare leaves them out and counts them."""

from __future__ import annotations

import math
import statistics

import pytest
from conftest import cli_run, run_inline
from reportgen import make_report

from bench.analysis.compare import compare
from bench.core import stats
from bench.measure.options import MeasureOptions
from bench.measure.stopping import Until
from bench.model.derive import half_width, repeat_flags
from bench.model.report import Contention, Repeat


class FakeClock:
    def __init__(self, step_s: float = 10.0):
        self.now, self.step_s = 0.0, step_s

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        self.now += self.step_s


def drive(until: Until, rates, clock: FakeClock, disturbed=()) -> int:
    """Run the rule over fake repeats (each one clock tick): the repeats it ran."""
    for i, rate in enumerate(rates):
        if not until.more():
            return i
        clock.tick()
        until.add(rate, i in disturbed)
    return len(rates)


def predicted(sigma: float, target: float, least: int) -> int:
    """The first n >= least where the t interval of n log-rates alternating +sigma, -sigma (sample
    stdev sigma*sqrt(n/(n-1)) for even n, a little less for odd) has sinh(half) <= target."""
    for n in range(least, 200):
        logs = [sigma if i % 2 == 0 else -sigma for i in range(n)]
        half = stats.t_quantile(0.975, n - 1) * statistics.stdev(logs) / math.sqrt(n)
        if math.sinh(half) <= target:
            return n
    raise AssertionError("never")


@pytest.mark.parametrize(("sigma", "target"), [(0.02, 0.03), (0.05, 0.03), (0.01, 0.05), (0.04, 0.02)])
def test_the_rule_stops_at_the_repeat_the_variance_predicts(sigma, target):
    clock = FakeClock()
    rates = [100 * math.exp(sigma if i % 2 == 0 else -sigma) for i in range(200)]
    until = Until("samples_per_s", 3, target, max_repeats=200, clock=clock)
    n = predicted(sigma, target, 3)
    assert drive(until, rates, clock) == n and until.stopped == "precise"
    assert until.record().half_width <= target < half_width(rates[: n - 1]) if n > 3 else True
    assert until.record().seconds == pytest.approx(10.0 * n)


def test_a_disturbed_repeat_is_set_aside_and_redone_not_counted():
    clock = FakeClock()
    rates = [100, 101, 40, 100.5, 99.5, 100, 101]  # the third was shared with other load: it would widen the interval
    until = Until("samples_per_s", 3, 0.03, max_repeats=10, clock=clock)
    ran = drive(until, rates, clock, disturbed={2})
    assert until.rates == [r for i, r in enumerate(rates[:ran]) if i != 2]
    assert until.set_aside == 1 and until.record().ran == ran == 4 and until.stopped == "precise"


def test_the_bounds_stop_it_and_say_which():
    clock = FakeClock(10.0)
    noisy = [100, 130, 80, 120, 90, 125, 85, 110, 95, 140]
    by_count = Until("samples_per_s", 3, 0.01, max_repeats=5, clock=clock)
    assert drive(by_count, noisy, clock) == 5 and by_count.stopped == "max_repeats"
    clock = FakeClock(10.0)
    by_time = Until("samples_per_s", 3, 0.01, max_repeats=50, max_time_s=35.0, clock=clock)
    assert drive(by_time, noisy, clock) == 3 and by_time.stopped == "max_time"  # a fourth would end at 40 s
    clock = FakeClock(10.0)
    all_shared = Until("samples_per_s", 3, 0.5, max_repeats=4, clock=clock)
    assert drive(all_shared, noisy, clock, disturbed=set(range(10))) == 4 and all_shared.stopped == "max_repeats"


def test_a_fixed_count_runs_exactly_that_and_sets_nothing_aside():
    clock = FakeClock()
    until = Until("samples_per_s", 3, clock=clock)
    assert drive(until, [100, 50, 200, 100], clock, disturbed={1}) == 3
    assert until.stopped == "repeats" and until.set_aside == 0 and until.record().rule == "fixed"


def test_the_rule_watches_the_interval_the_run_reports():
    from bench.model.derive import rate_interval
    from bench.model.report import Timing

    reps = [Repeat(i, step_times_s=[0.1 * f] * 4, step_samples=[8.0] * 4, step_tokens=[8.0] * 4)
            for i, f in enumerate((1.0, 1.04, 0.97, 1.02))]
    iv = rate_interval([Timing(reps)], "samples_per_s")
    rates = [32 / (0.4 * f) for f in (1.0, 1.04, 0.97, 1.02)]
    assert half_width(rates) == pytest.approx((iv.ci_high - iv.ci_low) / (2 * iv.value))


def test_repeat_flags_name_other_load_noisy_steps_and_a_moved_host():
    clean = [Repeat(i, step_times_s=[0.1, 0.101, 0.099], step_samples=[1] * 3, step_tokens=[1] * 3,
                    host_probe_s=0.0020) for i in range(2)]
    quiet = Repeat(2, step_times_s=[0.1, 0.1, 0.102], step_samples=[1] * 3, step_tokens=[1] * 3, host_probe_s=0.0021)
    assert repeat_flags(quiet, clean) == []
    moved = Repeat(3, step_times_s=[0.1, 0.1, 0.1], step_samples=[1] * 3, step_tokens=[1] * 3, host_probe_s=0.0026)
    assert "1.30x" in " ".join(repeat_flags(moved, clean))
    jumpy = Repeat(4, step_times_s=[0.1, 0.2, 0.1], step_samples=[1] * 3, step_tokens=[1] * 3, host_probe_s=0.002)
    assert "CV" in " ".join(repeat_flags(jumpy, clean))
    shared = Repeat(5, step_times_s=[0.1] * 3, step_samples=[1] * 3, step_tokens=[1] * 3,
                    contention=Contention(other_load_cores=1.0, reasons=["other processes used 1.00 CPU cores"]))
    assert repeat_flags(shared, []) == ["other processes used 1.00 CPU cores"]
    assert repeat_flags(moved, clean[:1]) == []  # one clean repeat is no norm to judge by


@pytest.mark.parametrize("given", ["5%", "5", " 2.5% "])
def test_target_ci_takes_a_percentage(given):
    m = MeasureOptions.build({"target_ci": given})
    assert m.target == pytest.approx(float(given.strip().rstrip("%")) / 100)


@pytest.mark.parametrize(("flags", "needle"), [
    (["--target-ci", "0"], "--target-ci"), (["--target-ci", "-3%"], "--target-ci"),
    (["--target-ci", "nan"], "--target-ci"), (["--target-ci", "80%"], "--target-ci"),
    (["--target-ci", "3%", "--max-repeats", "1"], "--max-repeats"),
    (["--target-ci", "3%", "--repeats", "5", "--max-repeats", "4"], "--max-repeats"),
    (["--target-ci", "3%", "--repeats", "1"], "--repeats"),
    (["--target-ci", "3%", "--max-time", "0"], "--max-time")])
def test_bad_stopping_options_exit_2_naming_the_flag(flags, needle, capsys):
    code, _, err = cli_run(capsys, "run", "--device", "cpu", "--workload", "blender-finetune", *flags)
    assert code == 2 and needle in err


def shared_calls(monkeypatch, shared: set[int]):
    """The worker's contention check says 'shared' on these calls (0-based), quiet on the others."""
    import bench.measure.runner as runner

    calls = []

    def fake(a, b, need=None):
        calls.append(1)
        if len(calls) - 1 in shared:
            return Contention(other_load_cores=1.1, reasons=["other processes used 1.10 CPU cores"])
        return Contention(other_load_cores=0.0, reasons=[])

    monkeypatch.setattr(runner, "contention", fake)


def test_a_run_redoes_shared_repeats_and_compare_leaves_them_out(monkeypatch, tmp_path):
    shared_calls(monkeypatch, {1, 2})
    report = run_inline("--workload", "blender-finetune", "--target-ci", "0.001%", "--repeats", "2",
                        "--max-repeats", "4")
    res = report.results[0]
    assert [bool(r.set_aside) for r in res.timing.repeats] == [False, True, True, False]
    assert res.stopping.stopped == "max_repeats" and res.stopping.ran == 4 and res.stopping.set_aside == 2
    assert "contended" not in res.codes() and len(res.timing.measured) == 2
    again = make_report("other", res.metrics.step_time_s.median, repeats=3)
    row = compare([("a.json", report), ("b.json", again)]).workloads[0].rows[0]
    assert row.repeats == 2 and row.set_aside == 2
    assert any(n.code == "set_aside" and n.values["count"] == 2 for n in row.notes)


def test_when_every_repeat_was_shared_none_is_set_aside_and_the_run_is_contended(monkeypatch):
    shared_calls(monkeypatch, {0, 1, 2})
    res = run_inline("--workload", "blender-finetune", "--target-ci", "1%", "--repeats", "2",
                     "--max-repeats", "3").results[0]
    assert not any(r.set_aside for r in res.timing.repeats) and res.stopping.set_aside == 0
    assert "contended" in res.codes() and len(res.timing.measured) == 3
    assert res.stopping.half_width is not None  # over the three that count


def test_a_fixed_run_keeps_its_shared_repeats_counted(monkeypatch):
    shared_calls(monkeypatch, {1})
    res = run_inline("--workload", "blender-finetune", "--repeats", "3").results[0]
    assert res.stopping.rule == "fixed" and res.stopping.ran == 3 and "contended" in res.codes()
    assert not any(r.set_aside for r in res.timing.repeats)


def shaped(center: float, sd: float, n: int) -> list[float]:
    """n rates whose logs have exactly this mean and sample standard deviation."""
    raw = [(-1) ** i * (1 + i % 3) for i in range(n)]
    m, s = statistics.mean(raw), statistics.stdev(raw)
    return [math.exp(math.log(center) + sd * (x - m) / s) for x in raw]


def welch_clear(ratio: float, sd: float, n: int, band: float) -> bool:
    d = stats.welch_ratio(shaped(ratio, sd, n), shaped(1.0, sd, n))
    return d["ci_low"] > 1 + band or d["ci_high"] < 1 / (1 + band) or \
        (d["ci_low"] >= 1 / (1 + band) and d["ci_high"] <= 1 + band)


@pytest.mark.parametrize(("ratio", "sd", "toward"), [(1.06, 0.05, "faster"), (0.93, 0.04, "slower"),
                                                     (1.004, 0.03, "same"), (1.03, 0.02, "faster")])
def test_an_unclear_pair_says_how_many_more_repeats_would_settle_it(ratio, sd, toward):
    from bench.analysis.verdicts import speedup, verdict_outlook

    def run(name, rates):
        r = make_report(name, 0.1, repeat_means=[8 / x for x in rates], cv=0.001)  # 8 samples a step
        return type("R", (), {"result": r.results[0], "report": r, "name": name})()

    a, b = run("a", [80 * x for x in shaped(ratio, sd, 3)]), run("b", [80 * x for x in shaped(1.0, sd, 3)])
    s = speedup(a, b, "samples_per_s")
    assert s.verdict == "inconclusive" and s.reason.code == "unclear"
    from bench.analysis.verdicts import sides

    out = verdict_outlook(s, sides(a, b, "samples_per_s"))
    assert out["toward"] == toward and 1 <= out["more"] <= 100
    more = out["more"]
    # the same ratio and variances with that many more repeats per side: Welch's interval clears the band
    ratio_now = s.ratio
    sd_now = statistics.stdev(math.log(x) for x in sides(a, b, "samples_per_s")[0])
    assert welch_clear(ratio_now, sd_now, 3 + more, 0.02) and not welch_clear(ratio_now, sd_now, 2 + more, 0.02)


def test_a_ratio_at_the_band_edge_is_called_effectively_the_same(tmp_path, capsys):
    from bench.model.io import dump_report

    base = make_report("base", 0.1, repeat_means=[0.1, 0.103, 0.097])
    edge = make_report("edge", 0.1 / 1.02, seed=1, repeat_means=[x / 1.02 for x in (0.1, 0.103, 0.097)])
    a, b = dump_report(base, tmp_path / "a.json"), dump_report(edge, tmp_path / "b.json")
    code, out, err = cli_run(capsys, "compare", a, b)
    flat = " ".join(out.split())
    assert code == 0 and "effectively the same" in flat and "over 100 more repeats per side" in flat
