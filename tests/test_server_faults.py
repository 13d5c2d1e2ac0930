"""One request never breaks the server: a temperature that would overflow the logits is greedy, the
sampler never sees a distribution that is not finite, and a fault inside a step (the executor's join,
its decode, the sampler, logits that are not finite) fails only the requests it must — each of them
answered, the joiners of the failing step included — while the server goes on serving.

Faults are placed deterministically: on requests whose prompt starts with MARK, or by a fake executor
told to fail its next steps."""

from __future__ import annotations

import json
import math
import time

import pytest

from bench.serve.engine import Engine
from bench.serve.loop import FAILING_STEPS, EngineLoop
from bench.serve.protocol import GenRequest, Sampling
from bench.serve.server import make_service
from conftest import cpu_backend
from fakes import FakeExecutor, VirtualClock, codec_of, lively_tiny
from test_api import HANG_S, client, serving, wait_for
from workloads import blender_executor
from workloads.blender_executor import BlenderExecutor, sample

MARK = 77  # a prompt that starts with this id meets the fault


class Faulty(BlenderExecutor):
    """The real executor, with `fault` placed on the marked requests: `join` (its encoder pass raises),
    `decode` (the decode step holding it raises), `nan`, `inf` or `neg_inf` (its row of logits: NaN,
    one +inf, every logit -inf)."""

    fault: str | None = None
    gate = None  # a threading.Event: a step without a marked row, once a row has 2 tokens, waits for it

    def _join(self, requests):
        if self.fault == "join" and any(r.prompt[0] == MARK for r in requests):
            raise RuntimeError("injected fault in the join")
        return super()._join(requests)

    def _logits(self, rows, width, length, tokens, positions, suppress):
        logits = super()._logits(rows, width, length, tokens, positions, suppress)
        marked = [i for i, row in enumerate(self.slots[:rows]) if row is not None and row.request.prompt[0] == MARK]
        if not marked and self.gate is not None and any(row is not None and row.pos >= 2 for row in self.slots):
            self.gate.wait(HANG_S)
        if marked and self.fault == "decode":
            raise RuntimeError("injected fault in the decode")
        if marked and self.fault in ("nan", "inf", "neg_inf"):
            if self.fault == "inf":
                logits[marked, 7] = math.inf
            else:
                logits[marked] = math.nan if self.fault == "nan" else -math.inf
        return logits


@pytest.fixture(scope="module")
def faulty():
    executor = Faulty(lively_tiny(), cpu_backend(threads=1), max_rows=4, max_source=32, max_tokens=64)
    engine = Engine(executor, time.monotonic, max_batch=4, max_waiting=64)
    with serving(make_service(engine, codec_of("tiny", 1000), "tiny", time.monotonic)) as url:
        yield executor, url


@pytest.fixture
def fault(faulty, monkeypatch):
    executor, url = faulty

    def place(kind):
        executor.fault = kind
        if kind == "sample":  # the sampler raises for the marked requests (sampled ones: temperature > 0)
            real = blender_executor.sample

            def raising(logits_row, sampling, generator):
                if sampling.seed == MARK:
                    raise RuntimeError("injected fault in sampling")
                return real(logits_row, sampling, generator)

            monkeypatch.setattr(blender_executor, "sample", raising)

    yield place
    executor.fault = None


def post(url, body):
    import httpx

    return httpx.post(url + "/v1/completions", json={"model": "tiny", **body}, timeout=HANG_S)


def normal_answer(url):
    r = post(url, {"prompt": [5, 6, 7], "max_tokens": 6, "min_tokens": 6})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 6, r.text
    import httpx

    assert httpx.get(url + "/health", timeout=HANG_S).json()["status"] == "ok"


# -- the class-1 request and its kin: temperatures that overflow, logits that are huge --------------------------
@pytest.mark.parametrize("temperature", [1e-39, 5e-324, 1e-30, 9.9e-6])
def test_a_temperature_too_small_to_divide_by_is_greedy_and_the_server_goes_on(faulty, temperature):
    _, url = faulty
    greedy = post(url, {"prompt": [9, 10, 11], "max_tokens": 8, "min_tokens": 8, "temperature": 0})
    tiny_t = post(url, {"prompt": [9, 10, 11], "max_tokens": 8, "min_tokens": 8, "temperature": temperature})
    assert tiny_t.status_code == 200, tiny_t.text
    assert tiny_t.json()["choices"][0]["text"] == greedy.json()["choices"][0]["text"]
    normal_answer(url)


def test_the_smallest_sampled_temperature_samples_a_finite_distribution(faulty):
    _, url = faulty
    r = post(url, {"prompt": [9, 10, 11], "max_tokens": 8, "min_tokens": 8, "temperature": 1e-5, "seed": 3})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 8
    assert Sampling(1e-5).greedy is False and Sampling(0.99e-5).greedy is True


