"""The load generator: LoadGen's tail rule, the loads a helpline sees (bursty, closed-loop,
conversations, drawn lengths, trimmed windows), every figure asserted exactly on a fake engine and a
scripted HTTP server with known token times, errors counted and never fatal, the rates' definitions,
and who served."""

from __future__ import annotations

import math
import statistics
import types

import pytest

from bench.serve.maths import tails
from bench.serve.arrivals import (constant_arrivals, gamma_arrivals, open_arrivals, parse_load,
                                 poisson_arrivals, ramp, rescale)
from bench.core.errors import ConfigError
from bench.model.report import Repeat, RequestLog
from bench.serve.engine import Engine
from bench.serve.http import Endpoint
from bench.serve.protocol import Trace
from bench.serve.session import InProcessClient, busy_steps, request_log, run_session
from fake_http import Recording, Reply, ScriptedServer
from fakes import FakeExecutor, VirtualClock
from bench.serve.maths.capacity import CapacityPlan
from bench.serve.maths.metrics import serving_metrics
from bench.serve.plan import ServingPlan, output_lengths, parse_output_len, user_turns

T0 = 100.0  # the VirtualClock's start: a session's offsets count from it


# ---- LoadGen's early stopping ---------------------------------------------------------------------------
# h(t) from mlcommons/inference loadgen/early_stopping.cc (MinPassingQueriesFinder, a fresh finder per
# call as results.cc's Server scenario makes it; tolerance 0, confidence 0.99), compiled and run:
LOADGEN_H = {0.99: {0: 459, 1: 661, 2: 836, 3: 998, 4: 1153, 5: 1302, 7: 1589, 10: 2000, 20: 3284, 50: 6848,
                    100: 12471, 250: 28663},
             0.9: {0: 44, 1: 63, 2: 79, 3: 94, 10: 187, 100: 1146},
             0.5: {0: 7, 1: 10, 2: 12, 3: 14, 10: 25, 250: 306},
             0.999: {0: 4603, 1: 6635, 5: 13100, 20: 33077}}


@pytest.mark.parametrize("p", sorted(LOADGEN_H))
def test_the_minimum_passing_queries_are_loadgens(p):
    assert {t: tails.min_passing(t, p) for t in LOADGEN_H[p]} == LOADGEN_H[p]


def test_a_p99_claim_needs_459_requests_with_none_over_and_more_with_some():
    assert not tails.claim(458, 0).holds and tails.claim(459, 0).holds and tails.claim(459, 0).met
    c = tails.claim(60, 0)
    assert c.met and not c.holds and not c.valid and c.more == 399  # "about 399 more with none over"
    one = tails.claim(600, 1)
    assert one.met and one.needed == 662 and one.more == 62 and not one.holds
    assert tails.claim(662, 1).holds
    # LoadGen's nearest rank: sorted[floor(n p)] is within the bound while at most n - floor(n p) - 1 are over
    assert tails.claim(200, 1).met and not tails.claim(200, 2).met and tails.claim(500, 4).met
    assert not tails.claim(500, 5).met


def test_a_miss_is_sure_only_when_that_many_over_would_be_unlikely_at_the_bound():
    assert not tails.claim(60, 1).refuted and not tails.claim(60, 3).refuted  # P(>= 3 of 60 at 1 %) = 2.3 %
    assert tails.claim(60, 4).refuted  # P(>= 4 of 60 at 1 %) = 0.35 %
    assert tails.miss_odds(60, 3, 0.99) == pytest.approx(1 - sum(math.comb(60, k) * 0.01**k * 0.99**(60 - k)
                                                                  for k in range(3)), rel=1e-9)


def test_judging_latencies_counts_strictly_over_and_failures_as_over():
    c = tails.judge([0.1, 0.25, 0.3, None], bound=0.25)
    assert (c.n, c.over) == (4, 2)  # 0.25 is at the bound, not over (LoadGen: latency > target)
    with pytest.raises(ValueError):
        tails.claim(3, 4)


# ---- arrivals -------------------------------------------------------------------------------------------
def test_gamma_arrivals_have_vllms_burstiness_and_one_is_poisson():
    assert gamma_arrivals(4.0, 50, 3, 1.0) == poisson_arrivals(4.0, 50, 3)
    for shape in (0.5, 4.0):
        t = gamma_arrivals(10.0, 20_000, 3, shape)
        gaps = [b - a for a, b in zip([0.0, *t], t, strict=False)]
        assert statistics.mean(gaps) == pytest.approx(0.1, rel=0.03)
        cv2 = statistics.variance(gaps) / statistics.mean(gaps) ** 2
        assert cv2 == pytest.approx(1 / shape, rel=0.08)  # gamma of shape B: squared CV 1 / B
    assert gamma_arrivals(10.0, 30, 3, 0.5) == gamma_arrivals(10.0, 30, 3, 0.5)  # seeded


def test_rescaled_arrivals_land_the_last_of_n_at_n_over_the_rate():
    drawn = gamma_arrivals(5.0, 200, 1, 0.5)
    scaled = rescale(drawn, 5.0)
    assert scaled[-1] == pytest.approx(40.0) and drawn[-1] != pytest.approx(40.0, rel=1e-3)
    assert all(b / a == pytest.approx(scaled[-1] / drawn[-1]) for a, b in zip(drawn, scaled, strict=False))
    assert open_arrivals(parse_load("gamma:0.5"), 5.0, 200, 1, as_drawn=True) == drawn
    assert constant_arrivals(4.0, 3) == [0.25, 0.5, 0.75]


def test_a_ramp_up_raises_the_rate_linearly_then_keeps_it():
    flat = constant_arrivals(10.0, 400)
    ramped = ramp(flat, ramp_s=10.0)
    first_5s = sum(1 for t in ramped if t <= 5.0)
    assert first_5s == pytest.approx(12.5, abs=1)  # the area under q t / S to 5 s: 10 * 25 / 20
    assert sum(1 for t in ramped if t <= 10.0) == pytest.approx(50, abs=1)
    late = [t for t in ramped if t > 10.0]
    assert statistics.mean(b - a for a, b in zip(late, late[1:], strict=False)) == pytest.approx(0.1)
    assert ramp(flat, 0.0) == flat


@pytest.mark.parametrize("text", ["gamma", "gamma:0", "gamma:nan", "gamma:inf", "concurrency:0", "concurrency:1.5",
                                  "poisson:2", "bursty", "", "constant:1", "concurrency:1e9"])
def test_a_load_that_means_nothing_is_refused_naming_the_flag(text):
    with pytest.raises(ConfigError, match="--load"):
        parse_load(text)


def test_loads_read_as_written():
    assert str(parse_load("gamma:0.5")) == "gamma:0.5" and parse_load("concurrency:4").value == 4
    assert not parse_load("concurrency:4").open and parse_load("constant").open


# ---- output lengths and turns ---------------------------------------------------------------------------
def test_output_lengths_are_fixed_normal_or_eos_like_and_bounded():
    assert output_lengths("fixed", 8, 3, 0, 32) == (8, 8, 8)
    eos = output_lengths("eos", 20, 20_000, 0, 80)
    assert min(eos) >= 1 and max(eos) == 80 and statistics.mean(eos) == pytest.approx(20 * (1 - 0.95**80), rel=0.03)
    assert eos.count(1) / len(eos) == pytest.approx(0.05, abs=0.01)  # the first token ends it 1 time in 20
    normal = output_lengths("normal:4", 20, 20_000, 0, 80)
    assert statistics.mean(normal) == pytest.approx(20, rel=0.01) and statistics.stdev(normal) == pytest.approx(4, 0.05)
    assert output_lengths("eos", 20, 50, 7, 80) == output_lengths("eos", 20, 50, 7, 80)
    for bad in ("normal", "normal:-1", "eos:3", "zipf"):
        with pytest.raises(ConfigError, match="--output-len"):
            parse_output_len(bad)


def test_a_conversations_user_turns_leave_room_for_the_dialogue_to_grow():
    turns = user_turns([list(range(40)), [7]], turns=3, context_len=32)
    assert turns == [list(range(35, 40)), [7]]  # 32 // 6 = 5 tokens, the last ones


