import numpy as np
import pytest

from bench.core import stats


def test_summary_matches_numpy():
    x = [1.0, 2.0, 3.0, 4.0, 10.0]
    s = stats.summary(x)
    assert s["n"] == 5 and s["median"] == 3.0 and s["mean"] == 4.0
    assert s["p90"] == pytest.approx(np.percentile(x, 90))
    assert s["stdev"] == pytest.approx(np.std(x, ddof=1))
    assert s["cv"] == pytest.approx(np.std(x, ddof=1) / 4.0)


def test_summary_of_nothing_is_none_not_zero():
    assert all(v is None for v in stats.summary([]).values())


def test_rate_is_total_work_over_total_time():
    assert stats.rate([8, 8, 8], [1.0, 2.0, 1.0]) == pytest.approx(6.0)


def test_rate_ci_brackets_the_value_and_narrows_with_less_noise():
    rng = np.random.default_rng(1)
    noisy = rng.normal(1.0, 0.2, 50).clip(0.1)
    calm = rng.normal(1.0, 0.01, 50)
    a = stats.rate_ci([1] * 50, noisy)
    b = stats.rate_ci([1] * 50, calm)
    assert a["ci_low"] <= a["value"] <= a["ci_high"]
    assert (b["ci_high"] - b["ci_low"]) < (a["ci_high"] - a["ci_low"])


def test_rate_ci_of_one_step_has_no_interval():
    r = stats.rate_ci([4], [2.0])
    assert r["value"] == 2.0 and r["ci_low"] is None


def test_ratio_ci_says_significant_only_when_it_is():
    rng = np.random.default_rng(2)
    slow = rng.normal(2.0, 0.05, 30)
    fast = rng.normal(1.0, 0.05, 30)
    same = rng.normal(2.0, 0.05, 30)
    r = stats.ratio_ci([1] * 30, fast, [1] * 30, slow)
    assert r["value"] == pytest.approx(2.0, rel=0.05) and r["significant"] is True
    assert r["ci_low"] > 1
    r = stats.ratio_ci([1] * 30, same, [1] * 30, slow)
    assert r["significant"] is False and r["ci_low"] < 1 < r["ci_high"]


@pytest.mark.parametrize("df,expected", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (10, 2.2281), (30, 2.0423),
                                         (1e6, 1.9600)])
def test_t_quantiles_match_the_tables(df, expected):
    assert stats.t_quantile(0.975, df) == pytest.approx(expected, abs=1e-3)
    assert stats.t_cdf(stats.t_quantile(0.9, df), df) == pytest.approx(0.9, abs=1e-9)


def test_welch_ratio_and_log_t_interval():
    d = stats.welch_ratio([100, 102, 98], [90, 91, 89])
    assert d["value"] == pytest.approx(100 / 90, rel=1e-3) and d["ci_low"] < d["value"] < d["ci_high"]
    assert stats.welch_ratio([100, 100, 100], [50, 50, 50])["ci_low"] == pytest.approx(2.0)  # no spread
    one = stats.welch_ratio([100], [50, 60])
    assert one["ci_low"] is None and one["value"] == pytest.approx(100 / (50 * 60) ** 0.5)
    i = stats.log_t_interval([100, 102, 98])
    assert i["ci_low"] < 100 < i["ci_high"] and i["n"] == 3


def test_the_bootstrap_of_a_million_steps_uses_bounded_memory():
    import tracemalloc

    n = 1_000_000
    tracemalloc.start()
    r = stats.rate_ci(np.ones(n), np.full(n, 0.01))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert r["value"] == pytest.approx(100.0) and peak < 200 * 2**20  # 0.1 allocated 2000 x n: 15 GiB


def test_steady_state_start_finds_slow_first_steps():
    assert stats.steady_state_start([5.0, 3.0] + [1.0] * 20) == 2
    assert stats.steady_state_start([1.0] * 20) == 0


def test_parts_rate_is_the_sum_of_each_parts_rate():
    a = ([8] * 10, [0.1] * 10)
    b = ([8] * 10, [0.2] * 10)
    r = stats.parts_rate_ci([a, b])
    assert r["value"] == pytest.approx(80 + 40)
    assert r["ci_low"] <= r["value"] <= r["ci_high"]
    assert stats.parts_ratio_ci([a, b], [a])["value"] == pytest.approx(120 / 80)