@pytest.mark.parametrize("row", [
    [3.0e38, -3.0e38, 1.0, 0.0],  # a spread that overflows float32 once shifted
    [1e30, 1e30 - 1e24, -1e30, 5.0],  # huge logits
    [-math.inf, 2.0, -math.inf, 1.0],  # masked tokens (min_tokens' EOS)
    [-1e-45, 0.0, 1e-45, -3e-39],  # subnormals
])
@pytest.mark.parametrize("temperature", [1e-5, 0.5, 2.0])
def test_the_sampler_draws_from_a_finite_distribution_whatever_the_logits(row, temperature):
    import torch

    logits = torch.tensor(row, dtype=torch.float32)
    for seed in range(5):
        token = sample(logits, Sampling(temperature, 0.9, seed), torch.Generator().manual_seed(seed))
        assert 0 <= token < len(row) and math.isfinite(float(logits[token]))
    with pytest.raises(ValueError, match="largest logit"):
        sample(torch.tensor([math.nan, 1.0]), Sampling(1.0), torch.Generator())


# -- a fault inside a step: only what it must fails, every one of them answered, the server goes on ---------
STEP_FAULTS = ["join", "decode", "sample", "nan", "inf", "neg_inf"]


@pytest.mark.parametrize("kind", STEP_FAULTS)
def test_a_fault_in_a_step_fails_its_request_with_a_500_and_the_next_request_is_served(faulty, fault, kind):
    _, url = faulty
    fault(kind)
    marked = {"prompt": [MARK, 6, 7], "max_tokens": 6, "min_tokens": 6, "temperature": 0.7, "seed": MARK}
    whole = post(url, marked)
    assert whole.status_code == 500, whole.text
    err = whole.json()["error"]
    assert err["type"] == "server_error" and set(err) == {"message", "type", "param", "code"}
    streamed = post(url, {**marked, "stream": True})
    events = [line[6:] for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and json.loads(events[-2])["error"]["type"] == "server_error"
    normal_answer(url)  # the fault still placed: an unmarked request is served whole


@pytest.mark.parametrize("kind", ["decode", "nan"])
def test_a_request_decoding_beside_a_faulty_one_fails_only_where_the_step_itself_failed(faulty, fault, kind):
    """The step that raises (decode) takes its rows with it; a row that alone has no token (NaN) does not.
    The long request is held at its third token until the faulty one waits, so that both share a step."""
    import asyncio
    import threading

    import httpx
    import openai

    executor, url = faulty
    fault(kind)
    executor.gate = threading.Event()

    async def both():
        c = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=HANG_S)
        long = await c.completions.create(model="tiny", prompt=[5, 6], max_tokens=60, stream=True,
                                          extra_body={"min_tokens": 60})
        chunks = aiter(long)
        await anext(chunks)  # it decodes
        bad = asyncio.create_task(c.completions.create(model="tiny", prompt=[MARK, 6], max_tokens=4))
        async with httpx.AsyncClient(base_url=url, timeout=HANG_S) as h:
            while "bench_requests_waiting 1.0" not in (await h.get("/metrics")).text:
                await asyncio.sleep(0.02)
        executor.gate.set()
        try:
            async for _ in chunks:
                pass
            survived = True
        except openai.APIError:
            survived = False
        with pytest.raises(openai.InternalServerError):
            await bad
        return survived

    try:
        assert asyncio.run(both()) is (kind == "nan")
    finally:
        executor.gate = None
    normal_answer(url)


def test_the_joiners_of_a_failing_step_are_answered_and_the_waiting_ones_served_after():
    clock = VirtualClock()
    ex = FakeExecutor(clock)
    engine = Engine(ex, clock, max_batch=2)
    for rid in "abc":
        engine.submit(GenRequest(rid, (5,), 4))
    real = ex.step
    ex.step = lambda joining: (_ for _ in ()).throw(RuntimeError("device lost"))
    with pytest.raises(RuntimeError):
        engine.step()  # a and b joined in it; c waits
    events = engine.recover("RuntimeError: device lost")
    assert sorted((e.request, e.reason, e.detail) for e in events) == [
        ("a", "error", "RuntimeError: device lost"), ("b", "error", "RuntimeError: device lost")]
    assert ex.resets == 1 and engine.running == 0 and engine.waiting == 1
    ex.step = real
    while engine.waiting or engine.running:
        record = engine.step()
    assert [(e.request, e.reason) for e in record.events if e.kind == "finish"] == [("c", "length")]