# ---- sessions on a virtual clock: loads ----------------------------------------------------------------
class Seeing(FakeExecutor):
    """The fake executor, keeping every request it was given."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen, self.sampled = {}, {}

    def step(self, joining):
        self.seen.update({r.id: r.prompt for r in joining})
        self.sampled.update({r.id: r.sampling for r in joining})
        return super().step(joining)


def serve(plan, per_step_s=0.02, per_row_s=0.01, max_batch=4):
    clock = VirtualClock(T0)
    ex = Seeing(clock, per_step_s=per_step_s, per_row_s=per_row_s)
    client = InProcessClient(Engine(ex, clock, max_batch=max_batch), clock, clock.sleep)
    return run_session(plan, client, clock), ex


def prompts(n, length=6):
    return tuple(tuple([7] * length + [i]) for i in range(n))


def test_a_closed_loop_keeps_n_in_flight_each_next_arriving_as_one_is_answered():
    n = 20
    plan = ServingPlan((), prompts(n), (5,) * n, concurrency=3)
    traces, _ = serve(plan, max_batch=8)
    assert all(t.finish_s is not None for t in traces)
    assert [t.arrival_s for t in traces[:3]] == [T0] * 3
    finishes = sorted(t.finish_s for t in traces)
    for t in traces[3:]:
        assert t.arrival_s in finishes  # it arrived the moment an earlier one was answered
    for moment in (t.arrival_s for t in traces):
        in_flight = sum(1 for t in traces if t.arrival_s <= moment < t.finish_s)
        assert in_flight <= 3


def test_a_closed_loop_ramp_spreads_its_first_requests():
    plan = ServingPlan((), prompts(6), (2,) * 6, concurrency=3, ramp_s=0.9)
    traces, _ = serve(plan)
    assert [t.arrival_s for t in traces[:3]] == pytest.approx([T0, T0 + 0.3, T0 + 0.6])


def test_a_conversations_next_turn_arrives_after_its_answer_and_carries_the_dialogue():
    turns = (tuple(range(10, 13)), (20, 21), (30,), (40, 41, 42), (50,), (60, 61))
    plan = ServingPlan((0.0, 0.05), turns, (4,) * 6, turns=3, think_s=0.5, context_len=12)
    traces, ex = serve(plan)
    sent = ex.seen
    for c in (0, 1):
        for k in (1, 2):
            i = 3 * c + k
            assert traces[i].arrival_s == pytest.approx(traces[i - 1].finish_s + 0.5)
            assert traces[i].turn == k and traces[i].conversation == c
    assert sent["0"] == (10, 11, 12)
    assert sent["1"] == (10, 11, 12, 5, 5, 5, 5, 20, 21)  # turn 0, its reply (the fake's 5s), turn 1
    assert sent["2"] == (11, 12, 5, 5, 5, 5, 20, 21, 5, 5, 5, 5, 30)[-12:]  # cut to the last 12 tokens
    assert len(sent["2"]) == 12


# ---- the figures, exactly ---------------------------------------------------------------------------------
def log_of(rows, **extra):
    """A request log from (arrival, first token, token times..., finish or None) rows."""
    return RequestLog(arrival_s=[r[0] for r in rows], start_s=[None] * len(rows),
                      first_token_s=[r[1][0] if r[1] else None for r in rows],
                      finish_s=[r[1][-1] if r[1] and r[2] is None else None for r in rows],
                      prompt_tokens=[3] * len(rows), new_tokens=[len(r[1]) for r in rows], batch=[None] * len(rows),
                      token_s=[list(r[1]) for r in rows], error=[r[2] for r in rows], **extra)


def test_ttft_itl_tpot_goodput_and_rates_are_exactly_as_defined():
    rows = [(0.0, [0.1, 0.2, 0.4], None),  # TTFT 0.1, ITL 0.1 0.2, TPOT (0.4 - 0.1) / 2 = 0.15, e2e 0.4
            (1.0, [1.3, 1.35], None),  # TTFT 0.3, ITL 0.05, TPOT 0.05, e2e 0.35
            (2.0, [2.05], None),  # TTFT 0.05, one token: no ITL, no TPOT (0 for goodput), e2e 0.05
            (3.0, [3.2], "timeout")]  # failed after a first chunk: no latency, over every SLO
    log = log_of(rows, session_start_s=0.0, sent_s=[0.0, 1.01, 2.0, 3.0])
    m = serving_metrics([Repeat(0, requests=log)], {"qps": 1.0}, slo_ttft_s=0.2, slo_tpot_s=0.1)
    assert sorted(m["ttft_s"].__dict__[k] for k in ("min", "max")) == pytest.approx([0.05, 0.3])
    assert m["ttft_s"].n == 3 and m["ttft_s"].median == pytest.approx(0.1)
    assert m["itl_s"].n == 3 and m["itl_s"].mean == pytest.approx((0.1 + 0.2 + 0.05) / 3)
    assert m["tpot_s"].n == 2 and m["tpot_s"].mean == pytest.approx((0.15 + 0.05) / 2)
    assert m["e2e_s"].max == pytest.approx(0.4) and m["late_s"].max == pytest.approx(0.01)
    assert m["achieved_qps"].value == pytest.approx(3 / (2.05 - 0.0))  # completions / (last completion - first arrival)
    assert m["realised_qps"] == pytest.approx(4 / 3.0)  # requests / (last arrival - session start)
    # good: only request 2 meets both (1: TTFT 0.3 > 0.2; 0: TPOT 0.15 > 0.1; 3 failed)
    assert m["slo_attainment"] == pytest.approx(1 / 4) and m["goodput_rps"] == pytest.approx(1 / 2.05)
    assert m["errors"] == 1 and m["errors.timeout"] == 1 and m["requests"] == 3
    assert (m["slo.ttft.n"], m["slo.ttft.over"]) == (4, 2) and (m["slo.tpot.n"], m["slo.tpot.over"]) == (4, 2)
    assert m["slo.ttft.p99_s"] is None  # the nearest-rank p99 is the failed request's
    # 2 of 4 over: were only 1 % over the bound, that would happen 0.06 % of the time: the miss holds
    assert m["slo.met"] is False and m["slo.valid"] is True


def test_one_ttft_with_its_origin_a_parameter_serves_bench_and_the_vllm_export():
    """TTFT and e2e are one function each over the typed record: from the arrival for bench's figures,
    from the send for vLLM's; TPOT and ITL are the same from either origin."""
    from bench.serve.maths import records as rec
    from bench.serve.maths.vllm import vllm_result

    log = log_of([(1.0, [1.3, 1.35], None), (3.0, [3.2], "timeout")], sent_s=[1.1, 3.0], session_start_s=0.0)
    done, failed = rec.records(log)
    assert (rec.ttft(done), rec.ttft(done, "sent")) == pytest.approx((0.3, 0.2))
    assert (rec.e2e(done), rec.e2e(done, "sent")) == pytest.approx((0.35, 0.25))
    assert rec.tpot(done) == pytest.approx(0.05) and rec.itl(done) == pytest.approx([0.05])
    assert rec.late(done) == pytest.approx(0.1) and rec.ttft(failed) is None and failed.error == "timeout"
    m = serving_metrics([Repeat(0, requests=log)], {})
    assert m["ttft_s"].max == pytest.approx(rec.ttft(done))  # the figure is the function's value
    report = types.SimpleNamespace(created_at="2026-01-01T00:00:00+00:00", label=None)
    result = types.SimpleNamespace(params={}, served_by=None, workload_metrics={})
    out = vllm_result(report, result, log)
    assert out["ttfts"] == pytest.approx([rec.ttft(done, "sent"), 0.0])  # a failed request: 0, as vLLM writes
    assert out["itls"] == [pytest.approx([0.05]), []] and out["mean_itl_ms"] == pytest.approx(50)


def test_the_window_leaves_warm_up_and_cool_down_requests_out():
    rows = [(float(i), [i + 0.1 * (1 + (i == 0) * 9)], None) for i in range(6)]  # request 0 is slow (1 s)
    log = log_of(rows, measured=[False, True, True, True, True, False])
    m = serving_metrics([Repeat(0, requests=log)], {}, slo_ttft_s=0.5)
    assert m["ttft_s"].n == 4 and m["ttft_s"].max == pytest.approx(0.1) and m["slo.ttft.n"] == 4
    assert m["achieved_qps"].value == pytest.approx(4 / (4.1 - 1.0))


