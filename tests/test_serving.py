"""Open-loop serving: arrivals that never wait for the device, the engine's batching policies on a
virtual clock (a fake executor), the figures of a session, the capacity search, and blender-serve
end to end."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from bench.core.errors import ConfigError
from bench.model.report import Repeat, RequestLog, Result
from bench.serve.arrivals import poisson_arrivals, read_arrivals
from bench.serve.engine import Engine
from bench.serve.protocol import GenRequest, QueueFull, RequestRejected
from bench.serve.session import InProcessClient, add_steps, request_log, run_session
from bench.serve.maths.capacity import capacity_search
from bench.serve.maths.metrics import serving_metrics
from bench.serve.plan import ServingPlan
from fakes import FakeExecutor, VirtualClock

FIXTURES = Path(__file__).parent / "fixtures"

POLICIES = ("continuous", "static")


def plan_of(arrivals, new_tokens=8, prompt=(7,) * 20):
    n = len(arrivals)
    tokens = new_tokens if isinstance(new_tokens, (list, tuple)) else [new_tokens] * n
    return ServingPlan(tuple(arrivals), (tuple(prompt),) * n, tuple(tokens))


def serve_virtual(plan, batching="continuous", max_batch=4, wait=0.005, slowdown=1.0, budget=None, **device):
    """(request log, engine steps, executor) of one session on a virtual clock."""
    clock = VirtualClock()
    ex = FakeExecutor(clock, **{"per_step_s": 0.02 * slowdown, "per_row_s": 0.01 * slowdown, **device})
    engine = Engine(ex, clock, batching=batching, max_batch=max_batch, batch_wait_s=wait, max_tokens_in_flight=budget)
    client = InProcessClient(engine, clock, clock.sleep)
    traces = run_session(plan, client, clock)
    return request_log(traces, plan.prompt_tokens), client.steps, ex


def session(slowdown, batching="continuous", qps=8.0, n=300):
    return serve_virtual(plan_of(poisson_arrivals(qps, n, seed=3)), batching, slowdown=slowdown)


@pytest.mark.parametrize("batching", POLICIES)
def test_a_device_twice_as_slow_faces_the_same_arrivals_and_queues_longer(batching):
    fast, _, _ = session(1, batching)
    slow, _, _ = session(2, batching)
    assert fast.arrival_s == slow.arrival_s  # the load does not wait for the device
    q_fast = [s - a for s, a in zip(fast.start_s, fast.arrival_s, strict=True)]
    q_slow = [s - a for s, a in zip(slow.start_s, slow.arrival_s, strict=True)]
    assert statistics.mean(q_slow) > statistics.mean(q_fast)
    assert sorted(q_slow)[-3] > sorted(q_fast)[-3]  # and the tail too


@pytest.mark.parametrize("batching", POLICIES)
def test_every_request_is_served_once_in_order_never_before_it_arrives(batching):
    log, steps, ex = session(1.5, batching)
    assert all(f is not None for f in log.finish_s) and log.new_tokens == [8] * len(log.arrival_s)
    assert all(s >= a for s, a in zip(log.start_s, log.arrival_s, strict=True))
    assert all(a <= f <= e for a, f, e in zip(log.start_s, log.first_token_s, log.finish_s, strict=True))
    assert log.start_s == sorted(log.start_s) and log.batch == sorted(log.batch)  # first come, first served
    assert max(len(rows) for rows, _ in ex.log) <= 4 and sum(len(j) for _, j in ex.log) == len(log.arrival_s)
    for stamps, first, last in zip(log.token_s, log.first_token_s, log.finish_s, strict=True):
        assert len(stamps) == 8 and stamps[0] == first and stamps[-1] == last and stamps == sorted(stamps)
    assert sum(s.rows for s in steps) == sum(log.new_tokens) and sum(s.finished for s in steps) == len(log.arrival_s)


def test_a_static_batch_runs_to_completion_before_the_next_starts():
    log, _, ex = session(1.5, "static")
    for rows, joined in ex.log:
        assert not joined or set(rows) == set(joined)  # a batch is formed only when none runs
    by_batch = {}
    for b, s, f in zip(log.batch, log.start_s, log.finish_s, strict=True):
        by_batch.setdefault(b, []).append((s, f))
    batches = [by_batch[b] for b in sorted(by_batch)]
    for earlier, later in zip(batches, batches[1:], strict=False):
        assert min(s for s, _ in later) >= max(f for _, f in earlier)


def test_continuous_batching_takes_a_request_in_at_the_next_step_and_lets_it_go_when_done():
    log, _, ex = serve_virtual(plan_of([0.0, 0.025, 0.026], new_tokens=[20, 3, 5]), max_batch=4)
    joined_at = {rid: i for i, (_, joined) in enumerate(ex.log) for rid in joined}
    assert joined_at == {"0": 0, "1": 1, "2": 1}  # both arrive during step 0 (30 ms) and join step 1
    left_after = {rid: max(i for i, (rows, _) in enumerate(ex.log) if rid in rows) for rid in "012"}
    assert left_after == {"0": 19, "1": 3, "2": 5}
    assert log.new_tokens == [20, 3, 5] and log.batch == [0, 1, 1]  # the step each joined at


@pytest.mark.parametrize("batching", POLICIES)
def test_where_the_device_keeps_up_the_achieved_rate_is_the_offered_one(batching):
    for qps in (2.0, 8.0):
        log, _, _ = serve_virtual(plan_of(poisson_arrivals(qps, 200, seed=5)), batching, slowdown=0.25)
        m = serving_metrics([Repeat(0, step_times_s=[0.1], requests=log)], {"qps": qps}, None, None)
        assert m["achieved_qps"].value == pytest.approx(m["realised_qps"], rel=0.10)
        assert m["realised_qps"] == pytest.approx(qps, rel=0.25)
    # a device that cannot keep up: achieved is its service rate, not the offer
    log, _, _ = serve_virtual(plan_of(poisson_arrivals(50.0, 200, seed=5), new_tokens=1), batching, max_batch=4,
                              wait=0.0, per_step_s=0.1, per_row_s=0.0)
    m = serving_metrics([Repeat(0, step_times_s=[0.1], requests=log)], {"qps": 50.0}, None, None)
    assert m["achieved_qps"].value == pytest.approx(40.0, rel=0.05) and m["realised_qps"] > 45


def test_a_static_batch_waits_for_company_only_as_long_as_asked():
    log, _, ex = serve_virtual(plan_of([0.0, 0.001, 0.002, 1.0], new_tokens=1), "static", max_batch=4, wait=0.01)
    assert [len(j) for _, j in ex.log if j] == [3, 1]  # the fourth arrives long after the wait ended
    assert log.start_s[0] == pytest.approx(100.0 + 0.01)  # the oldest's arrival + the wait
    full, _, ex = serve_virtual(plan_of([0.0, 0.001, 0.002], new_tokens=1), "static", max_batch=3, wait=5.0)
    assert full.start_s[0] == pytest.approx(100.002)  # a full batch does not wait
    cont, _, _ = serve_virtual(plan_of([0.0, 0.001], new_tokens=1), "continuous", wait=5.0)
    assert cont.start_s[0] == pytest.approx(100.0)  # continuous batching never holds a request back


@pytest.mark.parametrize("batching,first", [("continuous", "1"), ("static", "0")])
def test_a_short_request_behind_a_long_one_finishes_first_only_with_continuous_batching(batching, first):
    log, _, _ = serve_virtual(plan_of([0.0, 0.1], new_tokens=[64, 4]), batching, max_batch=4)
    assert log.start_s[0] < log.arrival_s[1] < log.finish_s[0]  # it arrived while the long one decoded
    assert (log.start_s[1] < log.finish_s[0]) == (batching == "continuous")  # joined it, or waited for it
    order = sorted("01", key=lambda i: log.finish_s[int(i)])
    assert order[0] == first


def test_the_tokens_in_flight_budget_admits_first_come_first_served():
    # prompt 20 + 8 new = 28 tokens each: a budget of 60 holds two; the third waits for a leaver
    log, _, ex = serve_virtual(plan_of([0.0, 0.0, 0.0, 0.0]), max_batch=4, budget=60)
    assert max(len(rows) for rows, _ in ex.log) == 2
    assert log.start_s[2] >= min(log.finish_s[:2]) and log.start_s == sorted(log.start_s)
    # a big request at the head makes the small ones behind it wait (no overtaking)
    plan = ServingPlan((0.0, 0.0, 0.001), ((7,) * 20, (7,) * 40, (7,) * 2), (8, 8, 1))
    log, _, _ = serve_virtual(plan, max_batch=4, budget=60)
    assert log.start_s[1] >= log.finish_s[0] and log.start_s[2] >= log.start_s[1]


def test_a_request_stops_at_eos_unless_told_otherwise():
    clock = VirtualClock()
    engine = Engine(FakeExecutor(clock), clock, max_batch=8)
    client = InProcessClient(engine, clock, clock.sleep)
    cases = {"eos": GenRequest("eos", (2, 3), 10), "ignore": GenRequest("ignore", (2, 3), 10, ignore_eos=True),
             "min": GenRequest("min", (2, 3), 10, min_tokens=6), "plain": GenRequest("plain", (7, 7), 10)}
    from bench.serve.session import Trace

    traces = {k: Trace(clock()) for k in cases}
    for k, r in cases.items():
        client.send(r, traces[k])
    while engine.running or engine.waiting:
        client.wait(clock() + 1)
    assert {k: (t.reason, len(t.tokens)) for k, t in traces.items()} == {
        "eos": ("stop", 3), "ignore": ("length", 10), "min": ("stop", 7), "plain": ("length", 10)}
    assert traces["ignore"].tokens.count(2) == 8  # the end-of-sequence tokens were generated and counted


def test_a_cancelled_request_leaves_its_row_or_the_queue():
    clock = VirtualClock()
    ex = FakeExecutor(clock)
    engine = Engine(ex, clock, max_batch=1)
    engine.submit(GenRequest("a", (7,), 50))
    engine.submit(GenRequest("b", (7,), 50))
    engine.step()
    engine.cancel("a")
    engine.cancel("b")
    record = engine.step()
    assert sorted((e.request, e.reason) for e in record.events) == [("a", "cancelled"), ("b", "cancelled")]
    assert ex.dropped == ["a"] and engine.running == engine.waiting == 0 and record.rows == 0
    assert engine.step() is None and engine.wake_at(clock()) is None


def test_the_engine_refuses_what_it_cannot_serve():
    clock = VirtualClock()
    engine = Engine(FakeExecutor(clock), clock, max_batch=2, max_waiting=2, max_tokens_in_flight=600)
    bad = [(GenRequest("e", (), 4), "prompt"), (GenRequest("l", (5,) * 513, 4), "prompt"),
           (GenRequest("v", (5, 100), 4), "prompt"), (GenRequest("v2", (-1,), 4), "prompt"),
           (GenRequest("m", (5,), 0), "max_tokens"), (GenRequest("m2", (5,), 513), "max_tokens"),
           (GenRequest("n", (5,), 4, min_tokens=5), "min_tokens"), (GenRequest("b", (5,) * 200, 500), "max_tokens")]
    for request, param in bad:
        with pytest.raises(RequestRejected) as info:
            engine.submit(request)
        assert info.value.param == param, request
    engine.submit(GenRequest("a", (5,), 4))
    with pytest.raises(RequestRejected, match="already"):
        engine.submit(GenRequest("a", (5,), 4))
    engine.submit(GenRequest("b", (5,), 4))
    with pytest.raises(QueueFull):
        engine.submit(GenRequest("c", (5,), 4))
    assert engine.waiting == 2


def test_an_executor_failure_fails_every_request_and_empties_the_engine():
    clock = VirtualClock()
    engine = Engine(FakeExecutor(clock), clock, max_batch=1)
    for rid in "ab":
        engine.submit(GenRequest(rid, (5,), 4))
    engine.step()
    events = engine.abort("RuntimeError: device lost")
    assert sorted((e.request, e.reason) for e in events) == [("a", "error"), ("b", "error")]
    assert engine.running == engine.waiting == 0 and engine.step() is None


def test_poisson_arrivals_are_seeded_and_have_the_asked_rate():
    a = poisson_arrivals(4.0, 20_000, seed=1)
    assert a == poisson_arrivals(4.0, 20_000, seed=1) and a != poisson_arrivals(4.0, 20_000, seed=2)
    slow = poisson_arrivals(2.0, 20_000, seed=1)  # the same pattern at half the rate: a curve's points differ by rate only
    assert slow == pytest.approx([2 * x for x in a])
    assert len(a) / a[-1] == pytest.approx(4.0, rel=0.03)
    assert all(y >= x for x, y in zip(a, a[1:], strict=False))


def test_an_arrivals_file_is_read_and_checked(tmp_path):
    good = tmp_path / "a.txt"
    good.write_text("# t  tokens\n0.0 12\n0.5 30  # a long one\n\n0.5 7\n")
    assert read_arrivals(str(good)) == ([0.0, 0.5, 0.5], [12, 30, 7])
    for text, said in [("1.0 5\n0.5 5\n", ":2: 0.5 s comes before"), ("0 5 6\n", ":1: expected"),
                       ("nan 5\n", ":1: the time must be"), ("0 0\n", ":1: a prompt has 1 to"),
                       ("x y\n", ":1: the first field is not a number"), ("# nothing\n", "no requests")]:
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
    assert m["achieved_qps"].value == pytest.approx(4 / 3.6)  # no session start recorded: from the first arrival
    # LoadGen's nearest rank, the SLO verdicts' own: sorted([0.1, 0.1, 0.6, 0.5])[floor(4 * 0.5)], not numpy's 0.3
    assert m["ttft_s"].median == pytest.approx(0.5) and m["ttft_s"].max == pytest.approx(0.6)
    assert m["queue_s"].max == pytest.approx(0.5)
    assert m["slo_attainment"] == pytest.approx(0.5)  # 0.6 s and 0.5 s miss the 0.2 s SLO
    assert m["goodput_rps"] == pytest.approx(2 / 3.6) and m["slo.met"] is False
    assert m["new_tokens_per_s"] == pytest.approx(32 / 3.6)


def test_engine_steps_become_the_repeat_steps_and_their_times_are_not_called_noise_or_unsteady():
    from bench.model.derive import core_metrics, timing_warnings
    from bench.model.report import Timing

    log, steps, _ = session(1.0, n=40)
    rep = Repeat(0, first_step_s=0.1, requests=log)
    add_steps(rep, steps)
    assert rep.step_samples.count(0) > 0 and sum(rep.step_samples) == 40 and sum(rep.step_tokens) == 320
    assert len(set(rep.step_tokens)) > 1
    looped = Repeat(0, first_step_s=0.1, step_times_s=rep.step_times_s, step_samples=rep.step_samples,
                    step_tokens=rep.step_tokens)
    rep.step_times_s[0] *= 20  # the first step's joins and encoder passes
    looped.step_times_s = rep.step_times_s
    codes = [{w.code for w in timing_warnings(t, core_metrics(t, None, None, None), None)} & {"noisy", "not_steady"}
             for t in (Timing([rep]), Timing([looped]))]
    assert codes == [set(), {"noisy", "not_steady"}]


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
        assert 0 < wm["achieved_qps"].value <= 1.1 * wm["realised_qps"], wm
        assert wm["ttft_s"].p99 >= wm["ttft_s"].median > 0
        assert r.params["qps"] == r.variant["qps"][0] and r.params["arrival_seed"] == 0
        assert r.params["batching"] == "continuous" and log.new_tokens == [8] * 30
        assert all(len(s) == 8 and s[0] == f for s, f in zip(log.token_s, log.first_token_s, strict=True))
        rep = r.timing.repeats[0]  # the CPU is judged over the batches, not the waits between arrivals
        assert rep.cpu_wall_ratio == pytest.approx(rep.cpu_s / sum(rep.step_times_s)) and rep.wall_s > sum(rep.step_times_s)
    capsys.readouterr()
    code = cli.cli(["compare", str(path), "--json", "-"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and [w["variant"] for w in doc["workloads"]] == ["qps=2", "qps=4"]
    [curve] = doc["serving"]
    assert [p["qps"] for p in curve["points"]] == [2.0, 4.0] and curve["capacity_text"]
    # a report the previous release wrote (qps 4, 30 requests) drew the tiny preset's replies from every id (its
    # greedy replies were empty): paired, and refused on that difference alone, not compared as if it had not been
    old = FIXTURES / "report-v4-serving.json"
    capsys.readouterr()
    code = cli.cli(["compare", str(old), str(path), "--json", "-"])
    doc = json.loads(capsys.readouterr().out)
    paired = [w for w in doc["workloads"] if w["variant"] == "qps=4"]
    assert code == 0 and len(paired) == 1 and len(paired[0]["rows"]) == 2, paired
    new = next(r for r in paired[0]["rows"] if r["label"] is None)
    said = [n for n in paired[0]["notes"] if n["code"] == "not_comparable"]
    assert not new["comparable"] and [n["text"].split("(", 1)[1] for n in said] == ["reply_vocab: 462 vs None)"], said


@pytest.mark.slow
def test_find_capacity_probes_rates_and_reports_a_capacity(tmp_path, capsys):
    from bench import cli
    from bench.model.io import load_report

    out = tmp_path / "out"
    code = cli.cli(["run", "--device", "cpu", "--preset", "tiny", "--workload", "blender-serve", "--qps", "4",
                    "--find-capacity", "--slo-ttft-ms", "150", "--max-probes", "3", "--requests", "16",
                    "--max-probe-s", "4",  # a probe's arrivals last 4 s (provisional verdicts): not 459 requests each
                    "--repeats", "1", "--in-process", "--sample-hz", "0", "--out", str(out)])
    said = capsys.readouterr()
    assert code == 0, said.err
    assert "blender-serve: capacity at p99 TTFT <= 150 ms: " in " ".join(said.out.split())  # the run ends with it
    report = load_report(next(out.glob("*.json")))
    rates = [r.variant["qps"][0] for r in report.results]
    assert all(next(f for f in r.figures if f.lead).key == "workload_metrics.ttft_s.p99" for r in report.results)
    assert 2 <= len(rates) <= 3 and rates[0] == 4.0
    assert rates[1] in (2.0, 8.0)  # halved after a miss, doubled after a pass
    assert all(r.workload_metrics["slo.met"] in (True, False) for r in report.results)
    capsys.readouterr()
    cli.cli(["compare", str(next(out.glob("*.json"))), "--width", "200"])
    assert "capacity at the SLO" in capsys.readouterr().out
