"""Open-loop serving: arrivals that never wait for the device, static batching, the figures of a
session, the capacity search, and blender-serve end to end."""

from __future__ import annotations

import json
import statistics

import pytest

from bench.core.arrivals import ServingPlan, poisson_arrivals, read_arrivals
from bench.core.errors import ConfigError
from bench.measure.serving import serve
from bench.model.report import Repeat, RequestLog, Result
from workloads.serving import capacity_search, serving_metrics


class VirtualClock:
    """Time that moves only when someone sleeps or a fake device works."""

    def __init__(self, start=100.0):
        self.t = start

    def __call__(self):
        return self.t

    def sleep(self, seconds):
        assert seconds >= 0
        self.t += seconds


def fake_device(clock, per_batch_s, per_request_s, prefill_share=0.3, new_tokens=8):
    def run_batch(members):
        work = per_batch_s + per_request_s * len(members)
        first = clock.t + prefill_share * work
        clock.t += work
        return [first] * len(members), [new_tokens] * len(members)
    return run_batch


def session(slowdown, qps=8.0, n=300, max_batch=4, wait=0.005):
    clock = VirtualClock()
    plan = ServingPlan(tuple(poisson_arrivals(qps, n, seed=3)), tuple([20] * n), max_batch, wait)
    log, batches = serve(plan, fake_device(clock, 0.02 * slowdown, 0.01 * slowdown), clock, clock.sleep)
    return log, batches


def test_a_device_twice_as_slow_faces_the_same_arrivals_and_queues_longer():
    fast, _ = session(1)
    slow, _ = session(2)
    assert fast.arrival_s == slow.arrival_s  # the load does not wait for the device
    q_fast = [s - a for s, a in zip(fast.start_s, fast.arrival_s)]
    q_slow = [s - a for s, a in zip(slow.start_s, slow.arrival_s)]
    assert statistics.mean(q_slow) > statistics.mean(q_fast)
    assert sorted(q_slow)[-3] > sorted(q_fast)[-3]  # and the tail too


def test_every_request_is_served_once_in_order_never_before_it_arrives():
    log, batches = session(1.5)
    assert all(f is not None for f in log.finish_s) and sum(b.size for b in batches) == len(log.arrival_s)
    assert all(s >= a for s, a in zip(log.start_s, log.arrival_s))
    assert all(a <= f <= e for a, f, e in zip(log.start_s, log.first_token_s, log.finish_s))
    assert max(b.size for b in batches) <= 4
    assert log.batch == sorted(log.batch)  # first come, first served
    for b, c in zip(batches, batches[1:]):
        assert c.start_s >= b.end_s  # a batch runs to completion before the next starts


def test_where_the_device_keeps_up_the_achieved_rate_is_the_offered_one():
    from bench.model.report import Repeat

    for qps in (2.0, 8.0):
        clock = VirtualClock()
        n = 200
        plan = ServingPlan(tuple(poisson_arrivals(qps, n, seed=5)), tuple([20] * n), 4, 0.005)
        log, _ = serve(plan, fake_device(clock, 0.01, 0.005), clock, clock.sleep)
        m = serving_metrics([Repeat(0, step_times_s=[0.1], requests=log)], {"qps": qps}, None, None)
        assert m["achieved_qps"] == pytest.approx(m["realised_qps"], rel=0.10)
        assert m["realised_qps"] == pytest.approx(qps, rel=0.25)
    clock = VirtualClock()  # a device that cannot keep up: achieved is its service rate, not the offer
    plan = ServingPlan(tuple(poisson_arrivals(50.0, 200, seed=5)), tuple([20] * 200), 4, 0.005)
    log, _ = serve(plan, fake_device(clock, 0.1, 0.0), clock, clock.sleep)
    m = serving_metrics([Repeat(0, step_times_s=[0.1], requests=log)], {"qps": 50.0}, None, None)
    assert m["achieved_qps"] == pytest.approx(40.0, rel=0.05) and m["realised_qps"] > 45