def test_achieved_rate_interval_is_over_repeats_or_the_completions_count():
    one = log_of([(float(i), [i + 0.5], None) for i in range(100)])
    i = serving_metrics([Repeat(0, requests=one)], {})["achieved_qps"]
    assert i.value == pytest.approx(100 / 99.5) and i.ci_low < i.value < i.ci_high and "Garwood" in i.method
    assert (i.ci_low * 99.5, i.ci_high * 99.5) == pytest.approx((81.37, 121.63), rel=0.01)  # Garwood's for 100
    two = log_of([(float(i), [i * 1.1 + 0.5], None) for i in range(100)])
    j = serving_metrics([Repeat(0, requests=one), Repeat(1, requests=two)], {})["achieved_qps"]
    assert "2 repeats" in j.method and j.ci_low < j.value < j.ci_high


def test_a_session_on_a_fake_engine_gives_its_known_token_times():
    """One request at a time on a fake device: steps of exactly 20 ms + 10 ms per row."""
    plan = ServingPlan((0.0, 1.0), ((7,) * 5, (8,) * 5), (3, 2))
    traces, _ = serve(plan)
    assert traces[0].token_s == pytest.approx([T0 + 0.03, T0 + 0.06, T0 + 0.09])
    assert traces[1].token_s == pytest.approx([T0 + 1.03, T0 + 1.06])
    m = serving_metrics([Repeat(0, requests=request_log(traces, session_start_s=T0))], {"qps": 2.0}, slo_ttft_s=0.031)
    assert m["ttft_s"].max == pytest.approx(0.03) and m["itl_s"].mean == pytest.approx(0.03)
    assert m["tpot_s"].max == pytest.approx(0.03) and m["slo.ttft.over"] == 0 and m["slo.met"] is True


def test_an_engine_that_refuses_a_request_counts_it_and_serves_the_rest():
    plan = ServingPlan((0.0, 0.1), ((7,) * 5, (7,) * 600), (2, 2))  # the fake takes 512 prompt tokens at most
    traces, _ = serve(plan)
    log = request_log(traces)
    assert log.error == [None, "rejected_context_length_exceeded"] and log.finish_s[1] is None
    assert serving_metrics([Repeat(0, requests=log)], {})["errors.rejected_context_length_exceeded"] == 1


# ---- over HTTP, against a scripted server -------------------------------------------------------------------
def run_scripted(plan, replies, chat=False):
    """(traces, server) of a session against the scripted server on a virtual clock."""
    clock = VirtualClock(T0)
    keys = list(plan.texts) if chat else list(plan.prompts)
    server = ScriptedServer(clock, dict(zip(keys, replies, strict=False)), [(T0 + a, k) for a, k in zip(plan.arrivals, keys, strict=False)])
    return session_against(server, plan, clock, "chat" if chat else "completions"), server


def session_against(server, plan, clock, api: str = "completions"):
    """The traces of a session the recording client runs against a scripted server, on its virtual clock."""
    with server as url:
        client = server.client = Recording(Endpoint(url, api, "fake"), clock, clock.sleep)
        try:
            return run_session(plan, client, clock)
        finally:
            client.close()


def test_an_http_session_stamps_every_chunk_at_its_scripted_time():
    plan = ServingPlan((0.0, 0.25, 0.3), prompts(3), (4, 3, 2))
    replies = [Reply.tokens([0.1, 0.15, 0.35, 0.4]),  # overlaps the next two
               Reply.tokens([0.02, 0.12, 0.13]),
               Reply([(0.05, [30, 31])])]  # one chunk carrying two tokens
    traces, server = run_scripted(plan, replies)
    assert traces[0].token_s == pytest.approx([T0 + 0.1, T0 + 0.15, T0 + 0.35, T0 + 0.4])
    assert traces[1].token_s == pytest.approx([T0 + 0.27, T0 + 0.37, T0 + 0.38])
    assert traces[2].token_s == pytest.approx([T0 + 0.35]) and traces[2].tokens == [30, 31]
    assert [t.sent_s for t in traces] == pytest.approx([T0, T0 + 0.25, T0 + 0.3])  # sent on time: no lateness
    assert traces[0].tokens == [10, 11, 12, 13] and traces[1].new_tokens == 3
    log = request_log(traces, session_start_s=T0)
    assert log.new_tokens == [4, 3, 2] and log.token_s[2] == [pytest.approx(T0 + 0.35)]
    m = serving_metrics([Repeat(0, requests=log)], {"qps": 10.0}, slo_ttft_s=0.05, slo_tpot_s=0.05)
    assert [m["ttft_s"].min, m["ttft_s"].max] == pytest.approx([0.02, 0.1])
    assert m["itl_s"].n == 5 and m["itl_s"].max == pytest.approx(0.2)  # chunk gaps, pooled
    tpots = sorted([0.3 / 3, 0.11 / 2, 0.0 / 1])
    assert m["tpot_s"].mean == pytest.approx(statistics.mean(tpots))
    assert m["slo_attainment"] == pytest.approx(1 / 3)  # only the two-token reply meets both
    body = server.bodies[0]
    assert body["prompt"] == list(plan.prompts[0]) and body["max_tokens"] == body["min_tokens"] == 4
    assert body["stream"] and body["ignore_eos"] and body["return_token_ids"] and body["temperature"] == 0.0


def test_failures_over_http_are_counted_by_reason_and_the_session_goes_on():
    plan = ServingPlan((0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6), prompts(7), (2,) * 7)
    replies = [Reply.tokens([0.01, 0.02]), Reply(status=429), Reply.tokens([0.01], cut=True),
               Reply.tokens([0.01], garbage=b"data: {not json\n\n"), Reply(status=503),
               Reply.tokens([0.01], garbage=b"data: " + b"[" * 100_000 + b"\n\n"),
               Reply.tokens([0.01], garbage=b'data: {"error": {"message": "out of memory"}}\n\n')]
    traces, _ = run_scripted(plan, replies)
    assert [t.error for t in traces] == [None, "http_429", "disconnected", "bad_stream", "http_503", "bad_stream",
                                         "server_error"]
    log = request_log(traces)
    assert log.finish_s[0] is not None and log.finish_s[1:] == [None] * 6
    m = serving_metrics([Repeat(0, requests=log)], {}, slo_ttft_s=1.0)
    assert m["errors"] == 6 and m["requests"] == 1 and m["slo.ttft.over"] == 6 and m["errors.bad_stream"] == 2


def test_a_server_without_token_ids_is_counted_by_its_text_chunks_and_usage():
    plan = ServingPlan((0.0,), prompts(1), (3,))
    traces, _ = run_scripted(plan, [Reply.tokens([0.1, 0.2, 0.3], with_ids=False)])
    assert traces[0].token_s == pytest.approx([T0 + 0.1, T0 + 0.2, T0 + 0.3]) and traces[0].tokens == []
    assert traces[0].new_tokens == 3 and traces[0].text == " w10 w11 w12"


def test_chat_sends_the_dialogue_as_messages_and_stamps_the_same_way():
    texts = ("hello there", "i feel low", "thanks")
    plan = ServingPlan((0.0, 0.2), ((5, 6), (7,), (8,), (9,)), (2,) * 4, texts + ("bye",), turns=2, think_s=0.1,
                       context_len=64)
    replies = [Reply.tokens([0.05, 0.06]), Reply.tokens([0.01, 0.03]), Reply.tokens([0.02, 0.04]),
               Reply.tokens([0.01, 0.02])]
    clock = VirtualClock(T0)
    keys = list(plan.texts)
    arrivals = [(T0, texts[0]), (T0 + 0.2, texts[2])]
    server = ScriptedServer(clock, dict(zip(keys, replies, strict=False)), arrivals)
    traces = session_against(server, plan, clock, "chat")
    second_turn = next(b for b in server.bodies if b["messages"][-1]["content"] == "i feel low")
    assert second_turn["messages"] == [{"role": "user", "content": "hello there"},
                                       {"role": "assistant", "content": " w10 w11"},
                                       {"role": "user", "content": "i feel low"}]
    assert traces[1].arrival_s == pytest.approx(T0 + 0.06 + 0.1) and traces[1].token_s[0] == pytest.approx(
        T0 + 0.16 + 0.01)


