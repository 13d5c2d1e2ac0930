"""The outcomes a serving result can have, and that no failure reads as success.

    complete  the session ran to its end: status ok (failed requests, if any, counted in a warning)
    partial   the session was cut short (Ctrl-C, a signal): status interrupted, its finished requests
              kept with their figures, the open ones closed with the reason `interrupted`
    failed    more than half of its measured requests failed (server gone, every answer 500 or cut):
              status failed with the reason, exit 1; the figures of those that completed are kept

A capacity search treats a failed probe that still judged its SLOs as a miss, and says why it stopped
wherever it did not converge.
"""

from __future__ import annotations

import math

import pytest

from bench.model.report import FigureSpec, Repeat, Result
from bench.serve.engine import Engine
from bench.serve.loads import Schedule
from bench.serve.maths.capacity import capacity_search
from bench.serve.maths.metrics import lead_figure
from bench.serve.plan import ServingPlan
from bench.serve.scenario import FAILED_SHARE, judge_requests
from bench.serve.session import InProcessClient, busy_steps, request_log, run_session
from fake_peer import MODELS, Answer, Peer, sse
from fakes import FakeExecutor, VirtualClock


# -- a server that fails as asked ---------------------------------------------------------------------------
class FailingServer(Peer):
    """An OpenAI-compatible server (tests/fake_peer.py's, on 127.0.0.1) whose /v1/completions answers the
    first `answered_first` requests (the warm-up's batch), then each by its index: `answers[i % len(answers)]`
    is "ok" (two tokens, then [DONE]), an HTTP status (500, 429, ...), "cut" (a first token, then the
    connection closed) or "garbage" (not server-sent events)."""

    def __init__(self, answers, answered_first: int = 8):
        super().__init__({("GET", "/v1/models"): Answer(body=MODELS)})
        self.answers, self.count = list(answers), 0
        self.first = answered_first  # the warm-up's batch is answered (a warm-up that fails ends the run before it)

    async def handle(self, request):
        if request.path != "/v1/completions":
            return await super().handle(request)
        from aiohttp import web

        answer = "ok" if self.count < self.first else self.answers[(self.count - self.first) % len(self.answers)]
        self.count += 1
        await request.read()
        if isinstance(answer, int):
            return web.json_response({"error": {"message": "no", "type": "server_error"}}, status=answer)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if answer == "garbage":
            await resp.write(b"this is not a stream\n\n")
            return resp
        chunk = {"id": "c", "object": "text_completion", "choices": [{"index": 0, "text": "a", "token_ids": [5],
                                                                      "finish_reason": None}]}
        await resp.write(sse(chunk, done=False))
        if answer == "cut":
            request.transport.close()
            return resp
        chunk["choices"][0]["finish_reason"] = "length"
        await resp.write(sse(chunk))
        return resp


def run_against(capsys, tmp_path, answers, *extra):
    from bench import cli
    from bench.model.io import load_report

    out = tmp_path / "out"
    with FailingServer(answers) as url:
        code = cli.cli(["run", "--device", "cpu", "--preset", "tiny", "--workload", "blender-serve", "--endpoint", url,
                        "--qps", "50", "--requests", "8", "--new-tokens", "2", "--repeats", "1", "--warmup", "1",
                        "--in-process", "--sample-hz", "0", "--quiet", "--out", str(out), *extra])
    err = capsys.readouterr().err
    return code, load_report(next(out.glob("*.json"))), err


# -- failed: beyond the stated share ----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("answers", [[500], ["cut"], ["garbage"], [429, 503, "ok"], [500, "cut", "ok"]],
                         ids=["every-500", "every-stream-cut", "not-a-stream", "two-thirds-refused", "mixed"])
def test_a_session_whose_requests_mostly_failed_is_a_failed_result_and_exits_1(capsys, tmp_path, answers):
    code, report, err = run_against(capsys, tmp_path, answers)
    [r] = report.results
    assert code == 1 and r.status == "failed" and report.status == "failed", (code, r.status, err)
    assert "measured requests failed" in r.error and "more than 50%" in r.error
    wm = r.workload_metrics
    assert wm["errors"] > FAILED_SHARE * 8 and wm["requests"] == 8 - wm["errors"]  # the completed ones still count


