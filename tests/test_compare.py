
import pytest
from reportgen import make_report

from bench.analysis.compare import compare, regressions, row_values
from bench.core.errors import ConfigError
from bench.model.report import RankResult


def cmp(*reports, **kw):
    return compare([(f"{r.label}.json", r) for r in reports], **kw)


def test_same_identity_gives_a_significant_speedup_with_ci():
    [c] = cmp(make_report("slow", 0.2), make_report("fast", 0.1, seed=1))
    base, other = c.rows
    assert base.baseline and base.verdict == "baseline"
    assert other.speedup["value"] == pytest.approx(2.0, rel=0.05)
    assert other.speedup["ci_low"] > 1.5 and other.speedup["significant"] is True
    assert other.verdict.endswith("x faster [%.2f, %.2f]" % (other.speedup["ci_low"], other.speedup["ci_high"]))


def test_slower_run_says_slower():
    [c] = cmp(make_report("a", 0.1), make_report("b", 0.15, seed=2))
    assert "1.50x slower" in c.rows[1].verdict


def test_ci_spanning_one_is_not_significant():
    [c] = cmp(make_report("a", 0.1, n=6), make_report("b", 0.1, n=6, seed=3))
    assert c.rows[1].speedup["significant"] is False
    assert c.rows[1].verdict.startswith("not significant")


def test_different_identity_is_not_comparable_and_lists_fields():
    a = make_report("a", 0.1)
    b = make_report("b", 0.1, params={"batch_size": 24, "precision": "bf16"})
    [c] = cmp(a, b)
    row = c.rows[1]
    assert not row.comparable and row.speedup is None
    assert row.differences == ["batch_size", "precision"]
    assert "not comparable" in row.verdict
    [c] = cmp(a, b, force=True)
    assert c.rows[1].speedup["value"] is not None and "forced" in c.rows[1].verdict


def test_baseline_by_label_and_unknown_baseline():
    [c] = cmp(make_report("a", 0.1), make_report("b", 0.2), baseline="b")
    assert c.baseline.name == "b" and c.rows[1].baseline
    with pytest.raises(ConfigError, match="matches no run"):
        cmp(make_report("a", 0.1), baseline="zzz")


def test_metrics_are_recomputed_from_raw_times_not_trusted():
    r = make_report("a", 0.1)
    r.results[0].metrics.samples_per_s.value = 1e9  # a lie in the file
    [c] = cmp(r)
    v = row_values(c.rows[0], "samples_per_s")
    assert v["value"] == pytest.approx(8 / 0.1, rel=0.05)


def test_unknown_values_stay_none():
    [c] = cmp(make_report("a", 0.1))
    v = row_values(c.rows[0], "samples_per_s")
    assert v["device_power_w"] is None and v["energy_per_sample_j"] is None and v["device_util_percent"] is None


def test_fail_on_flags_only_significant_regressions_beyond_the_limit():
    base, slow, close = make_report("base", 0.1), make_report("slow", 0.125, seed=4), make_report("close", 0.101, seed=5)
    comps = cmp(base, slow, close)
    failures = regressions(comps, "samples_per_s:5%")
    assert len(failures) == 1 and "slow" in failures[0]
    assert regressions(comps, "samples_per_s:30%") == []
    with pytest.raises(ConfigError):
        regressions(comps, "nonsense")
    with pytest.raises(ConfigError):
        regressions(comps, "joy_per_s:5%")


def test_reference_reports_are_flagged():
    from bench.model.io import load_report

    loaded = [(p, load_report(p)) for p in ("reports/reference/seed-habana-dl1.json", "reports/reference/seed-colab-p100.json")]
    [c] = compare(loaded)
    assert all(r.run.published for r in c.rows)
    other = c.rows[1]
    assert not other.comparable and {"model", "data", "batch_size"} <= set(other.differences)
    codes = {w.code for r in c.rows for w in r.run.result.warnings}
    assert codes == {"idle_accelerator"}
    v = row_values(c.rows[0], "samples_per_s")
    assert v["device_util_max_percent"] == 6.0 and v["parlai_exps"] == pytest.approx(29.01)


def test_scaling_groups_compute_efficiency():
    from bench.analysis.compare import scaling_groups

    one = make_report("n1", 0.1, params={"world_size": 1})
    two = make_report("n2", 0.1, params={"world_size": 2}, seed=1)
    two.results[0].per_rank = [RankResult(r, "ok", timing=two.results[0].timing) for r in (0, 1)]
    [g] = scaling_groups([("a", one), ("b", two)])
    assert [p["world_size"] for p in g["points"]] == [1, 2]
    assert g["points"][1]["value"] == pytest.approx(2 * g["points"][0]["value"], rel=0.05)
    assert g["points"][1]["efficiency"] == pytest.approx(1.0, rel=0.05)


def test_speedup_carries_a_mann_whitney_second_opinion():
    [c] = cmp(make_report("slow", 0.2), make_report("fast", 0.1, seed=1))
    assert c.rows[1].speedup["mann_whitney_p"] < 1e-6
    assert row_values(c.rows[1], "samples_per_s")["mann_whitney_p"] < 1e-6


def test_load_reports_gives_one_row_per_run_and_workload(tmp_path):
    import bench
    from bench.model.io import dump_report as dump_atomic

    paths = [dump_atomic(make_report(n, 0.1, seed=i), tmp_path / f"{n}.json") for i, n in enumerate("ab")]
    frame = bench.load_reports(paths)
    assert list(frame["label"]) == ["a", "b"] and frame["value"].iloc[0] == pytest.approx(80, rel=0.05)
    assert "param_batch_size" in frame.columns and "verdict" not in frame.columns