def test_a_request_not_answered_in_time_is_a_timeout():
    """The server never answers (a real-time wait far longer than the client's timeout)."""
    from bench.serve.http import HttpClient

    clock = VirtualClock(T0)
    replies = {prompts(1)[0]: Reply([(0.0, [1])])}
    server = ScriptedServer(clock, replies)
    server._turn = _never  # type: ignore[assignment]
    with server as url:
        client = HttpClient(Endpoint(url, "completions", "fake", None, timeout_s=0.2), clock, clock.sleep)
        try:
            traces = run_session(ServingPlan((0.0,), prompts(1), (1,)), client, clock)
        finally:
            client.close()
    assert traces[0].error == "timeout"


async def _never(hid):
    import asyncio

    await asyncio.sleep(60)


def test_nothing_answering_is_a_connection_error_not_a_crash():
    import socket

    from bench.serve.http import HttpClient

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        clock = VirtualClock(T0)
        client = HttpClient(Endpoint(f"http://127.0.0.1:{port}", "completions", "x"), clock, clock.sleep)
        try:
            traces = run_session(ServingPlan((0.0, 0.1), prompts(2), (1, 1)), client, clock)
        finally:
            client.close()
    assert [t.error for t in traces] == ["connection", "connection"]


def test_the_client_sees_a_busy_server_between_sends_and_completions():
    a = Trace(0.0, sent_s=0.0, token_s=[0.1, 0.2], finish_s=0.2)
    b = Trace(0.1, sent_s=0.1, token_s=[0.15, 0.3], finish_s=0.3)
    c = Trace(1.0, sent_s=1.0, token_s=[1.5], finish_s=1.5)
    steps = busy_steps([a, b, c])
    assert [(s.start_s, s.end_s, s.finished, s.rows) for s in steps] == [
        (0.0, 0.2, 1, 3), (0.2, 0.3, 1, 1), (1.0, 1.5, 1, 1)]
    assert sum(s.end_s - s.start_s for s in steps) == pytest.approx(0.8)


# ---- the capacity search's plan -----------------------------------------------------------------------
def test_each_probe_gets_enough_requests_for_a_valid_verdict_within_its_time():
    plan = CapacityPlan(start_qps=4.0, probes=6, requests=480, needed=459, max_probe_s=60.0)
    assert plan.requests_at(16.0) == 480 and not plan.provisional_at(16.0)
    assert plan.requests_at(4.0) == 240 and plan.provisional_at(4.0)  # 480 would take 120 s
    worst = sum(min(480, int(q * 60)) / q for q in (4, 2, 1, 0.5, 0.25, 0.125))
    assert plan.worst_case_s() == pytest.approx(worst) and plan.worst_case_s() <= 6 * 60
    assert "at worst about 6 min" in plan.text() and "provisional" in plan.text()


def test_the_search_sends_each_probe_its_request_count():
    from bench.model.report import Result
    from bench.serve.maths.capacity import capacity_search

    plan = CapacityPlan(2.0, 4, 480, 459, 100.0)
    search = capacity_search(2.0, 4, plan.requests_at)
    first = next(search)
    second = search.send(Result("blender-serve", "ok", workload_metrics={"slo.met": True}))
    assert first == {"qps": (2.0,), "requests": 200} and second == {"qps": (4.0,), "requests": 400}


# ---- the report: what a request log may hold ---------------------------------------------------------------
def plain_log(**changes):
    from bench.model.fields import plain

    base = log_of([(0.0, [0.1, 0.2], None), (1.0, [], "timeout")], sent_s=[0.0, 1.0],
                  measured=[True, True], session_start_s=0.0)
    return {**plain(base), **changes}


@pytest.mark.parametrize("changes,why", [
    ({"error": [None, None]}, "a finish time or an error"),  # a failed request must say why
    ({"error": ["timeout", "timeout"]}, "a finish time or an error"),  # a completed one has none
    ({"error": [None, "Time Out!"]}, "error code"),
    ({"error": [None, "x" * 65]}, "error code"),
    ({"token_s": [[0.2, 0.1], []]}, "backwards"),
    ({"token_s": [[0.1, 0.2, 0.3], []]}, "token times for 2 tokens"),
    ({"sent_s": [0.0, 0.5]}, "before its scheduled arrival"),
    ({"measured": [True]}, "differ in length"),
    ({"turn": [0, -1]}, "at least 0"),
])
def test_a_request_log_that_cannot_be_true_is_refused(changes, why):
    from bench.model.fields import ModelError, parse

    parse(RequestLog, plain_log())
    with pytest.raises(ModelError, match=why):
        parse(RequestLog, plain_log(**changes))


def test_fewer_stamps_than_tokens_is_a_chunked_stream_not_an_error():
    from bench.model.fields import parse

    log = parse(RequestLog, plain_log(new_tokens=[5, 0]))  # two chunks carried five tokens
    assert log.new_tokens[0] == 5 and len(log.token_s[0]) == 2


# ---- options: refused before any work, naming the flag ------------------------------------------------------
@pytest.mark.parametrize("args,flag", [
    (["--endpoint", "http://user:secret@127.0.0.1:8000"], "--endpoint: credentials"),
    (["--endpoint", "ftp://127.0.0.1"], "--endpoint"),
    (["--endpoint", "http://127.0.0.1:8000/?x=1"], "--endpoint"),
    (["--endpoint", "http://127.0.0.1:8000", "--engine", "http"], "--engine http"),
    (["--api", "chat"], "--api chat"),
    (["--api-key-env", "not a name"], "--api-key-env"),
    (["--load", "concurrency:2", "--conversations", "3"], "--conversations"),
    (["--load", "concurrency:2", "--find-capacity"], "--find-capacity"),
    (["--find-capacity", "--slo-ttft-ms", "100", "--conversations", "2"], "--find-capacity"),
    (["--warmup-requests", "30", "--cooldown-requests", "30", "--requests", "60"], "--warmup-requests"),
    (["--output-len", "normal"], "--output-len"),
    (["--load", "gamma:-1"], "--load"),
    (["--load", "constant", "--arrivals", "/nonexistent"], "--load: an --arrivals file"),
])
def test_serving_options_that_cannot_work_exit_2_before_any_work(capsys, tmp_path, args, flag):
    from conftest import cli_run

    code, out, err = cli_run(capsys, "run", "--device", "cpu", "--preset", "tiny", "--workload", "blender-serve",
                             "--out", tmp_path, *args)
    assert code == 2 and flag in err, err
    assert not list(tmp_path.glob("*.json"))


def test_an_api_key_is_read_from_the_environment_and_never_recorded(monkeypatch):
    from conftest import run_config

    cfg = run_config("--device", "cpu", "--preset", "tiny", "--workload", "blender-serve",
                     "--endpoint", "http://127.0.0.1:1", "--api-key-env", "BENCH_TEST_KEY")
    o = cfg.options_of("blender-serve")
    with pytest.raises(ConfigError, match="BENCH_TEST_KEY"):
        o.api_key()
    monkeypatch.setenv("BENCH_TEST_KEY", "sk-very-secret")
    assert o.api_key() == "sk-very-secret" and "sk-very-secret" not in str(cfg.to_json())
    assert Endpoint("http://x", key=o.api_key()).headers() == {"Authorization": "Bearer sk-very-secret"}


def test_an_endpoint_that_does_not_answer_is_refused_before_any_work(capsys, tmp_path):
    import socket

    from conftest import cli_run

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        code, _, err = cli_run(capsys, "run", "--device", "cpu", "--preset", "tiny", "--workload", "blender-serve",
                               "--endpoint", f"http://127.0.0.1:{s.getsockname()[1]}", "--out", tmp_path)
    assert code == 2 and "no OpenAI-compatible server answers there" in err