@pytest.mark.slow
def test_a_few_failed_requests_leave_the_result_complete_with_them_counted(capsys, tmp_path):
    code, report, _ = run_against(capsys, tmp_path, ["ok", "ok", "ok", 500])  # 2 of 8 failed: under half
    [r] = report.results
    assert code == 0 and r.status == "ok" and "request_errors" in r.codes()
    assert r.workload_metrics["errors"] == 2 and r.workload_metrics["errors.http_500"] == 2


def test_the_share_is_judged_over_the_measured_window_only():
    from bench.model.report import RequestLog

    def log(errors, measured):
        n = len(errors)
        return RequestLog(arrival_s=[float(i) for i in range(n)], start_s=[None] * n,
                          first_token_s=[None if e else i + 0.5 for i, e in enumerate(errors)],
                          finish_s=[None if e else i + 0.5 for i, e in enumerate(errors)], prompt_tokens=[3] * n,
                          new_tokens=[0 if e else 1 for e in errors], batch=[None] * n,
                          token_s=[[] if e else [i + 0.5] for i, e in enumerate(errors)], error=errors,
                          measured=measured)

    # three warm-up requests failed, the five measured ones completed: complete, with the errors counted
    r, rep = Result(workload="w", status="ok"), Repeat(0, requests=log(["timeout"] * 3 + [None] * 5, [False] * 3 + [True] * 5))
    judge_requests(rep, r)
    assert r.status == "ok" and "request_errors" in r.codes()
    # exactly half failed: not beyond the share
    r, rep = Result(workload="w", status="ok"), Repeat(0, requests=log(["http_500", None] * 4, None))
    judge_requests(rep, r)
    assert r.status == "ok"
    # one more than half: failed, saying how many of how many
    r, rep = Result(workload="w", status="ok"), Repeat(0, requests=log(["http_500"] * 5 + [None] * 3, None))
    judge_requests(rep, r)
    assert r.status == rep.status == "failed" and r.error.startswith("5 of 8 measured requests failed (5 http_500)")


# -- partial: cut short, what finished is kept -------------------------------------------------------------
def test_a_session_cut_short_keeps_the_requests_it_finished_and_closes_the_others():
    clock = VirtualClock(100.0)
    engine = Engine(FakeExecutor(clock, per_step_s=0.01), clock, max_batch=2)
    plan = ServingPlan(tuple(0.1 * i for i in range(10)), tuple((7, i) for i in range(10)), (3,) * 10)
    schedule = Schedule(plan, clock(), None)

    def stop_after_four(done, total):
        if done >= 4:
            raise KeyboardInterrupt  # Ctrl-C at the worst moment: requests in flight, others not yet arrived

    with pytest.raises(KeyboardInterrupt):
        run_session(plan, InProcessClient(engine, clock, clock.sleep), clock, stop_after_four, schedule=schedule)
    arrived = [t for t in schedule.traces if t is not None]
    log = request_log(arrived, unfinished="interrupted")
    finished = [f for f in log.finish_s if f is not None]
    assert len(finished) >= 4 and len(arrived) < 10  # what finished is kept; the rest never arrived
    assert all(e == "interrupted" for f, e in zip(log.finish_s, log.error, strict=True) if f is None)
    assert all(e is None for f, e in zip(log.finish_s, log.error, strict=True) if f is not None)


