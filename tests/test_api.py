"""The OpenAI-compatible server: the openai client and curl talk to it, streaming and not; 64
concurrent requests get exactly the tokens they asked for; a client that disconnects frees its row;
hostile bodies get 4xx and nothing breaks; a full queue answers 429; a failed engine says so.

Servers bind 127.0.0.1 on a free port, run in a thread of the test process and are always stopped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
import types

import pytest

from bench.serve.engine import Engine
from bench.serve.server import make_service
from bench.serve.text import PLACEHOLDER
from conftest import cpu_backend
from fakes import FakeExecutor, codec_of, lively_tiny
from workloads.blender_executor import BlenderExecutor

HANG_S = 900  # a hang guard only


@contextlib.contextmanager
def serving(service):
    """The app on 127.0.0.1:<free port> in a thread; yields its base URL; always stopped."""
    import uvicorn

    from bench.serve.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(service), log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    service.loop.start()
    thread.start()
    try:
        deadline = time.monotonic() + HANG_S
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(HANG_S)
        service.loop.stop()
        sock.close()


def metric(url: str, name: str, labels: dict | None = None) -> float:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url + "/metrics", timeout=HANG_S).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and (labels is None or s.labels == labels):
                return s.value
    return 0.0


def wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + HANG_S
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.fixture(scope="module")
def tiny_url():
    executor = BlenderExecutor(lively_tiny(), cpu_backend(threads=1), max_rows=8, max_source=32, max_tokens=64)
    engine = Engine(executor, time.monotonic, max_batch=8, max_waiting=256)
    with serving(make_service(engine, codec_of("tiny", 1000), "tiny", time.monotonic)) as url:
        yield url


class Sleepy(FakeExecutor):
    """The fake executor in real time: each step sleeps; after `fail_after` steps it raises."""

    def __init__(self, step_s=0.005, fail_after=None):
        super().__init__(types.SimpleNamespace(t=0.0), per_step_s=0, per_row_s=0)
        self.step_s, self.fail_after, self.n = step_s, fail_after, 0

    def step(self, joining):
        self.n += 1
        if self.fail_after is not None and self.n > self.fail_after:
            raise RuntimeError("device lost")
        time.sleep(self.step_s)
        return super().step(joining)


def fake_server(**engine):
    ex = Sleepy(**{k: engine.pop(k) for k in ("step_s", "fail_after") if k in engine})
    service = make_service(Engine(ex, time.monotonic, **engine), codec_of("tiny", 100), "fake", time.monotonic)
    return serving(service)


def client(url):
    import openai

    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=HANG_S)


# -- the openai client -----------------------------------------------------------------------------------
def test_the_openai_client_gets_completions_with_exact_usage(tiny_url):
    c = client(tiny_url)
    r = c.completions.create(model="tiny", prompt="i feel so alone these days", max_tokens=7,
                             extra_body={"min_tokens": 7})
    assert r.usage.completion_tokens == 7 and r.usage.prompt_tokens == 6 and r.usage.total_tokens == 13
    assert r.choices[0].finish_reason == "length" and r.object == "text_completion"
    ids = c.completions.create(model="tiny", prompt=[5, 6, 7, 999], max_tokens=4, temperature=0,
                               extra_body={"ignore_eos": True})
    assert ids.usage.prompt_tokens == 4 and ids.usage.completion_tokens == 4
    chat = c.chat.completions.create(model="tiny", messages=[{"role": "system", "content": "be kind"},
                                                             {"role": "user", "content": "i lost my job"}],
                                     max_tokens=6, temperature=0, extra_body={"min_tokens": 6})
    assert chat.usage.completion_tokens == 6 and chat.choices[0].message.role == "assistant"
    assert [m.id for m in c.models.list().data] == ["tiny"]


def test_streaming_sends_a_chunk_per_token_and_the_same_text_as_a_whole_answer(tiny_url):
    c = client(tiny_url)
    messages = [{"role": "user", "content": "my children ask me when we can go home"}]
    chunks = list(c.chat.completions.create(model="tiny", messages=messages, max_tokens=9, temperature=0,
                                            stream=True, stream_options={"include_usage": True},
                                            extra_body={"min_tokens": 9}))
    role, tokens = chunks[0].choices[0].delta, chunks[1:-1]  # as OpenAI and vLLM: a role-only chunk first
    assert role.role == "assistant" and role.content == "" and len(tokens) == 9
    assert [ch.choices[0].finish_reason for ch in tokens] == [None] * 8 + ["length"]  # on the last token's chunk
    assert chunks[-1].usage.completion_tokens == 9 and not chunks[-1].choices
    whole = c.chat.completions.create(model="tiny", messages=messages, max_tokens=9, temperature=0,
                                      extra_body={"min_tokens": 9})
    assert "".join(ch.choices[0].delta.content for ch in tokens) == whole.choices[0].message.content
    assert PLACEHOLDER.format("")[:5] in whole.choices[0].message.content  # ids the shipped tokenizer lacks


def test_seeded_sampling_over_the_api_repeats(tiny_url):
    c = client(tiny_url)

    def text(seed):
        return c.completions.create(model="tiny", prompt=[9, 10, 11], max_tokens=12, temperature=0.9, seed=seed,
                                    extra_body={"min_tokens": 12}).choices[0].text

    assert text(3) == text(3)


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl here")
def test_curl_streams_token_chunks_and_done(tiny_url):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "i am scared"}], "stream": True,
            "max_tokens": 5, "min_tokens": 5}
    curl = ["curl", "-sN", "--max-time", str(HANG_S), "-H", "Content-Type: application/json"]
    out = subprocess.run([*curl, tiny_url + "/v1/chat/completions", "-d", json.dumps(body)], capture_output=True,
                         text=True, timeout=HANG_S, check=True).stdout
    events = [line[len("data: "):] for line in out.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""} and len(chunks) == 6
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    plain = subprocess.run([*curl, tiny_url + "/v1/completions", "-d",
                            json.dumps({"model": "tiny", "prompt": "hello", "max_tokens": 3})],
                           capture_output=True, text=True, timeout=HANG_S, check=True).stdout
    assert json.loads(plain)["usage"]["completion_tokens"] <= 3
    # `-d` alone sends a form (application/x-www-form-urlencoded): a 400 saying what to send, as vLLM answers it
    form = subprocess.run(["curl", "-s", "--max-time", str(HANG_S), tiny_url + "/v1/completions", "-d",
                           json.dumps({"model": "tiny", "prompt": "hello"})], capture_output=True, text=True,
                          timeout=HANG_S, check=True).stdout
    assert "Content-Type: application/json" in json.loads(form)["error"]["message"]


def test_sixty_four_concurrent_requests_all_get_exactly_their_tokens(tiny_url):
    import openai

    async def main():
        c = openai.AsyncOpenAI(base_url=tiny_url + "/v1", api_key="unused", max_retries=0, timeout=HANG_S)

        async def one(i):
            n = 1 + i % 13
            args = dict(model="tiny", prompt=[4 + i, 5 + i, 6], max_tokens=n, extra_body={"min_tokens": n})
            if i % 2:
                stream = await c.completions.create(stream=True, **args)
                return n, sum([1 async for ch in stream if ch.choices])
            return n, (await c.completions.create(**args)).usage.completion_tokens

        return await asyncio.gather(*(one(i) for i in range(64)))

    results = asyncio.run(main())
    assert [n for n, got in results] == [got for n, got in results]
    assert metric(tiny_url, "bench_requests_running") == 0


# -- clients that leave, queues that fill, engines that fail --------------------------------------------
def test_a_client_that_disconnects_frees_its_row():
    import httpx

    with fake_server(max_batch=1, step_s=0.01) as url:
        body = {"model": "fake", "prompt": [5, 6], "max_tokens": 500, "stream": True}
        with httpx.stream("POST", url + "/v1/completions", json=body, timeout=HANG_S) as r:
            lines = r.iter_lines()
            assert next(lines).startswith("data: ")
        wait_for(lambda: metric(url, "bench_requests_total", {"finish_reason": "cancelled"}) == 1, "stream cancelled")
        # a client that sends a whole request and hangs up without reading the answer
        raw = json.dumps({"model": "fake", "prompt": [5, 6], "max_tokens": 500}).encode()
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=HANG_S) as s:
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (len(raw), raw))
            wait_for(lambda: metric(url, "bench_requests_running") == 1, "request running")
        wait_for(lambda: metric(url, "bench_requests_total", {"finish_reason": "cancelled"}) == 2, "call cancelled")
        assert metric(url, "bench_requests_running") == 0
        r = client(url).completions.create(model="fake", prompt=[5], max_tokens=3)  # the row is free again
        assert r.usage.completion_tokens == 3


def test_a_full_queue_answers_429_and_drains():
    import httpx

    with fake_server(max_batch=1, max_waiting=1, step_s=0.01) as url:
        long = {"model": "fake", "prompt": [5], "max_tokens": 300, "stream": True}
        with httpx.stream("POST", url + "/v1/completions", json=long, timeout=HANG_S) as first:
            first_lines = first.iter_lines()  # kept: a reader dropped early closes the response
            next(first_lines)  # it runs
            with httpx.stream("POST", url + "/v1/completions", json=long, timeout=HANG_S) as second:
                wait_for(lambda: metric(url, "bench_requests_waiting") == 1, "second waits")
                third = httpx.post(url + "/v1/completions", json={"model": "fake", "prompt": [5]}, timeout=HANG_S)
                assert third.status_code == 429
                assert third.json()["error"]["type"] == "rate_limit_error"
                assert third.json()["error"]["code"] == "queue_full"
                first.close()
                assert sum(1 for line in second.iter_lines() if line.startswith("data: {")) == 300
        assert httpx.get(url + "/health", timeout=HANG_S).json()["status"] == "ok"


def test_an_engine_whose_steps_keep_failing_answers_each_request_and_says_so():
    import httpx

    from bench.serve.loop import FAILING_STEPS

    with fake_server(max_batch=4, fail_after=3) as url:
        body = {"model": "fake", "prompt": [5], "max_tokens": 50, "stream": True}
        events = [line for line in httpx.post(url + "/v1/completions", json=body, timeout=HANG_S).text.splitlines()
                  if line.startswith("data: ")]
        assert events[-1] == "data: [DONE]" and "device lost" in json.loads(events[-2][6:])["error"]["message"]
        for _ in range(FAILING_STEPS - 1):  # each answered, none left hanging
            again = httpx.post(url + "/v1/completions", json={"model": "fake", "prompt": [5]}, timeout=HANG_S)
            assert again.status_code == 500 and again.json()["error"]["type"] == "server_error"
        health = httpx.get(url + "/health", timeout=HANG_S)
        assert health.status_code == 503 and "device lost" in health.json()["reason"]


HOSTILE = [
    (b"{bad", 400), (b"", 400), (b"[]", 400), (b'"text"', 400), (b"null", 400), (b'{"prompt": "x"}', 400),
    (b'{"model": "tiny", "prompt": ' + b"[" * 20000 + b"]" * 20000 + b"}", 400),
    (b'{"model": "tiny", "prompt": "x", "temperature": NaN}', 400),
    (b'{"model": "tiny", "prompt": "x", "temperature": 1e999}', 400),
    (b'{"model": "tiny", "prompt": "x", "max_tokens": "3"}', 400),
    (b'{"model": "tiny", "prompt": "x", "max_tokens": true}', 400),
    (b'{"model": "tiny", "prompt": "x", "max_tokens": -1}', 400),
    (b'{"model": "tiny", "prompt": "x", "max_tokens": 100000000000000000000000000}', 400),
    (b'{"model": "tiny", "prompt": "x", "max_tokens": 65}', 400),
    (b'{"model": "tiny", "prompt": "x", "max_tokens": 3, "min_tokens": 4}', 400),
    (b'{"model": "tiny", "prompt": "x", "n": 2}', 400), (b'{"model": "tiny", "prompt": "x", "top_p": 0}', 400),
    (b'{"model": "tiny", "prompt": "x", "seed": 18446744073709551616}', 400),
    (b'{"model": "tiny", "prompt": "x", "stop": [""]}', 400),
    (b'{"model": "tiny", "prompt": "x", "logprobs": 2}', 400),
    (b'{"model": "gpt-4", "prompt": "x"}', 404),
    (b'{"model": "tiny", "prompt": "' + b"sad " * 40 + b'"}', 400),
    (b'{"model": "tiny", "prompt": [1000]}', 400), (b'{"model": "tiny", "prompt": [-1]}', 400),
    (b'{"model": "tiny", "prompt": [1.5]}', 400), (b'{"model": "tiny", "prompt": []}', 400),
    (b'{"model": "tiny", "prompt": ["a", "b"]}', 400), (b'{"model": "tiny", "prompt": [[]]}', 400),
    (b'{"model": "tiny", "prompt": "\xff\xfe\x00"}', 400),
    (b'{"model": "tiny", "prompt": "x", "stream_options": {"include_usage": "yes"}}', 400),
]
HOSTILE_CHAT = [
    (b'{"model": "tiny", "messages": []}', 400), (b'{"model": "tiny", "messages": "hi"}', 400),
    (b'{"model": "tiny", "messages": [{"role": "wizard", "content": "hi"}]}', 400),
    (b'{"model": "tiny", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]}', 400),
    (b'{"model": "tiny", "messages": [{"role": "user"}]}', 400),
    (b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]}', 400),
]


def test_a_chat_only_field_on_a_completions_body_is_ignored_not_taken_unchecked(tiny_url):
    """max_completion_tokens is chat's: on /v1/completions it is an unknown key, which vLLM ignores; it reached
    the engine unchecked (a string: a 500 and a traceback in the server's log)."""
    import httpx

    with httpx.Client(base_url=tiny_url, timeout=HANG_S) as h:
        for value in ('"5"', "[1]", "0", "3"):
            r = h.post("/v1/completions", content=f'{{"model": "tiny", "prompt": "hi", "max_tokens": 2, '
                       f'"max_completion_tokens": {value}}}'.encode(), headers={"Content-Type": "application/json"})
            assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 2, (value, r.text[:200])


def test_a_chat_error_names_the_messages_and_a_negative_seed_is_taken_as_vllm_takes_it(tiny_url):
    import httpx

    with httpx.Client(base_url=tiny_url, timeout=HANG_S) as h:
        r = h.post("/v1/chat/completions", json={"model": "tiny", "messages": [{"role": "user", "content": "  "}]})
        assert r.status_code == 400 and r.json()["error"]["param"] == "messages"  # a chat body has no `prompt`
        r = h.post("/v1/completions", json={"model": "tiny", "prompt": "hi", "max_tokens": 2, "seed": -1,
                                            "temperature": 1})
        assert r.status_code == 200, r.text[:200]  # vLLM: any int64 (clients send -1)


def test_hostile_bodies_get_openai_shaped_4xx_and_the_server_goes_on(tiny_url):
    import httpx

    with httpx.Client(base_url=tiny_url, timeout=HANG_S) as h:
        for path, cases in (("/v1/completions", HOSTILE), ("/v1/chat/completions", HOSTILE_CHAT)):
            for body, status in cases:
                r = h.post(path, content=body, headers={"Content-Type": "application/json"})
                assert r.status_code == status, (body[:80], r.text[:300])
                err = r.json()["error"]
                assert set(err) == {"message", "type", "param", "code"} and err["message"], body[:80]
        assert h.post("/v1/completions", content=b"x" * (2 << 20)).status_code == 413
        chunked = h.post("/v1/completions", content=(b"x" * 65536 for _ in range(32)))  # no Content-Length
        assert chunked.status_code == 413
        assert h.get("/v1/completions").status_code == 405 and h.get("/nowhere").status_code == 404
        too_long = h.post("/v1/completions", json={"model": "tiny", "prompt": list(range(4, 40))}).json()
        assert too_long["error"]["code"] == "context_length_exceeded"
        assert h.get("/health").json()["status"] == "ok"
        assert h.post("/v1/completions", json={"model": "tiny", "prompt": "fine", "max_tokens": 2}).status_code == 200


# -- the peers' clients, as their code sends ---------------------------------------------------------------
HI = [{"role": "user", "content": "i feel so alone these days"}]
PEER_BODIES = {  # vLLM 0.32 `vllm bench serve` (openai, openai-chat backends) and aiperf 0.13, as they send them
    "vllm completions": ("/v1/completions", {"model": "tiny", "prompt": "i feel so alone", "repetition_penalty": 1.0,
                                             "max_tokens": 5, "logprobs": None, "stream": True,
                                             "stream_options": {"include_usage": True}, "ignore_eos": True}),
    "vllm chat": ("/v1/chat/completions", {"model": "tiny", "messages": HI, "max_completion_tokens": 5, "stream": True,
                                           "stream_options": {"include_usage": True}, "min_tokens": 5}),
    "aiperf completions": ("/v1/completions", {"prompt": "i feel so alone", "model": "tiny", "stream": True,
                                               "max_tokens": 5, "min_tokens": 5, "ignore_eos": True,
                                               "stream_options": {"include_usage": True}}),
    "aiperf chat": ("/v1/chat/completions", {"messages": HI, "model": "tiny", "stream": True,
                                             "max_completion_tokens": 5, "stream_options": {"include_usage": True}}),
}


def sse(response) -> list:
    """The JSON chunks of a streamed answer, then "[DONE]" where it came."""
    events = [line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: ")]
    return [e if e == "[DONE]" else json.loads(e) for e in events]


@pytest.mark.parametrize("peer", sorted(PEER_BODIES))
def test_the_peers_bodies_are_answered_with_a_token_per_chunk_as_vllm_counts_them(tiny_url, peer):
    import httpx

    path, body = PEER_BODIES[peer]
    r = httpx.post(tiny_url + path, json=body, timeout=HANG_S)
    assert r.status_code == 200, r.text[:300]
    events = sse(r)
    assert events[-1] == "[DONE]"
    chunks = [c for c in events[:-1] if c["choices"]]
    usage = events[-2]["usage"]
    assert not events[-2]["choices"] and 1 <= usage["completion_tokens"] <= 5
    if "chat" in peer:  # a role-only chunk first, as OpenAI and vLLM send it
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        chunks = chunks[1:]
    # vLLM's client counts every chunk with text after the first as a token: one chunk per token, the finish
    # reason on the last token's chunk (a separate finish-only chunk would count as one more)
    assert len(chunks) == usage["completion_tokens"]
    assert [c["choices"][0]["finish_reason"] for c in chunks][:-1] == [None] * (len(chunks) - 1)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("length", "stop")
    if body.get("ignore_eos") or body.get("min_tokens"):
        assert usage["completion_tokens"] == 5 and chunks[-1]["choices"][0]["finish_reason"] == "length"


BAD_VALUES = [({"repetition_penalty": 0}, "repetition_penalty"), ({"repetition_penalty": -1.0}, "repetition_penalty"),
              ({"presence_penalty": 2.5}, "presence_penalty"), ({"frequency_penalty": -3}, "frequency_penalty"),
              ({"min_p": 1.5}, "min_p"), ({"repetition_penalty": 1.2}, "repetition_penalty"),  # valid: refused by name
              ({"stream_options": {"include_usage": True}}, "stream_options"),  # without stream
              ({"stop": [""]}, "stop")]


@pytest.mark.parametrize("extra,param", BAD_VALUES)
def test_an_invalid_or_unimplemented_value_is_a_400_naming_it_and_a_neutral_one_is_taken(tiny_url, extra, param):
    import httpx

    base = {"model": "tiny", "prompt": "hello there", "max_tokens": 2}
    r = httpx.post(tiny_url + "/v1/completions", json={**base, **extra}, timeout=HANG_S)
    assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text[:300]
    neutral = {"repetition_penalty": 1.0, "presence_penalty": 0, "frequency_penalty": 0.0, "min_p": 0,
               "response_format": {"type": "text"}, "n": 1, "logprobs": None, "stop": []}
    assert httpx.post(tiny_url + "/v1/completions", json={**base, **neutral}, timeout=HANG_S).status_code == 200


def test_a_body_not_sent_as_json_is_a_400_saying_how_to_send_it(tiny_url):
    import httpx

    body = json.dumps({"model": "tiny", "prompt": "hello", "max_tokens": 2})
    for kind in ("text/plain", "application/x-www-form-urlencoded"):
        r = httpx.post(tiny_url + "/v1/completions", content=body, headers={"Content-Type": kind}, timeout=HANG_S)
        assert r.status_code == 400 and "application/json" in r.json()["error"]["message"], (kind, r.text[:200])


def test_a_stop_string_ends_the_reply_before_it_with_finish_reason_stop(tiny_url):
    import httpx

    ask = {"model": "tiny", "prompt": [5, 6, 7, 8], "max_tokens": 16, "min_tokens": 16, "temperature": 0}
    whole = httpx.post(tiny_url + "/v1/completions", json=ask, timeout=HANG_S).json()["choices"][0]["text"]
    stop = whole[len(whole) // 2: len(whole) // 2 + 4]
    assert len(stop) == 4 and whole.index(stop) > 0
    ask = {**ask, "min_tokens": 0, "stop": [stop, "never said"]}
    cut = httpx.post(tiny_url + "/v1/completions", json=ask, timeout=HANG_S).json()["choices"][0]
    assert cut["finish_reason"] == "stop" and cut["text"] == whole[: whole.index(stop)]
    streamed = sse(httpx.post(tiny_url + "/v1/completions", json={**ask, "stream": True}, timeout=HANG_S))
    assert "".join(c["choices"][0]["text"] for c in streamed[:-1]) == cut["text"]
    assert streamed[-2]["choices"][0]["finish_reason"] == "stop" and streamed[-1] == "[DONE]"


def test_continuous_usage_puts_the_usage_so_far_in_every_chunk(tiny_url):
    import httpx

    body = {"model": "tiny", "prompt": "hello", "max_tokens": 4, "min_tokens": 4, "stream": True,
            "stream_options": {"include_usage": True, "continuous_usage_stats": True}}
    chunks = sse(httpx.post(tiny_url + "/v1/completions", json=body, timeout=HANG_S))[:-1]
    assert [c["usage"]["completion_tokens"] for c in chunks] == [1, 2, 3, 4, 4]


def test_chat_without_a_length_gets_a_reply_a_person_reads_not_the_decoders_length(tiny_url):
    import httpx

    from bench.serve.app import CHAT_TOKENS

    body = {"model": "tiny", "messages": HI, "min_tokens": 1000, "temperature": 0}
    got = httpx.post(tiny_url + "/v1/chat/completions", json={**body, "min_tokens": 0, "ignore_eos": True},
                     timeout=HANG_S).json()
    assert got["usage"]["completion_tokens"] == min(CHAT_TOKENS, 64) < 512


@pytest.mark.parametrize("preset", ["tiny", pytest.param("seed", marks=pytest.mark.slow)])
def test_a_greedy_chat_reply_of_a_random_init_preset_is_words(preset):
    """The presets' random weights repeat their start token when greedy; replies are drawn from the ids
    the shipped tokenizer has words for, so a greedy reply is text and a sampled one has no placeholders."""
    from workloads.blender_servable import BlenderServable
    from workloads.common import CommonOptions

    common = CommonOptions.build({}, preset)
    servable = BlenderServable(common, cpu_backend(threads=1))
    servable.build()
    executor = servable.executor(max_rows=2, max_source=32, max_tokens=24)
    engine = Engine(executor, time.monotonic, max_batch=2, max_waiting=8)
    with serving(make_service(engine, codec_of(common.model), common.model, time.monotonic)) as url:
        c = client(url)
        for sampling in ({"temperature": 0}, {"temperature": 1.0, "seed": 3}):
            reply = c.chat.completions.create(model=common.model, messages=HI, max_tokens=12, **sampling)
            text = reply.choices[0].message.content
            assert text.strip() and PLACEHOLDER.format("")[:5] not in text, (sampling, text)


@pytest.mark.slow
def test_bench_serve_drains_on_sigterm_and_writes_its_session(tmp_path):
    """`bench serve` as a user runs it: a request in flight when SIGTERM comes is answered to the end,
    then the server exits 0 with a report of every request it served."""
    import os
    import signal
    import sys

    import httpx

    from bench.model.io import load_report

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "bench", "serve", "--device", "cpu", "--preset", "tiny", "--port", "0",
                             "--threads", "1", "--report", "--out", str(tmp_path), "--sample-hz", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = None
        for line in proc.stdout:
            if "listening on " in line:
                url = line.split("listening on ")[1].split()[0]
                break
        assert url and url.startswith("http://127.0.0.1:"), proc.stderr.read()
        assert client(url).completions.create(model="tiny", prompt="hello", max_tokens=4).usage.completion_tokens <= 4
        body = {"model": "tiny", "prompt": [5, 6, 7], "max_tokens": 500, "ignore_eos": True, "stream": True}
        with httpx.stream("POST", url + "/v1/completions", json=body, timeout=HANG_S) as r:
            lines = r.iter_lines()
            chunks = [next(lines) for _ in range(6)]
            proc.send_signal(signal.SIGTERM)
            before = sum(c.startswith("data: {") for c in chunks)
            rest = list(lines)
        events = [c for c in chunks + rest if c.startswith("data: ")]
        assert before < 500 and events[-1] == "data: [DONE]"
        assert sum(1 for e in events[:-1] if json.loads(e[6:])["choices"]) == 500
        assert proc.wait(HANG_S) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(HANG_S)
    [path] = tmp_path.glob("*.json")
    result = load_report(path).results[0]
    log = result.timing.repeats[0].requests
    assert result.status == "ok" and result.workload == "blender-serve" and result.params["batching"] == "continuous"
    # a server's session says what it served, not a load nobody sent (its clients chose rates and lengths)
    assert result.params["load"] == "served" and "arrival_seed" not in result.params and "output_len" not in result.params
    assert log.new_tokens[-1] == 500 and len(log.token_s[-1]) == 500 and log.finish_s[-1] == log.token_s[-1][-1]
    assert result.workload_metrics["ttft_s"].n == 2
    assert load_report(path).telemetry.samples  # the same collectors as bench run


# -- bench serve's options ---------------------------------------------------------------------------------
def serve_config(*args):
    from bench.cli import build_parser
    from bench.launch.serve_command import build_serve

    return build_serve(build_parser().parse_args(["serve", *map(str, args)]))


def test_bench_serve_takes_the_engine_and_server_groups_and_runs_one_in_process_repeat():
    cfg, server = serve_config("--device", "cpu", "--preset", "seed", "--batching", "static", "--max-batch", 4,
                               "--port", 0, "--sample-hz", 5)
    o = cfg.options_of("blender-serve")
    assert cfg.workloads == ("blender-serve",) and cfg.common.model == "blenderbot-90m"
    assert (o.batching, o.max_batch, o.qps) == ("static", 4, None) and server.port == 0 and not server.report
    assert cfg.launch.in_process and cfg.measure.repeats == 1 and cfg.measure.sample_hz == 0  # no report: no sampler
    cfg, server = serve_config("--report", "--sample-hz", 5)
    assert server.report and cfg.measure.sample_hz == 5 and cfg.options_of("blender-serve").batching == "continuous"


@pytest.mark.parametrize("flag", ["--batch-size", "--new-tokens", "--beams", "--compile", "--qps", "--requests"])
def test_bench_serve_refuses_flags_that_mean_nothing_to_a_server(flag, capsys):
    from bench import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(["serve", flag, "2"])
    assert exit_info.value.code == 2 and flag in capsys.readouterr().err


def test_bench_serve_refuses_before_any_work(tmp_path, monkeypatch):
    from bench.core.errors import ConfigError
    from bench.launch.serve_command import check_before_serve

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cfg, server = serve_config("--device", "cpu", "--port", taken.getsockname()[1])
        with pytest.raises(ConfigError, match="--port .*in use"):
            check_before_serve(cfg, server)
    with pytest.raises(ConfigError, match="--host"):
        serve_config("--host", "no such host!")
    from transformers import BartConfig, BartForConditionalGeneration

    bart = tmp_path / "bart"  # a checkpoint whole and consistent, of a model the engine does not run
    BartForConditionalGeneration._from_config(BartConfig(vocab_size=64, d_model=16, encoder_layers=1, decoder_layers=1,
                                                         encoder_attention_heads=2, decoder_attention_heads=2,
                                                         encoder_ffn_dim=32, decoder_ffn_dim=32,
                                                         max_position_embeddings=64)).save_pretrained(bart)
    cfg, server = serve_config("--device", "cpu", "--model", bart, "--port", 0)
    with pytest.raises(ConfigError, match="BlenderBot-small"):
        check_before_serve(cfg, server)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a))
    with pytest.raises(ConfigError, match=r"bench\[serve\]"):
        check_before_serve(*serve_config("--device", "cpu", "--port", 0))


def test_bench_run_refuses_compile_for_the_serving_engine(tmp_path):
    from bench.core.errors import ConfigError
    from bench.launch.config import check_before_run
    from conftest import run_config

    cfg = run_config("--device", "cpu", "--workload", "blender-serve", "--qps", 2, "--compile", "--out", tmp_path)
    with pytest.raises(ConfigError, match="--compile: the serving engine runs eager"):
        check_before_run(cfg)


# -- text -----------------------------------------------------------------------------------------------------
def test_generated_ids_become_text_pieces_with_placeholders_for_ids_without_text():
    from bench.serve.text import Detokenizer

    codec = codec_of("tiny", 1000)
    scared, you = codec.encode("scared you")
    unknown = next(i for i in range(999, 4, -1) if not codec.knows(i))
    detok = Detokenizer(codec)
    pieces = [detok.piece(t) for t in (scared, unknown, you, you, 2, 1000)]
    assert pieces == ["scared", " <|id:%d|>" % unknown, " you", " you", "", " <|id:1000|>"]
    assert "".join(pieces) == detok.text  # end of sequence (2) is a special token: no text
    assert codec.chat([("user", "i am sad"), ("system", "be kind"), ("assistant", "why")]) == \
        codec.encode("be kind\ni am sad\nwhy")  # the system message first, then the turns in order


def test_a_checkpoint_without_a_tokenizer_takes_token_ids_only():
    from bench.serve.app import Service
    from bench.serve.api import ApiError
    from bench.serve.text import Codec

    service = Service(types.SimpleNamespace(engine=types.SimpleNamespace(executor=FakeExecutor(None))), Codec(None, 100),
                      "m", time.monotonic, None)
    assert service.prompt_ids([5, 6]) == [5, 6] and service.prompt_ids([[7]]) == [7]
    for bad in ("hello", ["hello"]):
        with pytest.raises(ApiError, match="token ids"):
            service.prompt_ids(bad)
    with pytest.raises(ApiError, match="no tokenizer"):
        service.chat_ids([])


def test_a_local_checkpoint_is_served_from_its_safetensors(tmp_path):
    import httpx

    from bench.launch.serve_command import check_before_serve
    from workloads.models import build_blender

    lively_tiny().save_pretrained(tmp_path / "ckpt", safe_serialization=True)
    check_before_serve(*serve_config("--device", "cpu", "--model", tmp_path / "ckpt", "--port", 0))
    model = build_blender(str(tmp_path / "ckpt")).eval()
    executor = BlenderExecutor(model, cpu_backend(threads=1), max_rows=2, max_source=32, max_tokens=16)
    codec = codec_of(str(tmp_path / "ckpt"), model.config.vocab_size)
    assert not codec.has_text  # no tokenizer saved with it: token ids only
    service = make_service(Engine(executor, time.monotonic, max_batch=2), codec, "ckpt", time.monotonic)
    with serving(service) as url:
        r = httpx.post(url + "/v1/completions", json={"model": "ckpt", "prompt": [5, 6, 7], "max_tokens": 5,
                                                      "min_tokens": 5}, timeout=HANG_S).json()
        assert r["usage"]["completion_tokens"] == 5 and r["choices"][0]["text"].startswith("<|id:")
        chat = httpx.post(url + "/v1/chat/completions", json={"model": "ckpt", "messages": [
            {"role": "user", "content": "hi"}]}, timeout=HANG_S)
        assert chat.status_code == 400 and "no tokenizer" in chat.json()["error"]["message"]