def test_a_batch_waits_for_company_only_as_long_as_asked():
    clock = VirtualClock(0.0)
    plan = ServingPlan((0.0, 0.001, 0.002, 1.0), (5, 5, 5, 5), max_batch=4, batch_wait_s=0.01)
    log, batches = serve(plan, fake_device(clock, 0.01, 0.0), clock, clock.sleep)
    assert [b.size for b in batches] == [3, 1]  # the fourth arrives long after the wait ended
    assert batches[0].start_s == pytest.approx(0.01)  # the oldest's arrival + the wait


def test_poisson_arrivals_are_seeded_and_have_the_asked_rate():
    a = poisson_arrivals(4.0, 20_000, seed=1)
    assert a == poisson_arrivals(4.0, 20_000, seed=1) and a != poisson_arrivals(4.0, 20_000, seed=2)
    slow = poisson_arrivals(2.0, 20_000, seed=1)  # the same pattern at half the rate: a curve's points differ by rate only
    assert slow == pytest.approx([2 * x for x in a])
    assert len(a) / a[-1] == pytest.approx(4.0, rel=0.03)
    assert all(y >= x for x, y in zip(a, a[1:]))


def test_an_arrivals_file_is_read_and_checked(tmp_path):
    good = tmp_path / "a.txt"
    good.write_text("# t  tokens\n0.0 12\n0.5 30  # a long one\n\n0.5 7\n")
    assert read_arrivals(str(good)) == ([0.0, 0.5, 0.5], [12, 30, 7])
    for text, said in [("1.0 5\n0.5 5\n", ":2: 0.5 s comes before"), ("0 5 6\n", ":1: expected"),
                       ("nan 5\n", ":1: the time must be"), ("0 0\n", ":1: a request needs"),
                       ("x y\n", ":1: not numbers"), ("# nothing\n", "no requests")]:
        bad = tmp_path / "b.txt"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=said):
            read_arrivals(str(bad))
    with pytest.raises(ConfigError, match="not a file"):
        read_arrivals(str(tmp_path))


def test_session_figures_come_from_every_request():
    log = RequestLog(arrival_s=[0.0, 1.0, 2.0, 3.0], start_s=[0.0, 1.0, 2.5, 3.0],
                     first_token_s=[0.1, 1.1, 2.6, 3.5], finish_s=[0.2, 1.2, 2.7, 3.6],
                     prompt_tokens=[5] * 4, new_tokens=[8] * 4, batch=[0, 1, 2, 3])
    m = serving_metrics([Repeat(0, step_times_s=[0.2] * 4, requests=log)], {"qps": 1.0}, 0.2, None)
    assert m["offered_qps"] == 1.0 and m["realised_qps"] == pytest.approx(1.0)
    assert m["achieved_qps"] == pytest.approx(3 / 3.4)
    assert m["ttft_s"].median == pytest.approx(0.3) and m["ttft_s"].max == pytest.approx(0.6)
    assert m["queue_s"].max == pytest.approx(0.5)
    assert m["slo_attainment"] == pytest.approx(0.5)  # 0.6 s and 0.5 s miss the 0.2 s SLO
    assert m["goodput_rps"] == pytest.approx(2 / 3.6) and m["slo.met"] is False
    assert m["new_tokens_per_s"] == pytest.approx(32 / 3.6)


def test_batch_times_that_follow_batch_sizes_are_not_called_noise():
    from bench.model.derive import core_metrics, timing_warnings
    from bench.model.report import Timing

    log, batches = session(1.0, n=40)
    times = [b.end_s - b.start_s for b in batches]
    assert len(set(b.size for b in batches)) > 1
    sizes, tokens = [b.size for b in batches], [b.new_tokens for b in batches]
    served = Timing([Repeat(0, first_step_s=0.1, step_times_s=times, step_samples=sizes, step_tokens=tokens,
                            requests=log)])
    looped = Timing([Repeat(0, first_step_s=0.1, step_times_s=times, step_samples=sizes, step_tokens=tokens)])
    noisy = [[w.code for w in timing_warnings(t, core_metrics(t, None, None, None), None)] for t in (served, looped)]
    assert noisy == [[], ["noisy"]]