def test_requests_the_runs_own_interruption_cut_are_not_judged_against_the_slo():
    """A session stopped before its requests finished read "missed, at 99 % confidence (200000 of 200000 requests
    over)": the requests nobody waited for are unknown, not misses. A request the server failed still is one."""
    from bench.serve.maths.metrics import serving_metrics

    log = request_log(_traces(["ok"] * 3 + ["cut"] * 5), unfinished="interrupted")
    rep = Repeat(0, requests=log)
    m = serving_metrics([rep], {"qps": 1.0}, slo_ttft_s=1.0)
    assert (m["slo.ttft.n"], m["slo.ttft.over"]) == (3, 0)
    rep.requests = request_log(_traces(["ok"] * 3 + ["cut"] * 5), unfinished="interrupted")
    rep.requests.error = [None, None, "http_500", *rep.requests.error[3:]]
    rep.requests.finish_s[2] = None
    m = serving_metrics([rep], {"qps": 1.0}, slo_ttft_s=1.0)
    assert (m["slo.ttft.n"], m["slo.ttft.over"]) == (3, 1)
    rep.requests = request_log(_traces(["cut"] * 4), unfinished="interrupted")
    assert "slo.ttft.n" not in serving_metrics([rep], {"qps": 1.0}, slo_ttft_s=1.0)  # nothing to judge: no verdict


def _traces(kinds: list[str]):
    """Finished requests (TTFT 0.1 s) and ones still open when the session was cut."""
    from bench.serve.protocol import Trace

    out = []
    for i, kind in enumerate(kinds):
        t = Trace(float(i), sent_s=float(i))
        if kind == "ok":
            t.token_s, t.finish_s = [i + 0.1, i + 0.2], i + 0.2
        out.append(t)
    return out


def test_a_cut_stream_counts_no_tokens_as_served_work():
    """Over HTTP the busy steps are what the client saw: a stream cut after three tokens made no reply, and
    its tokens are no throughput (a server killed mid-session reported tokens/s from partial streams)."""
    from bench.serve.protocol import Trace

    ok, cut = Trace(0.0, sent_s=0.0), Trace(0.0, sent_s=0.0)
    ok.token_s, ok.finish_s = [0.1, 0.2], 0.2
    cut.token_s = [0.05, 0.1, 0.15]
    cut.fail("disconnected")
    steps = busy_steps([ok, cut])
    assert sum(s.rows for s in steps) == 2 and sum(s.finished for s in steps) == 1


# -- the capacity search says why it stopped ----------------------------------------------------------------
def probe(status="ok", met=None, error=None):
    wm = {} if met is None else {"slo.met": met}
    return Result(workload="blender-serve", status=status, error=error, workload_metrics=wm)


def drive(search, outcomes):
    """Send each outcome to the search; (the rates it asked for, why it stopped)."""
    rates, variant = [], next(search)
    try:
        for outcome in outcomes:
            rates.append(variant["qps"][0])
            variant = search.send(outcome(variant["qps"][0]))
    except StopIteration as end:
        return rates, end.value
    raise AssertionError("the search asked for more probes than the test gave")


@pytest.mark.parametrize("status,error", [("failed", "the worker died (SIGKILL)"), ("interrupted", None),
                                          ("skipped", "no device"), ("failed", None)])
def test_a_probe_that_judged_nothing_stops_the_search_saying_so(status, error):
    rates, why = drive(capacity_search(4.0, 8), [lambda q: probe(met=True), lambda q: probe(status, error=error)])
    assert rates == [4.0, 8.0] and why.startswith("the probe at 8 requests/s judged nothing") and status in why


def test_a_probe_whose_requests_mostly_failed_is_a_miss_and_the_search_goes_on():
    outcomes = [lambda q: probe(met=True), lambda q: probe("failed", met=False, error="5 of 8 measured requests failed"),
                lambda q: probe(met=True), lambda q: probe(met=True)]
    rates, why = drive(capacity_search(4.0, 4), outcomes)
    assert rates[:3] == [4.0, 8.0, 5.66] and "ran out" in why  # rates at three significant figures


def test_a_search_says_when_every_probe_missed_and_is_silent_when_it_converged():
    rates, why = drive(capacity_search(0.004, 8), [lambda q: probe(met=False)] * 8)
    assert rates == [0.004, 0.002, 0.001] and why == "every probe missed the SLOs, down to 0.001 requests/s"
    rates, why = drive(capacity_search(4.0, 8), [lambda q: probe(met=q <= 5)] * 8)
    assert why is None and 1 < rates[-1] / 4.0 < 1.3


# -- rates that cannot exceed what happened ----------------------------------------------------------------
SIZES = (5, 10, 20, 50, 100, 200, 500)