def test_engine_http_starts_bench_serve_with_the_runs_model_device_and_engine():
    from bench.cli import build_parser
    from bench.launch.serve_command import build_serve
    from bench.serve.spawn import serve_argv
    from conftest import run_config

    cfg = run_config("--device", "cpu", "--preset", "seed", "--workload", "blender-serve", "--engine", "http",
                     "--threads", "1", "--seed", "7", "--batching", "static", "--max-batch", "4", "--precision", "bf16",
                     "--context-len", "100", "--requests", "300")
    argv = serve_argv(cfg, cfg.options_of("blender-serve"))
    served, server = build_serve(build_parser().parse_args(["serve", *argv]))
    assert (served.common.model, served.common.seed, served.common.precision, served.common.context_len) == (
        "blenderbot-90m", 7, "bf16", 100)
    o = served.options_of("blender-serve")
    assert (o.batching, o.max_batch, served.device.threads) == ("static", 4, 1)
    assert (server.host, server.port, server.max_waiting) == ("127.0.0.1", 0, 300)


def test_a_local_servers_process_is_found_by_its_port():
    import os
    import socket

    from bench.serve.remote import listening_pid

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.listen()
        assert listening_pid(port) == os.getpid()
    assert listening_pid(port) is None


def test_the_base_url_is_the_server_without_v1():
    from bench.serve.endpoint import base_url, is_local

    assert base_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000"
    assert base_url("https://api.example.com/proxy/v1") == "https://api.example.com/proxy"
    assert base_url("http://[::1]:9000") == "http://[::1]:9000"
    assert is_local("http://127.0.0.1:1") and is_local("http://localhost:1") and is_local("http://[::1]:2")
    assert not is_local("http://10.0.0.1:8000") and not is_local("http://example.com")


def test_a_capacity_search_says_its_plan_and_worst_case_before_it_starts(capsys, tmp_path, monkeypatch):
    from bench import cli
    from conftest import cli_run

    def launch(cfg, threads=None, **launcher_kw):
        raise ConfigError("stopped before the launch")

    monkeypatch.setattr(cli, "_launch", launch)
    code, _, err = cli_run(capsys, "run", "--device", "cpu", "--preset", "tiny", "--workload", "blender-serve",
                           "--qps", "4", "--find-capacity", "--max-probe-s", "60", "--out", tmp_path)
    assert code == 2 and err.index("capacity search: up to 8 probes from 4 requests/s, 480 requests each (459 are "
                                   "needed") < err.index("stopped before the launch")
    assert "at worst about" in err and "halves to 0.0312 requests/s" in err


# ---- compare: who served, static shapes, the cost's interval -------------------------------------------------
def serving_run(label, served=None, params=None, achieved=None, seed=0):
    from reportgen import make_report

    r = make_report(label, 0.05, repeats=3, workload="blender-serve", seed=seed,
                    params={"qps": 4.0, **(params or {})})
    res = r.results[0]
    res.variant = {"qps": [4.0]}
    res.workload_metrics = {"offered_qps": 4.0, "achieved_qps": achieved or 4.0}
    res.served_by = served
    return r


def test_static_shapes_is_how_a_device_serves_compared_and_noted_not_identity():
    from bench.analysis.compare import compare
    from bench.model.report import ServedBy
    from bench.render.words import sentence

    gpu = serving_run("cuda", ServedBy("in-process", static_shapes=False))
    hpu = serving_run("hpu", ServedBy("in-process", static_shapes=True), seed=1)
    [comp] = compare([("a.json", gpu), ("b.json", hpu)])
    row = comp.rows[1]
    assert row.comparable and row.verdict != "not_comparable"
    [note] = [n for n in row.notes if n.code == "served_by"]
    assert "static_shapes: True vs False" in sentence(note)
    assert row.figures["static_shapes"] is True and comp.rows[0].figures["served_by"] == "in-process"
    old = serving_run("old-hpu", params={"static_shapes": True}, seed=2)  # a report from before served_by
    [comp] = compare([("a.json", gpu), ("c.json", old)])
    assert comp.rows[1].comparable and any(n.code == "served_by" for n in comp.rows[1].notes)


def test_compare_says_which_engine_served_and_over_which_endpoint():
    from bench.analysis.compare import compare
    from bench.model.report import ServedBy
    from bench.render.words import served_text

    local = serving_run("inproc", ServedBy("in-process", static_shapes=False))
    http = serving_run("http", ServedBy("http", "bench serve", "http://127.0.0.1:41213", "completions", "tiny", True,
                                        True, False), seed=1)
    remote = serving_run("remote", ServedBy("http", "vllm", "http://10.1.2.3:8000", "chat", "m", False,
                                            telemetry="not sampled"), seed=2)
    comp = compare([("a.json", local), ("b.json", http), ("c.json", remote)])
    served = {row.run.name: served_text(row.served) for row in comp.workloads[0].rows}
    assert served == {"inproc": "in-process",
                      "http": "http://127.0.0.1:41213 (bench serve, started by the run)",
                      "remote": "http://10.1.2.3:8000 (vllm, no telemetry of its machine)"}
    assert [c.served.engine for c in comp.serving] == ["in-process", "http", "http"]


def test_serving_cost_carries_the_achieved_rates_interval():
    from bench.analysis.comparison import Costing
    from bench.analysis.compare import compare
    from bench.analysis.cost import parse_price
    from bench.model.report import Interval

    r = serving_run("a", achieved=Interval(4.0, 3.2, 5.0, 0.95, "t"))
    [comp] = compare([("a.json", r)], costing=Costing(prices=(parse_price("cpu=3.6"),)))
    cost = comp.rows[0].cost
    assert cost.value == pytest.approx(3.6 / (4.0 * 3600) * 1000)
    assert cost.ci_low == pytest.approx(3.6 / (5.0 * 3600) * 1000) and cost.ci_high == pytest.approx(
        3.6 / (3.2 * 3600) * 1000)
    legacy = serving_run("b", achieved=4.0)  # a number, as reports before the interval had it
    [comp] = compare([("b.json", legacy)], costing=Costing(prices=(parse_price("cpu=3.6"),)))
    assert comp.rows[0].cost.value == pytest.approx(cost.value) and comp.rows[0].cost.ci_low is None


def test_the_capacity_bracket_says_each_sides_confidence():
    from bench.analysis.comparison import CurvePoint
    from bench.analysis.serving import capacity
    from bench.render.words import capacity_text

    pts = [CurvePoint(qps=2, slo_met=True, slo_valid=True), CurvePoint(qps=4, slo_met=False, slo_valid=False)]
    c = capacity(pts)
    assert (c.qps, c.qps_valid, c.below_qps, c.below_valid) == (2, True, 4, False)
    assert capacity_text(c) == "2 requests/s (met the SLO at 99 % confidence; 4 did not, provisionally)"


def test_tail_statements_read_as_the_claim_and_what_it_needs():
    from bench.analysis.serving import tail_notes
    from bench.render.words import note_text

    wm = {"offered_qps": 4.0, "slo.ttft_s": 0.25, "slo.ttft.n": 60, "slo.ttft.over": 0, "slo.ttft.p99_s": 0.212,
          "slo.tpot_s": 0.05, "slo.tpot.n": 500, "slo.tpot.over": 2, "slo.tpot.p99_s": 0.04,
          "slo.e2e_s": 1.0, "slo.e2e.n": 60, "slo.e2e.over": 6, "slo.e2e.p99_s": 1.5}
    texts = [note_text(n) for n in tail_notes("x", wm)]
    assert texts[0] == ("p99 TTFT at 4 requests/s 212 ms ≤ 250 ms, but 60 requests cannot support a p99 claim: "
                        "about 399 more with none over (0 of 60 requests over)")
    assert texts[1].startswith("p99 TPOT at 4 requests/s 40 ms ≤ 50 ms, but 500 requests") and "338 more" in texts[1]  # LoadGen: 836 + 2
    assert texts[2] == "p99 e2e at 4 requests/s 1500 ms > 1000 ms: missed, at 99 % confidence (6 of 60 requests over)"
    assert [n.values["slo"] for n in tail_notes("x", {**wm, "slo.ttft.over": 99})] == ["tpot", "e2e"]  # 99 of 60: nonsense