def test_a_row_the_executor_gives_no_token_fails_alone():
    clock = VirtualClock()

    class OneRowFails(FakeExecutor):
        def step(self, joining):
            out = super().step(joining)
            self.last_failed = {"b": "the model's logits for this request are not finite"}
            return {rid: t for rid, t in out.items() if rid != "b"}

    ex = OneRowFails(clock)
    engine = Engine(ex, clock, max_batch=4)
    for rid in "ab":
        engine.submit(GenRequest(rid, (5,), 3))
    record = engine.step()
    assert [(e.request, e.reason) for e in record.events if e.kind == "finish"] == [("b", "error")]
    assert engine.running == 1 and "b" in ex.dropped


class Flaky(FakeExecutor):
    """The fake executor in real time; `failing` steps in a row raise, then it recovers."""

    def __init__(self):
        super().__init__(type("C", (), {"t": 0.0})(), per_step_s=0, per_row_s=0)
        self.failing = 0

    def step(self, joining):
        if self.failing:
            self.failing -= 1
            raise RuntimeError("device hiccup")
        return super().step(joining)


def test_the_health_says_failing_after_several_failed_steps_in_a_row_and_ok_after_one_succeeds():
    import httpx

    ex = Flaky()
    service = make_service(Engine(ex, time.monotonic, max_batch=2), codec_of("tiny", 100), "fake", time.monotonic)
    with serving(service) as url:
        ex.failing = FAILING_STEPS
        for _ in range(FAILING_STEPS):
            r = httpx.post(url + "/v1/completions", json={"model": "fake", "prompt": [5], "max_tokens": 3},
                           timeout=HANG_S)
            assert r.status_code == 500 and "device hiccup" in r.json()["error"]["message"]
        health = httpx.get(url + "/health", timeout=HANG_S)
        assert health.status_code == 503 and health.json()["status"] == "failing"
        assert health.json()["failed_steps"] == FAILING_STEPS and "device hiccup" in health.json()["reason"]
        assert client(url).completions.create(model="fake", prompt=[5], max_tokens=3).usage.completion_tokens == 3
        assert httpx.get(url + "/health", timeout=HANG_S).json()["status"] == "ok"


def test_an_executor_that_cannot_reset_its_rows_fails_the_server_for_good_and_says_why():
    import httpx

    class NoReset(Flaky):
        reset = None

    ex = NoReset()
    service = make_service(Engine(ex, time.monotonic, max_batch=2), codec_of("tiny", 100), "fake", time.monotonic)
    with serving(service) as url:
        ex.failing = 1
        r = httpx.post(url + "/v1/completions", json={"model": "fake", "prompt": [5]}, timeout=HANG_S)
        assert r.status_code == 500
        health = httpx.get(url + "/health", timeout=HANG_S)
        assert health.status_code == 503 and health.json()["status"] == "failed"
        assert "reset" in health.json()["reason"]
        again = httpx.post(url + "/v1/completions", json={"model": "fake", "prompt": [5]}, timeout=HANG_S)
        assert again.status_code == 503 and again.json()["error"]["code"] == "engine_failed"


def test_a_watcher_that_raises_fails_the_server_loudly_instead_of_hanging_its_requests():
    clock = VirtualClock()

    class Broken:
        def on_submit(self, request): ...

        def on_step(self, record):
            raise KeyError("bug")

    loop = EngineLoop(Engine(FakeExecutor(clock), clock, max_batch=2), clock, [Broken()])
    got = []
    loop.start()
    try:
        loop.submit(GenRequest("a", (5,), 2), got.extend)
        wait_for(lambda: got, "an answer")
    finally:
        loop.stop(HANG_S)
    assert got[-1].reason == "error" and "KeyError" in loop.failure


# -- the session's records: one that could not be finished is closed, one that is not valid is left out ------
def test_records_left_open_are_closed_and_one_bad_record_does_not_take_the_session_with_it():
    from bench.model.fields import parse, plain
    from bench.model.report import Repeat, RequestLog, Result
    from bench.serve.loop import Recorder
    from bench.serve.protocol import Event, StepRecord

    rec = Recorder(limit=10)
    for rid in ("done", "open", "joined", "bad"):
        rec.on_submit(GenRequest(rid, (5, 6), 4, arrival_s=10.0))
    events = [Event("done", "start", 11.0), Event("done", "token", 12.0, token=5),
              Event("done", "finish", 12.0, reason="length"), Event("open", "token", 12.0, token=5),
              Event("joined", "start", 11.0), Event("bad", "token", 9.0, token=5),  # before its arrival
              Event("bad", "finish", 9.5, reason="stop")]
    rec.on_step(StepRecord(0, 11.0, 12.0, 2, 2, 1, events))
    repeat, result = Repeat(0), Result(workload="blender-serve", status="ok")
    rec.fill(repeat, result)
    log = parse(RequestLog, plain(repeat.requests))  # the report's model takes it
    assert log.error == [None, "server_stopped", "server_stopped"] and log.new_tokens == [1, 1, 0]
    [warning] = [w.message for w in result.warnings]
    assert warning.startswith("1 request records are not valid and were left out") and "first_token_s" in warning