def test_the_capacity_search_brackets_the_capacity_in_few_probes():
    def probe(q, capacity=10.0):
        return Result("blender-serve", "ok", workload_metrics={"slo.met": q <= capacity})

    search = capacity_search(1.0, max_probes=10)
    tried, variant = [], next(search)
    while True:
        q = variant["qps"][0]
        tried.append(q)
        try:
            variant = search.send(probe(q))
        except StopIteration:
            break
    passed = [q for q in tried if q <= 10]
    failed = [q for q in tried if q > 10]
    assert max(passed) <= 10 < min(failed) and min(failed) / max(passed) <= 1.15
    assert len(tried) <= 10 and tried[:5] == [1, 2, 4, 8, 16]  # doubling, then bisecting


def test_the_capacity_search_stops_on_a_failed_probe():
    search = capacity_search(4.0, max_probes=8)
    next(search)
    with pytest.raises(StopIteration):
        search.send(Result("blender-serve", "failed", error="boom"))


def test_capacity_reads_the_bracket_off_the_curve():
    from bench.analysis.comparison import CurvePoint
    from bench.analysis.serving import capacity
    from bench.render.words import capacity_text

    pts = [CurvePoint(qps=q, slo_met=ok) for q, ok in ((1, True), (2, True), (4, False), (3, True))]
    assert capacity(pts).qps == 3 and capacity(pts).below_qps == 4 and capacity(pts).code == "bracket"
    assert capacity_text(capacity([CurvePoint(qps=2, slo_met=False)])).startswith("below 2")
    assert capacity_text(capacity([CurvePoint(qps=2, slo_met=True)])).startswith("at least 2")


@pytest.mark.slow
def test_blender_serve_writes_one_result_per_rate_that_keeps_up(tmp_path, capsys):
    from bench import cli
    from bench.model.io import load_report

    out = tmp_path / "out"
    code = cli.cli(["run", "--device", "cpu", "--preset", "tiny", "--workload", "blender-serve", "--qps", "2,4",
                    "--requests", "30", "--repeats", "1", "--in-process", "--sample-hz", "0", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    [path] = out.glob("*.json")
    report = load_report(path)
    assert [r.variant for r in report.results] == [{"qps": [2.0]}, {"qps": [4.0]}]
    for r in report.results:
        wm = r.workload_metrics
        log = r.timing.repeats[0].requests
        assert len(log.arrival_s) == 30 and all(f is not None for f in log.finish_s)
        assert 0 < wm["achieved_qps"] <= 1.1 * wm["realised_qps"], wm
        assert wm["ttft_s"].p99 >= wm["ttft_s"].median > 0
        assert r.params["qps"] == r.variant["qps"][0] and r.params["arrival_seed"] == 0
        rep = r.timing.repeats[0]  # the CPU is judged over the batches, not the waits between arrivals
        assert rep.cpu_wall_ratio == pytest.approx(rep.cpu_s / sum(rep.step_times_s)) and rep.wall_s > sum(rep.step_times_s)
    capsys.readouterr()
    code = cli.cli(["compare", str(path), "--json", "-"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and [w["variant"] for w in doc["workloads"]] == ["qps=2", "qps=4"]
    [curve] = doc["serving"]
    assert [p["qps"] for p in curve["points"]] == [2.0, 4.0] and curve["capacity_text"]


@pytest.mark.slow
def test_find_capacity_probes_rates_and_reports_a_capacity(tmp_path, capsys):
    from bench import cli
    from bench.model.io import load_report

    out = tmp_path / "out"
    code = cli.cli(["run", "--device", "cpu", "--preset", "tiny", "--workload", "blender-serve", "--qps", "4",
                    "--find-capacity", "--slo-ttft-ms", "150", "--max-probes", "3", "--requests", "16",
                    "--repeats", "1", "--in-process", "--sample-hz", "0", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    report = load_report(next(out.glob("*.json")))
    rates = [r.variant["qps"][0] for r in report.results]
    assert 2 <= len(rates) <= 3 and rates[0] == 4.0
    assert rates[1] in (2.0, 8.0)  # halved after a miss, doubled after a pass
    assert all(r.workload_metrics["slo.met"] in (True, False) for r in report.results)
    capsys.readouterr()
    cli.cli(["compare", str(next(out.glob("*.json"))), "--width", "200"])
    assert "capacity at the SLO" in capsys.readouterr().out
