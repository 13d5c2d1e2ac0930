"""Peers that misbehave on purpose, for the load generator's tests: an HTTP server on a loopback
address whose every route is a canned answer (a status, a body, a redirect, bytes dripped forever, a
stream of OpenAI chunks that lies about its counts), recording what reached it.

Chunks follow vLLM's streamed completions (vllm/entrypoints/openai/completion/protocol.py
`CompletionStreamResponse`: choices with `text`, `finish_reason`, and `token_ids` under
`return_token_ids`; a last chunk with `usage` under `stream_options.include_usage`; `data: [DONE]`).
Nothing here waits on the clock to make a point: a drip or a hold waits for the client to give up
(its own deadline), each wait bounded by HANG_S, a guard only.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field

HANG_S = 900.0

MODELS = {"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "fake"}]}


def sse(*chunks: dict, done: bool = True) -> bytes:
    out = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    return out + (b"data: [DONE]\n\n" if done else b"")


def completion(ids_per_chunk, usage: dict | None = None, with_ids: bool = True) -> bytes:
    """A streamed completion: one chunk per entry (its token ids), the finish, then the usage."""
    chunks = [{"id": "x", "choices": [{"index": 0, "text": "".join(f" w{i}" for i in ids) or " w",
                                       "finish_reason": None, **({"token_ids": ids} if with_ids else {})}]}
              for ids in ids_per_chunk]
    chunks.append({"id": "x", "choices": [{"index": 0, "text": "", "finish_reason": "length"}]})
    if usage is not None:
        chunks.append({"id": "x", "choices": [], "usage": usage})
    return sse(*chunks)


def start_on_thread(server) -> int:
    """Run `server._start()` (an aiohttp app set up as `server.runner`) on the server's own loop and thread;
    its port."""
    server.thread.start()
    return asyncio.run_coroutine_threadsafe(server._start(), server.loop).result(HANG_S)


def stop_on_thread(server) -> None:
    asyncio.run_coroutine_threadsafe(server.runner.cleanup(), server.loop).result(HANG_S)
    server.loop.call_soon_threadsafe(server.loop.stop)
    server.thread.join(HANG_S)


@dataclass
class Answer:
    """What a route answers: a status and a body (bytes, or JSON), headers, or — `drip` — these bytes
    then one more byte every `drip` seconds until the client goes; `hold`: nothing until it goes."""

    status: int = 200
    body: object = None
    headers: dict = field(default_factory=dict)
    drip: float | None = None
    hold: bool = False


class Peer:
    """`with Peer({("GET", "/v1/models"): Answer(...)}) as url:` — every other route is a 404."""

    def __init__(self, routes: dict, host: str = "127.0.0.1"):
        self.routes, self.host = routes, host
        self.seen: list[tuple[str, str, dict]] = []  # (method, path, headers) of every request
        self.received = threading.Event()  # set at the first request
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> str:
        return f"http://{self.host}:{start_on_thread(self)}"

    def __exit__(self, *exc) -> None:
        stop_on_thread(self)

    async def _start(self) -> int:
        from aiohttp import web

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]

    async def handle(self, request):
        from aiohttp import web

        self.seen.append((request.method, request.path, dict(request.headers)))
        self.received.set()
        answer = self.routes.get((request.method, request.path))
        if answer is None:
            return web.Response(status=404)
        body = answer.body
        raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
        if answer.drip is None and not answer.hold:
            return web.Response(status=answer.status, body=raw, headers=answer.headers)
        resp = web.StreamResponse(status=answer.status, headers=answer.headers)
        await resp.prepare(request)
        await resp.write(raw)
        for _ in range(int(HANG_S / (answer.drip or 1.0))):
            await asyncio.sleep(answer.drip or 1.0)
            if answer.drip:
                await resp.write(b" ")
        return resp

    def auth_seen(self) -> list[str]:
        return [h.get("Authorization", "") for _, _, h in self.seen]