# ---- vLLM's result JSON ---------------------------------------------------------------------------------------
# the keys vllm/benchmarks/serve.py writes with --save-result --save-detailed (main_async, benchmark) and
# --percentile-metrics ttft,tpot,itl,e2el --metric-percentiles 50,90,99
VLLM_KEYS = {"date", "endpoint_type", "backend", "label", "model_id", "tokenizer_id", "num_prompts", "request_rate",
             "burstiness", "max_concurrency", "duration", "completed", "failed", "total_input_tokens",
             "total_output_tokens", "request_throughput", "request_goodput", "output_throughput",
             "total_token_throughput", "input_lens", "output_lens", "ttfts", "itls", "generated_texts", "errors",
             "max_output_tokens_per_s", "max_concurrent_requests", "latencies", "start_times", "queue_times", "rtfx",
             "bench_unfilled",
             *(f"{s}_{m}_ms" for m in ("ttft", "tpot", "itl", "e2el") for s in ("mean", "median", "std", "p50", "p90",
                                                                                 "p99"))}


def test_a_serving_result_exports_as_vllms_save_result_json():
    from bench.model.report import ServedBy
    from bench.serve.maths.vllm import vllm_results

    r = serving_run("v", ServedBy("http", "bench serve", "http://127.0.0.1:1", "completions", "tiny", True, True))
    res = r.results[0]
    res.params.update(load="gamma:0.5")
    res.workload_metrics["slo.ttft_s"] = 0.15
    res.timing.repeats = res.timing.repeats[:1]
    res.timing.repeats[0].requests = log_of([(0.0, [0.1, 0.2, 0.4], None), (1.0, [1.3, 1.35], None),
                                             (2.0, [2.05], None), (3.0, [], "http_503")],
                                            sent_s=[0.05, 1.0, 2.0, 3.0], session_start_s=0.0)
    [out] = vllm_results([r])
    assert set(out) == VLLM_KEYS
    assert (out["completed"], out["failed"], out["num_prompts"], out["burstiness"]) == (3, 1, 4, 0.5)
    assert out["duration"] == pytest.approx(2.05) and out["request_throughput"] == pytest.approx(3 / 2.05)
    assert out["ttfts"] == pytest.approx([0.05, 0.3, 0.05, 0.0])  # from each request's send, as vLLM measures
    assert out["mean_ttft_ms"] == pytest.approx((50 + 300 + 50) / 3)
    assert out["itls"] == [pytest.approx([0.1, 0.2]), pytest.approx([0.05]), [], []]
    assert out["mean_tpot_ms"] == pytest.approx((150 + 50) / 2) and out["output_lens"] == [3, 2, 1, 0]
    assert out["request_goodput"] == pytest.approx(2 / 2.05)  # TTFT 0.05 and 0.05 meet 150 ms; 0.3 does not
    assert out["errors"] == ["", "", "", "http_503"] and out["max_concurrency"] is None
    assert out["start_times"] == [0.05, 1.0, 2.0, 3.0] and out["queue_times"] == pytest.approx([0.05, 0, 0, 0])
    assert out["latencies"] == pytest.approx([0.35, 0.35, 0.05, 0.0])  # from the send; a failed one 0, as vLLM
    assert out["p99_e2el_ms"] == pytest.approx(float(__import__("numpy").percentile([350, 350, 50], 99)))


# ---- FLOPs on unpadded tokens; bench serve's token ids ------------------------------------------------------
def test_serving_flops_count_real_rows_and_tokens_not_the_padding():
    from workloads.blender_executor import BlenderExecutor
    from bench.serve.protocol import GenRequest
    from conftest import cpu_backend
    from fakes import shape_counting_backend
    from workloads.models import build_blender, decoder_flops, encoder_flops, lm_head_flops

    model = build_blender("tiny").eval()
    cfg, d, n = model.config, model.config.d_model, model.config.decoder_layers
    reqs = [GenRequest("a", tuple(range(5, 25)), 4, 4), GenRequest("b", tuple(range(5, 10)), 4, 4)]

    def expected(steps_done):
        total = 0.0
        for r in reqs:
            s = len(r.prompt)
            if steps_done == 0:
                total += encoder_flops(cfg, 1, s) + n * 4 * s * d * d + decoder_flops(cfg, 1, 1, s, 0) - n * 4 * s * d * d
            else:
                total += decoder_flops(cfg, 1, 1, s, past=steps_done)
            total += lm_head_flops(cfg, 1, 1)
        return total

    for backend in (cpu_backend(threads=1), shape_counting_backend(static_shapes=True)):
        ex = BlenderExecutor(model, backend, max_rows=8, max_source=32, max_tokens=8)
        ex.step(reqs)
        assert ex.last_flops == pytest.approx(expected(0))  # the padded rows and widths are not counted
        ex.step([])
        assert ex.last_flops == pytest.approx(expected(1))
        ex.drop(["a", "b"])


def test_bench_serve_streams_each_chunks_token_ids_when_asked():
    import httpx

    from fakes import codec_of
    from test_api import Sleepy, serving
    from bench.serve.server import make_service
    import time as _time

    service = make_service(Engine(Sleepy(step_s=0.0), _time.monotonic, max_batch=4), codec_of("tiny", 100), "fake",
                           _time.monotonic)
    with serving(service) as url:
        body = {"model": "fake", "prompt": [7, 8, 9], "max_tokens": 3, "min_tokens": 3, "stream": True,
                "return_token_ids": True}
        with httpx.stream("POST", url + "/v1/completions", json=body, timeout=900) as r:
            lines = [x for x in r.iter_lines() if x.startswith("data: {")]
        chunks = [__import__("json").loads(x[6:])["choices"][0] for x in lines]
        assert [c.get("token_ids") for c in chunks] == [[5], [5], [5]]  # the finish rides on the last token's
        assert [c["finish_reason"] for c in chunks] == [None, None, "length"]
        plain = httpx.post(url + "/v1/completions", json={**body, "return_token_ids": False}, timeout=900)
        assert plain.status_code == 200


# ---- what each request is sent, and how the load is shaped --------------------------------------------------
def test_sampling_reaches_each_request_in_process_and_over_http_with_its_own_seed():
    from bench.serve.protocol import Sampling

    plan = ServingPlan((0.0, 0.1, 0.2), prompts(3), (2,) * 3, sampling=Sampling(0.8, 0.9, 40))
    _, ex = serve(plan)
    seen = {r.id: r.sampling for r, _ in ex.rows.values()} | ex.sampled
    assert [seen[str(i)] for i in range(3)] == [Sampling(0.8, 0.9, 40 + i) for i in range(3)]
    _, server = run_scripted(plan, [Reply.tokens([0.01, 0.02]) for _ in range(3)])
    got = sorted((b["temperature"], b["top_p"], b["seed"]) for b in server.bodies)
    assert got == [(0.8, 0.9, 40), (0.8, 0.9, 41), (0.8, 0.9, 42)]
    greedy = ServingPlan((0.0,), prompts(1), (2,))  # the default, as before: greedy, no top_p or seed sent
    _, server = run_scripted(greedy, [Reply.tokens([0.01, 0.02])])
    assert server.bodies[0]["temperature"] == 0.0 and "seed" not in server.bodies[0] and "top_p" not in server.bodies[0]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    """A tokenizer in a local directory, as a server's model ships it (the shipped word-level one, saved)."""
    from transformers import PreTrainedTokenizerFast

    from workloads.data import shipped_tokenizer

    path = tmp_path_factory.mktemp("tokenizer")
    PreTrainedTokenizerFast(tokenizer_object=shipped_tokenizer(), unk_token="[UNK]", pad_token="[PAD]",
                            bos_token="[BOS]", eos_token="[EOS]").save_pretrained(path)
    return str(path)


