"""A scripted OpenAI-compatible streaming server whose token times are known exactly.

It follows the shapes of OpenAI's streamed completions and chat completions as vLLM's server sends
them (vllm/entrypoints/openai/completion/protocol.py: `CompletionStreamResponse`, each choice with
`text`, `finish_reason` and, with `return_token_ids`, `token_ids`; a last chunk with `usage` under
`stream_options.include_usage`; then `data: [DONE]`).

Time is a VirtualClock shared with the load generator, and only the server moves it while
requests are in flight: before it sends a chunk it sets the clock to that chunk's scripted time
(its request's receipt + the chunk's offset), then waits until the client has stamped the chunk
before anything else happens. Chunks of all requests go out in time order, and a scheduled arrival
comes first when it is due: the clock is set to it and the server waits for the request. So the
client's stamps are the scripted times exactly, however loaded the machine is; the waits are
hang guards only. The server runs on 127.0.0.1, a free port, in a thread, and is always stopped.
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
import time
from dataclasses import dataclass, field

from bench.serve.http import HttpClient
from fake_peer import start_on_thread, stop_on_thread

HANG_S = 900.0


@dataclass
class Reply:
    """What the server answers one prompt: chunks at offsets from its receipt (each with its token
    ids), or an HTTP status; `cut` closes the stream before its finish; `garbage` sends that instead."""

    chunks: list[tuple[float, list[int]]] = field(default_factory=list)
    status: int = 200
    cut: bool = False
    garbage: bytes | None = None
    with_ids: bool = True  # a server that does not return token ids sends text only

    @classmethod
    def tokens(cls, offsets, first_id: int = 10, **kw) -> Reply:
        return cls([(t, [first_id + i]) for i, t in enumerate(offsets)], **kw)


class Recording(HttpClient):
    """The HTTP client, its traces kept by prompt (the server's key) so that the server can see a
    chunk stamped before it moves the clock."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.by_key: dict = {}

    def send(self, request, trace, messages=None):
        key = messages[-1][1] if messages else tuple(request.prompt)
        self.by_key[key] = trace
        super().send(request, trace, messages)


class ScriptedServer:
    def __init__(self, clock, replies: dict, arrivals: list[tuple[float, object]] = ()):
        self.clock, self.replies = clock, replies
        self.arrivals = sorted(arrivals, key=lambda a: a[0])  # (absolute virtual time, key)
        self.received: set = set()
        self.times: dict[int, collections.deque] = {}
        self.unacked = None
        self.client: Recording | None = None
        self.bodies: list[dict] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    # -- life ---------------------------------------------------------------------------------------
    def __enter__(self) -> str:
        self.port = start_on_thread(self)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        stop_on_thread(self)

    async def _start(self) -> int:
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/v1/completions", self.handle)
        app.router.add_post("/v1/chat/completions", self.handle)
        app.router.add_get("/v1/models", self.models)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]

    async def models(self, request):
        from aiohttp import web

        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "fake"}]})

    # -- one request --------------------------------------------------------------------------------
    async def handle(self, request):
        from aiohttp import web

        body = await request.json()
        self.bodies.append(body)
        chat = "messages" in body
        key = body["messages"][-1]["content"] if chat else tuple(body["prompt"])
        reply, hid, receipt = self.replies[key], id(request), self.clock()
        self.received.add(key)
        self.times[hid] = collections.deque(receipt + t for t, _ in reply.chunks)  # before any await
        try:
            if reply.status != 200:
                return web.json_response({"error": {"message": "scripted", "type": "x"}}, status=reply.status)
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            await self._stream(resp, reply, hid, key, chat)
            return resp
        finally:
            self.times.pop(hid, None)

    async def _stream(self, resp, reply: Reply, hid: int, key, chat: bool) -> None:
        for j, (_, ids) in enumerate(reply.chunks):
            await self._turn(hid)
            await resp.write(self._sse(chat, ids, None, reply.with_ids))
            self.unacked = lambda j=j: len(self.client.by_key[key].token_s) >= j + 1
        if reply.garbage is not None:
            await resp.write(reply.garbage)
        elif not reply.cut:
            n = sum(len(ids) for _, ids in reply.chunks)
            await resp.write(self._sse(chat, [], "length", False))
            await resp.write(b"data: " + json.dumps({"choices": [], "usage": {"prompt_tokens": 3,
                                                                              "completion_tokens": n}}).encode()
                             + b"\n\ndata: [DONE]\n\n")

    @staticmethod
    def _sse(chat: bool, ids: list[int], finish, with_ids: bool) -> bytes:
        text = "".join(f" w{i}" for i in ids) if ids else ""
        choice = {"index": 0, "finish_reason": finish, **({"token_ids": ids} if with_ids and ids else {})}
        choice.update({"delta": {"content": text}} if chat else {"text": text})
        return b"data: " + json.dumps({"id": "x", "choices": [choice]}).encode() + b"\n\n"

    # -- time -----------------------------------------------------------------------------------------
    async def _turn(self, hid: int) -> None:
        """Wait until this handler's next chunk is the earliest thing to happen, then set the clock to it."""
        t = self.times[hid][0]
        deadline = time.monotonic() + HANG_S
        while not self._ready(t):
            if time.monotonic() > deadline:
                raise TimeoutError("the scripted server waited for its client too long")
            await asyncio.sleep(0.001)
        self.times[hid].popleft()
        self.clock.t = max(self.clock.t, t)

    def _ready(self, t: float) -> bool:
        if self.unacked is not None:
            if not self.unacked():
                return False
            self.unacked = None
        due = next((a for a, k in self.arrivals if k not in self.received), None)
        if due is not None and due <= t:
            self.clock.t = max(self.clock.t, due)  # the client sends it once it sees the time
            return False
        return t <= min((q[0] for q in self.times.values() if q), default=t)