@pytest.mark.slow
@pytest.mark.parametrize("n", SIZES)
def test_the_achieved_rate_of_rescaled_poisson_sessions_is_the_offered_one_at_every_size(n):
    """bench's default arrivals (Poisson, rescaled so that the last of n lands at n / q), 1,000 sessions on
    a virtual clock with a server that keeps up: the mean achieved rate within 1 % of the offered one, its
    interval covering it in at least 93 % of the sessions, and goodput never above achieved."""
    from benchmarks.serving_rates import simulate

    row = simulate(n, 1000, 2.0, as_drawn=False)
    assert abs(row.mean_ratio - 1) < 0.01 and row.coverage >= 0.93 and row.goodput_above == 0, row


@pytest.mark.slow
@pytest.mark.parametrize("n", SIZES)
def test_warm_up_requests_left_out_of_the_figures_are_left_out_of_the_rates_time_too(n):
    """A fifth as many warm-up requests, served before the measured ones and not counted: their time is not
    counted either (the rates start at the last of their arrivals); else 100 measured requests after 50
    warm-up ones read half the offered rate."""
    from benchmarks.serving_rates import simulate

    row = simulate(n, 1000, 2.0, as_drawn=False, warmup=n // 5)
    assert abs(row.mean_ratio - 1) < 0.01 and row.coverage >= 0.93 and row.goodput_above == 0, row


@pytest.mark.slow
@pytest.mark.parametrize("n", SIZES)
def test_the_achieved_rate_of_poisson_sessions_as_drawn_is_unbiased_at_every_size(n):
    """Arrivals kept as drawn put the n-th of a Poisson process at a Gamma(n) time: n over it reads n / (n - 1)
    high (6 requests at 2/s read 2.4/s on average); n - 1 over it is unbiased. Over 1,000 sessions the mean is
    within four of its standard errors of the offered rate (a 1 % bound would fail by chance at n = 5, whose
    spread is 50 %), the interval covers the offered rate in at least 93 %, and goodput never exceeds achieved."""
    from benchmarks.serving_rates import simulate

    row = simulate(n, 1000, 2.0, as_drawn=True)
    assert abs(row.mean_ratio - 1) < 4 * row.stderr and row.coverage >= 0.93 and row.goodput_above == 0, row


# -- a capacity that knows when the machine moved ---------------------------------------------------------
def probe_report(points, slo_ttft_s: float, n: int = 500, per_row_s: float = 0.0):
    """A serving run of one result per (offered rate, the fake device's step time), each a Poisson session of
    n requests served by the engine on a virtual clock: the device's speed is the test's to set per rate."""
    from bench.model.report import Interval
    from bench.serve.arrivals import Load, open_arrivals
    from bench.serve.maths.metrics import serving_metrics
    from reportgen import make_report

    report = make_report("probes", 0.05, repeats=1, workload="blender-serve")
    report.results = []
    for qps, step_s in points:
        clock = VirtualClock(10.0)
        engine = Engine(FakeExecutor(clock, per_step_s=step_s, per_row_s=per_row_s), clock, max_batch=8)
        plan = ServingPlan(tuple(open_arrivals(Load("poisson"), qps, n, 0)), tuple((7, i % 50) for i in range(n)), (2,) * n)
        traces = run_session(plan, InProcessClient(engine, clock, clock.sleep), clock, t0=10.0)
        res = make_report("probes", 0.05, repeats=1, workload="blender-serve").results[0]
        rep = res.timing.repeats[0]
        rep.requests = request_log(traces, session_start_s=10.0)
        params = {**res.params, "qps": qps}
        res.params, res.variant = params, {"qps": [qps]}
        res.workload_metrics = serving_metrics([rep], params, slo_ttft_s=slo_ttft_s)
        assert isinstance(res.workload_metrics["achieved_qps"], Interval)
        report.results.append(res)
    return report


def capacity_of(report):
    from bench.analysis.compare import compare

    return compare([("probes.json", report)]).serving[0].capacity


def test_latency_that_rises_with_load_settles_the_capacity():
    cap = capacity_of(probe_report([(2.0, 0.01), (8.0, 0.01), (70.0, 0.01)], slo_ttft_s=0.05, per_row_s=0.005))
    assert (cap.code, cap.qps, cap.below_qps, cap.unsettled) == ("bracket", 8.0, 70.0, None)


def test_latency_that_falls_as_load_rises_leaves_the_capacity_unsettled():
    """The same search on a machine whose speed moved under it: the device got 8x faster from probe to probe
    (another job stopped). Every rate meets the 1 s SLO, and the capacity would read "at least 60"; p99 TTFT
    fell from ~0.2 s at 2/s to ~0.03 s at 60/s, beyond both p99s' 95 % intervals: unsettled."""
    from bench.render.words import capacity_text

    cap = capacity_of(probe_report([(2.0, 0.1), (8.0, 0.03), (60.0, 0.004)], slo_ttft_s=1.0))
    assert cap.code == "at_least" and cap.unsettled is not None and cap.unsettled.code == "latency"
    v = cap.unsettled.values
    assert v["slo"] == "ttft" and v["low_qps"] < v["high_qps"] and v["high_p99_s"] < v["low_p99_s"]
    assert capacity_text(cap).startswith("unsettled: p99 TTFT fell from")


def test_a_fall_far_inside_the_slo_does_not_unsettle_the_capacity():
    """At a light load latency can fall as load rises for reasons of the machine's own; a fall of p99 TTFT beyond
    both intervals but by under a tenth of the SLO's bound (~35 ms of 1 s here) moves no verdict: the capacity
    stands. The same fall against a 100 ms bound is material, and unsettles it."""
    points = [(2.0, 0.03), (8.0, 0.01)]  # p99 TTFT ~69 ms at 2/s, ~35 ms at 8/s
    cap = capacity_of(probe_report(points, slo_ttft_s=1.0, per_row_s=0.005))
    assert cap.unsettled is None and (cap.code, cap.qps) == ("at_least", 8.0)
    cap = capacity_of(probe_report(points, slo_ttft_s=0.1, per_row_s=0.005))
    assert cap.code == "at_least" and cap.unsettled is not None and cap.unsettled.code == "latency"


def test_a_lower_rate_whose_p99_is_a_failed_request_is_read_as_over_every_bound():
    """The p99 of a rate with 2 % failed requests is a failed one (None): the fall check read it as a number and
    raised, which set the report aside in compare and ended bench run in a traceback."""
    from bench.serve.maths.capacity import Probe, bracket

    low = Probe(1.0, False, True, (("ttft", None, 0.3, math.inf, 0.1),))
    high = Probe(2.0, False, True, (("ttft", 0.2, 0.19, 0.21, 0.1),))
    b = bracket([low, high])
    assert b.code == "below" and b.unsettled == "latency" and b.why[2] is None  # a failed p99, said as one


def test_a_disturbed_probe_leaves_the_capacity_unsettled_and_says_which():
    from bench.model.report import ResultWarning

    report = probe_report([(2.0, 0.01), (8.0, 0.01), (70.0, 0.01)], slo_ttft_s=0.05, per_row_s=0.005)
    report.results[1].warnings.append(ResultWarning("contended", "accelerator 0 ran another job (pid 4242)"))
    cap = capacity_of(report)
    assert cap.unsettled.code == "disturbed" and cap.unsettled.values["qps"] == 8.0
    assert "another job" in cap.unsettled.values["why"]


# -- serving stacks compared, not refused -------------------------------------------------------------------
def test_bench_serve_tells_its_models_identity_and_a_run_over_http_takes_it():
    """bench serve's /v1/models card carries its model's identity as bench's reports name it; the load
    generator takes it, so a run over HTTP compares with the in-process engine on the same model."""
    import time as _time

    from bench.serve.endpoint import probe
    from fakes import codec_of
    from test_api import Sleepy, serving
    from bench.serve.server import make_service

    told = {"model": "tiny", "model_type": "blenderbot-small", "parameters": 363_000, "config_hash": "abc123",
            "reply_vocab": 462}
    service = make_service(Engine(Sleepy(), _time.monotonic, max_batch=4), codec_of("tiny", 100), "tiny",
                           _time.monotonic)
    service.identity = told
    with serving(service) as url:
        info = probe(url)
        assert info["identity"] == {"tiny": told}
        service.identity = {k: v for k, v in told.items() if k != "reply_vocab"}  # a bench serve from before it
        assert probe(url)["identity"] == {}  # its replies came from another vocabulary: not taken as the same model


@pytest.mark.parametrize("card", [{"model": "x"}, {**dict.fromkeys(("model", "model_type", "config_hash"), "x"),
                                                  "parameters": -1},
                                  {**dict.fromkeys(("model", "model_type", "config_hash"), "\x1b[2J"), "parameters": 1},
                                  "not a dict"])
def test_an_identity_that_is_not_one_is_not_taken(card):
    from bench.serve.endpoint import _identity

    assert _identity({"id": "m", "bench": card}) is None


def test_engine_in_process_and_over_http_on_the_same_model_are_compared_with_the_stack_noted():
    from bench.analysis.compare import compare
    from bench.model.report import ServedBy
    from bench.render.words import sentence
    from reportgen import serving_report

    inproc = serving_report("inproc", [(2.0, True)], served_by=ServedBy("in-process", static_shapes=False))
    http = serving_report("http", [(2.0, True)], seed=1,
                          served_by=ServedBy("http", "vLLM", "http://127.0.0.1:8000", "completions", "m", True))
    static = serving_report("static", [(2.0, True)], seed=2, served_by=ServedBy("in-process", static_shapes=False))
    for res in static.results:
        res.params.update(batching="static", max_batch=4, batch_wait_ms=10.0)  # bench's engine, another setting
    [comp] = compare([("a.json", inproc), ("b.json", http), ("c.json", static)])
    rows = {r.run.name: r for r in comp.rows}
    assert all(r.comparable and r.verdict != "not_comparable" for r in rows.values())
    said = {name: " ".join(sentence(n) for n in r.notes if n.code == "served_by") for name, r in rows.items()}
    assert "engine: 'http' vs 'in-process'" in said["http"]
    assert "batching: 'static'" in said["static"] and "max_batch: 4" in said["static"]


@pytest.mark.parametrize("args,flag", [(("--endpoint-serves", "tiny"), "--endpoint-serves"),
                                       (("--engine", "http", "--endpoint-serves", "tiny"), "--endpoint-serves")])
def test_a_declared_endpoint_model_without_an_endpoint_is_refused(args, flag, capsys, tmp_path):
    from bench import cli

    code = cli.cli(["run", "--device", "cpu", "--preset", "tiny", "--workload", "blender-serve", *args, "--out",
                    str(tmp_path)])
    assert code == 2 and flag in capsys.readouterr().err


@pytest.mark.slow
def test_an_external_server_declared_to_serve_a_model_compares_with_bench_on_it(capsys, tmp_path):
    _, report, _ = run_against(capsys, tmp_path, ["ok"], "--endpoint-serves", "tiny")
    declared = report.results[0].params
    _, plain, _ = run_against(capsys, tmp_path / "plain", ["ok"])
    assert declared["model"] == "tiny" and declared["config_hash"] and plain.results[0].params["model"] == "endpoint:fake"


# -- what a reader makes of a serving report is what the run made of it ------------------------------------
def serving_result_report(logs, label="r", seed=0, slo_ttft_s=0.5):
    """A serving report whose figures are made as the run makes them: from each repeat's request log."""
    from bench.model.report import Repeat as Rep
    from bench.serve.maths.metrics import serving_metrics
    from reportgen import make_report

    report = make_report(label, 0.05, repeats=1, workload="blender-serve", seed=seed)
    res = report.results[0]
    res.timing.repeats = [Rep(i, step_times_s=[0.1] * 3 if any(log.finish_s) else [],
                              step_samples=[1] * 3 if any(log.finish_s) else [],
                              step_tokens=[1] * 3 if any(log.finish_s) else [], requests=log)
                          for i, log in enumerate(logs)]
    res.params = {**res.params, "qps": 2.0}
    res.figures = [lead_figure({"ttft": slo_ttft_s}), FigureSpec("workload_metrics.errors", "errors", "", "lower")]
    res.workload_metrics = serving_metrics(res.timing.judged, res.params, slo_ttft_s=slo_ttft_s)
    return report


def session_log(ttfts, errors=None, start=0.0):
    from bench.model.report import RequestLog

    n = len(ttfts)
    errors = errors or [None] * n
    arrival = [start + i * 0.5 for i in range(n)]
    first = [a + t if e is None else None for a, t, e in zip(arrival, ttfts, errors, strict=True)]
    return RequestLog(arrival_s=arrival, start_s=[None] * n, first_token_s=first, finish_s=first,
                      prompt_tokens=[3] * n, new_tokens=[1 if f is not None else 0 for f in first], batch=[None] * n,
                      token_s=[[f] if f is not None else [] for f in first], error=errors, session_start_s=start)


def test_a_repeat_none_of_whose_requests_completed_counts_in_compare_as_in_the_run():
    """The run judges every counted repeat with a request log; a reader that dropped the one without steps
    would read errors 0 and the SLO met where the run read 20 errors and a miss."""
    from bench.analysis.compare import compare

    report = serving_result_report([session_log([0.05] * 20), session_log([0.0] * 20, ["timeout"] * 20)])
    wm = report.results[0].workload_metrics
    assert wm["errors"] == 20 and wm["slo.met"] is False
    [comp] = compare([("r.json", report)])
    [row] = comp.rows
    assert row.figures["errors"] == 20 and row.repeats == 2
    assert not [n for n in row.notes if n.code == "recomputed"]  # nothing to correct: the reader agrees


def test_a_latency_compared_with_many_requests_failed_gets_no_verdict():
    """A server that fails its slowest requests would read faster: past 1 % failed, no verdict on its p99."""
    from bench.analysis.compare import compare
    from bench.render.words import speedup_text

    fast = [0.02 + 0.0001 * i for i in range(100)]
    honest = serving_result_report([session_log([0.2 + 0.001 * i for i in range(100)], start=s) for s in (0, 60, 120)],
                                   "honest")
    failing = serving_result_report([session_log(fast, [None] * 90 + ["http_429"] * 10, start=s) for s in (0, 60, 120)],
                                    "failing", seed=1)
    for r in (honest, failing):  # per-repeat figures, as the launcher writes them
        for rep in r.results[0].timing.repeats:
            from bench.serve.maths.metrics import serving_metrics

            own = serving_metrics([rep], r.results[0].params, slo_ttft_s=0.5)
            rep.figure_values["workload_metrics.ttft_s.p99"] = own["ttft_s"].p99
    [comp] = compare([("h.json", honest), ("f.json", failing)])
    row = next(r for r in comp.rows if not r.baseline)
    assert row.speedup.verdict == "inconclusive" and row.speedup.reason.code == "requests_failed"
    assert "10.0% of" in speedup_text(row.speedup)


def test_a_serving_lead_is_the_pooled_percentile_every_output_shows():
    """One p99 per figure: the lead is the pooled requests' nearest-rank p99 — the figure the tail notes and
    the capacity read — with a distribution-free interval, not a mean of each repeat's (that of 100 requests
    is its slowest; 600 requests pooled give the p99 an upper bound)."""
    from bench.analysis.compare import compare

    logs = [session_log([0.05] * 199 + ([2.0] if i == 0 else [0.05]), start=200.0 * i) for i in range(3)]
    report = serving_result_report(logs)
    for rep in report.results[0].timing.repeats:
        from bench.serve.maths.metrics import serving_metrics

        rep.figure_values["workload_metrics.ttft_s.p99"] = serving_metrics([rep], {}, slo_ttft_s=0.5)["ttft_s"].p99
    [comp] = compare([("r.json", report)])
    [row] = comp.rows
    wm = report.results[0].workload_metrics
    assert row.lead.value == pytest.approx(wm["ttft_s"].p99) == pytest.approx(wm["slo.ttft.p99_s"]) == 0.05
    assert row.lead.ci_low <= row.lead.value <= row.lead.ci_high and "order statistics" in row.lead.method