def test_a_jsonl_prompts_file_is_read_in_order_counted_with_a_local_tokenizer_and_cut_to_the_context(tmp_path,
                                                                                                 tokenizer_dir):
    from bench.serve.prompts import counted, load_tokenizer, read_prompt_file

    f = tmp_path / "prompts.jsonl"
    f.write_text('{"prompt": "i feel so alone"}\n\n{"text": "my dog is sick and i am sad"}\n')
    texts = read_prompt_file(str(f))
    assert texts == ["i feel so alone", "my dog is sick and i am sad"]
    tok = load_tokenizer(tokenizer_dir)
    encode = lambda t: tok.encode(t, add_special_tokens=False)
    ids, kept, cut = counted(texts, 3, encode, tok.decode, context_len=5)
    assert [len(i) for i in ids] == [4, 5, 4] and cut == [8]  # the second cut to its last 5; then the first again
    assert kept[0] == texts[0] and kept[1].startswith("sick and i am") and kept[1] == tok.decode(ids[1])
    calls = []
    counted(texts, 1000, lambda t: calls.append(t) or encode(t), tok.decode, context_len=5)
    assert len(calls) == 2  # each line encoded once, however often a long session sends it
    f.write_text('{"prompt": ""}\n')
    with pytest.raises(ConfigError, match=":1: expected an object with a non-empty string"):
        read_prompt_file(str(f))
    f.write_bytes(b'\xef\xbb\xbf{"prompt": "with a BOM"}\n')  # a Windows editor's byte order mark
    assert read_prompt_file(str(f)) == ["with a BOM"]
    from bench.serve.arrivals import read_arrivals

    f.write_bytes(b"\xef\xbb\xbf0.5 7\n1.0 3\n")  # every file bench reads: an arrivals file too, and a vLLM result
    assert read_arrivals(str(f)) == ([0.5, 1.0], [7, 3])
    f.write_bytes(b'\xef\xbb\xbf{"start_times": [2.0, 2.5], "input_lens": [4, 5]}')
    assert read_arrivals(str(f)) == ([0.0, 0.5], [4, 5])
    f.write_text('{"prompt": "ok"}\n{"prompt": "a \\ud800 b"}\n')  # valid JSON, not text: refused before any work
    with pytest.raises(ConfigError, match=r":2: not text a server can be sent \(a lone surrogate, '\\ud800', at "
                                          r"character 3\)"):
        read_prompt_file(str(f))
    with pytest.raises(ConfigError, match="not a directory"):
        load_tokenizer(str(tmp_path / "nowhere"))


def test_synthetic_prompts_have_the_drawn_lengths_in_the_tokenizers_own_tokens(tokenizer_dir):
    from bench.serve.prompts import input_lengths, load_tokenizer, synthetic_texts

    assert input_lengths("fixed:7", 3, 32, seed=0) == [7, 7, 7]
    drawn = input_lengths("normal:12:4", 200, 16, seed=1)
    assert drawn == input_lengths("normal:12:4", 200, 16, seed=1) and 1 <= min(drawn) and max(drawn) == 16
    assert 10 < statistics.mean(drawn) < 13  # 12, less what the cap at --context-len 16 takes off
    assert all(8 <= k <= 32 for k in input_lengths("uniform", 50, 32, seed=0))
    tok = load_tokenizer(tokenizer_dir)
    ids, texts = synthetic_texts(tok, [3, 9, 16], seed=0)
    assert [len(tok.encode(t, add_special_tokens=False)) for t in texts] == [3, 9, 16] == [len(i) for i in ids]
    assert not any(i < 4 for i in sum(ids, []))  # no padding, start, end or unknown token


def test_bench_token_ids_to_a_server_not_bench_are_warned_of_and_recorded(monkeypatch):
    from bench.serve import remote

    monkeypatch.setattr(remote, "probe", lambda url, key: {"models": ["llama"], "owner": "vllm", "server": "vllm"})

    def connect(api, text, serves=None):
        result = types.SimpleNamespace(params={}, warnings=[], served_by=None)
        result.warn = lambda code, message: result.warnings.append((code, message))
        m = types.SimpleNamespace(result=result, wl=types.SimpleNamespace(text_prompts=text,
                                                                          common=types.SimpleNamespace(model="tiny")))
        o = types.SimpleNamespace(endpoint="http://10.1.2.3:8000", api_key=lambda: None, endpoint_model=None,
                                  endpoint_serves=serves, api=api, request_timeout_s=60.0)
        e = remote.connect(m, o)
        return [code for code, _ in result.warnings if code != "no_server_telemetry"], e

    codes, e = connect("completions", text=False)
    assert codes == ["prompts_as_ids"] and not e.text
    assert connect("completions", text=True)[0] == [] and connect("completions", text=True)[1].text
    assert connect("chat", text=False)[0] == [] and connect("completions", False, serves="tiny")[0] == []


