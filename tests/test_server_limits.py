"""The server's connections are bounded apart from its requests: a request's headers and body have a
deadline however slowly they drip, idle connections are closed, a connection past the limit takes the
place of an idle one (or may only ask for the server's status), and a full queue is a 429 with
OpenAI's body; meanwhile /health and a normal request are answered.

The server is `bench serve`'s own (server.py's uvicorn settings, connections.py's protocol, its stop),
in a thread, over a fake executor whose steps wait for a gate the test opens: requests stay in flight
for as long as a test needs them. Tests wait for events (the server closed the connection, the
connections gauge counts them); the small timeouts are the server's settings, never a test's bound."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

import pytest

from bench.serve.engine import Engine
from bench.serve.options import ServerOptions
from bench.serve.server import bench_server, make_service, uvicorn_config
from fakes import FakeExecutor, codec_of
from test_api import HANG_S, metric, wait_for


class Gated(FakeExecutor):
    """The fake executor in real time; while `gate` is shut, a step waits for it."""

    def __init__(self):
        super().__init__(type("C", (), {"t": 0.0})(), per_step_s=0, per_row_s=0)
        self.gate = threading.Event()
        self.gate.set()

    def step(self, joining):
        self.gate.wait(HANG_S)
        return super().step(joining)


@contextlib.contextmanager
def bench_serving(max_batch=2, codec=None, budget=None, sndbuf=None, **server):
    """`bench serve`'s server (its settings, protocol and stop) over a Gated executor, in a thread:
    yields (base URL, port, executor); always stopped."""
    from bench.serve.app import create_app

    options = ServerOptions.build({"port": 0, **server})
    ex = Gated()
    service = make_service(Engine(ex, time.monotonic, max_batch=max_batch, max_waiting=options.max_waiting),
                           codec or codec_of("tiny", 100), "fake", time.monotonic)
    if budget is not None:
        service.budget = budget
    sock = socket.socket()
    if sndbuf is not None:  # the accepted connections' send buffers (Linux: they inherit the listener's)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.bind(("127.0.0.1", 0))
    srv = bench_server(uvicorn_config(create_app(service), options), service, drain_s=0)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    service.loop.start()
    thread.start()
    port = sock.getsockname()[1]
    try:
        wait_for(lambda: srv.started or not thread.is_alive(), "the server starts")
        assert srv.started
        yield f"http://127.0.0.1:{port}", port, ex, service
    finally:
        ex.gate.set()
        srv.should_exit = True
        thread.join(HANG_S)
        service.loop.stop()
        sock.close()


def closed_by_server(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    s.settimeout(HANG_S)
    got = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return got
        if not chunk:
            return got
        got += chunk


def drip(s: socket.socket, data: bytes, stop: threading.Event) -> threading.Thread:
    """Send `data` a byte at a time, then more of the same, until the server closes or `stop`."""

    def run():
        i = 0
        while not stop.is_set():
            try:
                s.send(data[i % len(data):i % len(data) + 1])
            except OSError:
                return
            i += 1
            stop.wait(0.02)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def served_meanwhile(url: str) -> None:
    import httpx

    assert httpx.get(url + "/health", timeout=HANG_S).json()["status"] == "ok"
    r = httpx.post(url + "/v1/completions", json={"model": "fake", "prompt": [5], "max_tokens": 3}, timeout=HANG_S)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 3


def shaped(raw: bytes, status: int) -> dict:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d" % status), raw[:200]
    err = json.loads(body)["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


# -- waits with a deadline: headers and bodies dripped, idle connections ---------------------------------------
@pytest.mark.parametrize("dripped", [
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 64,  # headers that never end
    b"POST /v1/completions HTTP/1.1\r\n",  # a request line, then header lines dripped
    b"P",  # one byte, then more of the same
])
def test_headers_dripped_slowly_are_answered_408_and_closed_while_others_are_served(dripped):
    with bench_serving(client_timeout_s=1.0) as (url, port, *_):
        with socket.create_connection(("127.0.0.1", port), timeout=HANG_S) as s:
            stop = threading.Event()
            drip(s, dripped, stop)
            served_meanwhile(url)
            err = shaped(closed_by_server(s), 408)
            stop.set()
        assert err["code"] == "request_timeout"
        served_meanwhile(url)


@pytest.mark.parametrize("path", ["/v1/completions", "/v1/chat/completions"])
def test_a_body_dripped_slowly_is_cut_and_never_reaches_the_engine(path):
    with bench_serving(client_timeout_s=1.0) as (url, port, ex, _):
        with socket.create_connection(("127.0.0.1", port), timeout=HANG_S) as s:
            s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n"
                      b"\r\n" % path.encode())
            stop = threading.Event()
            drip(s, b'{"model": "fake", "prompt": [5', stop)
            served_meanwhile(url)
            closed_by_server(s)
            stop.set()
        assert len({rid for rows, _ in ex.log for rid in rows}) == 1  # the normal request only
        served_meanwhile(url)


def test_idle_connections_are_closed_before_a_request_and_after_one():
    with bench_serving(client_timeout_s=1.0, keep_alive_s=1.0) as (url, port, *_):
        silent = socket.create_connection(("127.0.0.1", port), timeout=HANG_S)
        kept = socket.create_connection(("127.0.0.1", port), timeout=HANG_S)
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        served_meanwhile(url)
        assert closed_by_server(silent) == b""  # nothing was asked: nothing to answer
        assert b'"status":"ok"' in closed_by_server(kept)  # answered, then closed when idle
        silent.close()
        kept.close()


def test_a_client_that_stops_reading_its_answer_is_cut():
    with bench_serving(client_timeout_s=1.0, sndbuf=4096) as (url, port, *_):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        body = json.dumps({"model": "fake", "prompt": [5], "max_tokens": 512, "stream": True}).encode()
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        served_meanwhile(url)
        wait_for(lambda: metric(url, "bench_connections") == 1, "the reader that stalled is cut")  # (this query's own)
        assert b"data: [DONE]" not in closed_by_server(s)
        s.close()


# -- connections bounded apart from requests ------------------------------------------------------------------
def test_connections_past_the_limit_take_the_place_of_idle_ones():
    with bench_serving(max_connections=8, max_waiting=4) as (url, port, *_):
        idle = [socket.create_connection(("127.0.0.1", port), timeout=HANG_S) for _ in range(8)]
        wait_for(lambda: metric(url, "bench_connections") >= 8, "the idle connections are open")
        for _ in range(3):  # each fresh connection closes the one idle the longest
            served_meanwhile(url)
        assert sum(closed_by_server(s) == b"" for s in idle[:3]) == 3
        for s in idle:
            s.close()


def test_when_every_connection_serves_a_request_a_new_one_may_only_ask_the_status():
    import httpx

    with bench_serving(max_connections=5, max_waiting=4, max_batch=2) as (url, port, ex, _):
        ex.gate.clear()  # the first step waits (one request joining it), the next four wait for it
        body = {"model": "fake", "prompt": [5], "max_tokens": 3, "stream": True}
        with contextlib.ExitStack() as stack:
            for _ in range(5):
                stack.enter_context(httpx.stream("POST", url + "/v1/completions", json=body, timeout=HANG_S))
            wait_for(lambda: metric(url, "bench_requests_waiting") + metric(url, "bench_requests_running") == 5,
                     "five requests in flight")
            assert httpx.get(url + "/health", timeout=HANG_S).json()["status"] == "ok"
            assert httpx.get(url + "/v1/models", timeout=HANG_S).status_code == 200
            refused = httpx.post(url + "/v1/completions", json={"model": "fake", "prompt": [5]}, timeout=HANG_S)
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "too_many_connections"
            ex.gate.set()


@pytest.mark.parametrize("settings", [{"max_waiting": 2, "max_batch": 1}, {"max_waiting": 16, "max_batch": 4}])
def test_a_full_queue_is_a_429_with_openai_s_body_however_many_connections(settings):
    """The issue's case scaled: more concurrent streams than the queue and the rows hold, the first
    step held open; each one past them is a 429 (not uvicorn's plain-text 503), /health stays
    reachable, and the ones taken are served whole once the step goes on."""
    import asyncio

    import httpx

    n = 4 * (settings["max_waiting"] + settings["max_batch"])
    with bench_serving(**settings) as (url, port, ex, _):
        ex.gate.clear()

        async def main():
            async with httpx.AsyncClient(base_url=url, timeout=HANG_S, limits=httpx.Limits(max_connections=None)) as h:
                body = {"model": "fake", "prompt": [5], "max_tokens": 2, "stream": True}
                heads = await asyncio.gather(*(h.send(h.build_request("POST", "/v1/completions", json=body),
                                                      stream=True) for _ in range(n)))
                held = (metric(url, "bench_requests_waiting"), metric(url, "bench_requests_running"))
                health = (await h.get("/health")).json()["status"]
                ex.gate.set()
                bodies = [(r.status_code, (await r.aread()).decode()) for r in heads]
                return held, health, bodies

        (waiting, running), health, bodies = asyncio.run(main())
    assert health == "ok" and waiting == settings["max_waiting"] and 1 <= running <= settings["max_batch"]
    taken = [text for status, text in bodies if status == 200]
    assert len(taken) == waiting + running and all(text.rstrip().endswith("data: [DONE]") for text in taken)
    refused = [json.loads(text)["error"] for status, text in bodies if status != 200]
    assert len(refused) == n - len(taken) and {(e["type"], e["code"]) for e in refused} == {
        ("rate_limit_error", "queue_full")}


def test_the_server_options_refuse_connections_that_cannot_hold_the_queue():
    from bench.core.errors import ConfigError

    with pytest.raises(ConfigError, match="--max-connections 16: must be more than --max-waiting"):
        ServerOptions.build({"max_connections": 16, "max_waiting": 16})
    with pytest.raises(ConfigError, match="open files"):
        ServerOptions.build({"max_connections": 1_000_000, "max_waiting": 16})


def test_bench_serve_refuses_a_connection_limit_below_its_queue_before_any_work():
    from bench.core.errors import ConfigError
    from test_api import serve_config

    with pytest.raises(ConfigError, match="--max-connections 8: must be more than --max-waiting"):
        serve_config("--device", "cpu", "--max-connections", 8, "--max-waiting", 16)
    cfg, server = serve_config("--device", "cpu", "--max-connections", 64, "--max-waiting", 32, "--client-timeout-s", 5,
                               "--keep-alive-s", 9)
    assert (server.connection_limit, server.client_timeout_s, server.keep_alive_s) == (64, 5.0, 9.0)
    assert serve_config("--device", "cpu", "--max-waiting", 2000)[1].connection_limit == 3024  # the default follows
