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


def test_mann_whitney_separates_shifted_samples():
    a = list(range(20))
    assert stats.mann_whitney_p(a, [x + 100 for x in a]) < 0.001
    assert stats.mann_whitney_p(a, a) > 0.9
    assert stats.mann_whitney_p([1.0], [2.0]) is None


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