class Counting(ScriptedServer):
    """The scripted server, counting the requests it holds at once."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.now = self.most = 0

    async def handle(self, request):
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            return await super().handle(request)
        finally:
            self.now -= 1


def test_a_concurrency_cap_holds_at_any_rate_and_a_waiting_requests_ttft_counts_from_its_arrival():
    from bench.serve.maths import records as rec

    n = 9
    plan = ServingPlan((0.0,) * n, prompts(n), (3,) * n, max_concurrency=2)  # a burst: every request at once
    clock = VirtualClock(T0)
    server = Counting(clock, {p: Reply.tokens([0.1, 0.2, 0.3]) for p in plan.prompts})
    traces = session_against(server, plan, clock)
    assert server.most == 2 and all(t.error is None and t.new_tokens == 3 for t in traces)
    finishes = sorted(t.finish_s for t in traces)
    for i, t in enumerate(sorted(traces, key=lambda t: t.ready_s)):  # the third sent once the first ended, ...
        assert t.ready_s == T0 if i < 2 else t.ready_s >= finishes[i - 2]
        assert t.arrival_s == T0 and t.sent_s >= t.ready_s  # its arrival stays when it was scheduled
    log = request_log(traces, session_start_s=T0)
    for r in rec.records(log):  # TTFT from the arrival: the wait for a slot included, as a user waits
        assert rec.ttft(r) == pytest.approx(rec.waited(r) + rec.ttft(r, "sent"))
    assert max(rec.waited(r) for r in rec.records(log)) >= 0.9  # the last waited for three replies at least
    in_process, ex = serve(ServingPlan(tuple(i * 0.001 for i in range(n)), prompts(n), (3,) * n, max_concurrency=3),
                           max_batch=8)
    assert max(len(rows) for rows, _ in ex.log) == 3 and all(t.finish_s for t in in_process)


def test_requests_that_end_together_each_free_a_slot_for_the_next_waiting():
    """Under a cap of 2, four requests at 0: the first two end in one wait (at 1.0 and 1.5); the third was ready at
    1.0 and the fourth at 1.5 (only the first end was taken, and the fourth read ready at its arrival: its wait for
    a slot counted as the generator's lateness)."""
    from bench.serve.loads import Schedule

    plan = ServingPlan((0.0,) * 4, prompts(4), (3,) * 4, max_concurrency=2)
    schedule = Schedule(plan, 0.0, None)
    first = list(schedule.due(0.0))
    assert [t.ready_s for _, t, _ in first] == [0.0, 0.0]
    for (request, trace, _), end in zip(first, (1.0, 1.5), strict=True):
        trace.finish_s = end
        schedule.ended(request.id, 2.0)
    assert [t.ready_s for _, t, _ in schedule.due(2.0)] == [1.0, 1.5]


def test_a_burst_sends_every_request_at_the_start_with_no_rate():
    load = parse_load("burst")
    assert load.open and not load.rated and open_arrivals(load, None, 4, seed=0) == [0.0] * 4
    with pytest.raises(ConfigError):
        parse_load("burst:2")


def test_a_vllm_results_sends_are_read_as_arrivals_and_bench_export_replays_as_it_was_sent(tmp_path):
    import json

    from bench.model.report import ServedBy
    from bench.serve.arrivals import read_arrivals
    from bench.serve.maths.vllm import vllm_results

    f = tmp_path / "vllm.json"
    # vLLM's perf_counter seconds; the third waited 0.5 s for a --max-concurrency slot: it arrived at 1000.6
    f.write_text(json.dumps({"start_times": [1000.0, 1000.25, 1001.1], "queue_times": [0.0, 0.0, 0.5],
                             "input_lens": [12, 30, 7], "ttfts": [0.1, 0.1, 0.1]}))
    offsets, lens = read_arrivals(str(f))
    assert offsets == pytest.approx([0.0, 0.25, 0.6]) and lens == [12, 30, 7]
    f.write_text(json.dumps({"start_times": [2.0, 1.0], "input_lens": [5, 6]}))  # no queue_times: sent as arrived
    assert read_arrivals(str(f)) == (pytest.approx([0.0, 1.0]), [6, 5])  # in arrival order
    f.write_text(json.dumps({"input_lens": [5]}))
    with pytest.raises(ConfigError, match="start_times"):
        read_arrivals(str(f))
    r = serving_run("v", ServedBy("http", "bench serve", "http://127.0.0.1:1", "completions", "tiny", True, True))
    res = r.results[0]
    res.timing.repeats = res.timing.repeats[:1]
    res.timing.repeats[0].requests = log_of([(0.0, [0.1], None), (0.5, [0.7], None)], sent_s=[0.0, 0.5],
                                            session_start_s=0.0)
    f.write_text(json.dumps(vllm_results([r])[0]))
    assert read_arrivals(str(f))[0] == pytest.approx([0.0, 0.5])
    res.params = {**res.params, "qps": None, "arrivals": "abc123"}  # a replay: no one rate, not vLLM's "inf" burst
    out = vllm_results([r])[0]
    assert out["request_rate"] is None and "request_rate" in out["bench_unfilled"]
    res.params = {**res.params, "arrivals": None, "load": "burst"}
    assert vllm_results([r])[0]["request_rate"] == "inf"


def test_events_that_arrive_in_one_read_are_stamped_each_as_it_is_parsed():
    from bench.serve.http import StreamReader

    ticks = iter(range(1, 100))
    reader = StreamReader(Trace("0", T0), chat=False, asked=4, clock=lambda: float(next(ticks)))

    def event(i, finish=None):
        return b"data: " + __import__("json").dumps({"choices": [{"index": 0, "text": f" w{i}", "token_ids": [i],
                                                                   "finish_reason": finish}]}).encode() + b"\n\n"

    assert not reader.feed(event(10) + event(11) + event(12)[:9])  # three events in one read, the last cut
    assert reader.trace.token_s == [1.0, 2.0]  # a stamp each, not one for the read
    assert reader.feed(event(12)[9:] + b": keep-alive\n\n" + event(13, "length") + b"data: [DONE]\n\n")
    assert reader.trace.token_s == [1.0, 2.0, 3.0, 4.0] and reader.trace.tokens == [10, 11, 12, 13]
    assert reader.trace.finish_s == 4.0 and reader.trace.new_tokens == 4


def test_the_http_clients_stamps_are_read_on_its_own_thread_not_the_schedules():
    import threading

    class Where(VirtualClock):
        def __init__(self, start):
            super().__init__(start)
            self.threads = set()

        def __call__(self):
            self.threads.add(threading.current_thread().name)
            return super().__call__()

    plan = ServingPlan((0.0, 0.05), prompts(2), (3, 3))
    clock = Where(T0)
    keys = list(plan.prompts)
    server = ScriptedServer(clock, {k: Reply.tokens([0.01, 0.02, 0.03]) for k in keys},
                            [(T0 + a, k) for a, k in zip(plan.arrivals, keys, strict=True)])
    with server as url:
        client = server.client = Recording(Endpoint(url, "completions", "fake"), clock, clock.sleep)
        try:
            clock.threads.clear()
            traces = run_session(plan, client, clock)
        finally:
            client.close()
    assert all(len(t.token_s) == 3 for t in traces) and "bench-http" in clock.threads
    assert threading.current_thread().name in clock.threads  # the schedule's own reads, on the caller's thread


# ---- end to end ------------------------------------------------------------------------------------------------
def _run(capsys, tmp_path, name, *args):
    from bench import cli
    from bench.model.io import load_report

    out = tmp_path / name
    code = cli.cli(["run", "--device", "cpu", "--preset", "tiny", "--workload", "blender-serve", "--repeats", "1",
                    "--in-process", "--sample-hz", "0", "--threads", "1", "--out", str(out), *map(str, args)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return load_report(next(out.glob("*.json"))), captured.out


@pytest.mark.slow
def test_engine_http_starts_bench_serve_loads_it_and_stops_it(capsys, tmp_path):
    import psutil

    from bench import cli

    report, shown = _run(capsys, tmp_path, "http", "--engine", "http", "--qps", "8", "--requests", "24",
                         "--slo-tpot-ms", "500")
    [r] = report.results
    s, log = r.served_by, r.timing.repeats[0].requests
    assert s.engine == "http" and s.server == "bench serve" and s.started_by_run and s.local
    assert s.endpoint.startswith("http://127.0.0.1:") and s.model == "tiny" and r.params["model"] == "tiny"
    assert all(f is not None for f in log.finish_s) and log.new_tokens == [8] * 24
    assert all(len(t) == 8 for t in log.token_s) and log.error == [None] * 24 and log.start_s == [None] * 24
    assert r.workload_metrics["itl_s"].n == 24 * 7 and r.workload_metrics["tpot_s"].n == 24
    assert "served by http://127.0.0.1:" in shown and "p99 TPOT" in shown
    assert not [p for p in psutil.Process().children(recursive=True) if "serve" in " ".join(p.cmdline())]
    inproc, _ = _run(capsys, tmp_path, "inproc", "--qps", "8", "--requests", "24")
    assert inproc.results[0].timing.repeats[0].requests.arrival_s[5] - inproc.results[0].timing.repeats[
        0].requests.session_start_s == pytest.approx(log.arrival_s[5] - log.session_start_s)  # the same arrivals
    capsys.readouterr()
    cli.cli(["compare", str(next((tmp_path / "inproc").glob("*.json"))), str(next((tmp_path / "http").glob("*.json"))),
             "--width", "250", "--verbose"])  # every note in full
    out = capsys.readouterr().out
    assert "served otherwise (engine: 'http' vs 'in-process')" in " ".join(out.split())


@pytest.mark.slow
def test_any_openai_server_is_loaded_open_closed_and_in_conversations(capsys, tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), COLUMNS="300")
    proc = subprocess.Popen([sys.executable, "-m", "bench", "serve", "--device", "cpu", "--preset", "tiny", "--port",
                             "0", "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    try:
        url = next(line.split("listening on ")[1].split()[0] for line in proc.stdout if "listening on " in line)
        report, _ = _run(capsys, tmp_path, "open", "--endpoint", url, "--qps", "10", "--requests", "20",
                         "--load", "gamma:0.5", "--output-len", "eos")
        [r] = report.results
        log = r.timing.repeats[0].requests
        # bench serve says which model it serves: the result compares with the in-process engine on it
        assert r.served_by.server == "bench" and not r.served_by.started_by_run and r.params["model"] == "tiny"
        assert r.params["load"] == "gamma:0.5" and log.new_tokens != [8] * 20 and all(log.finish_s)
        assert max(log.arrival_s) - log.session_start_s == pytest.approx(20 / 10)  # rescaled: the last at N / rate
        closed, _ = _run(capsys, tmp_path, "closed", "--endpoint", url, "--load", "concurrency:3", "--requests", "12")
        c = closed.results[0]
        assert c.params["load"] == "concurrency:3" and c.params["qps"] is None and c.workload_metrics["errors"] == 0
        talk, _ = _run(capsys, tmp_path, "talk", "--endpoint", url, "--api", "chat", "--qps", "5", "--conversations",
                       "3", "--turns", "2", "--think-time-s", "0.05")
        t = talk.results[0]
        tlog = t.timing.repeats[0].requests
        assert tlog.turn == [0, 1] * 3 and all(tlog.finish_s) and t.served_by.api == "chat"
        assert all(tlog.prompt_tokens[i + 1] > tlog.prompt_tokens[i] for i in (0, 2, 4))  # the dialogue grows
        wm = t.workload_metrics
        assert wm["offered_qps"] is None and wm["offered_conversations_per_s"] == 5.0  # turns follow answers
    finally:
        proc.terminate()
        proc.wait(900)
