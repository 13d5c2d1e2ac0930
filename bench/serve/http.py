"""The load generator's HTTP client: any OpenAI-compatible server (bench serve, vLLM, TGI, ...) over
streaming (server-sent events), with aiohttp.

Each request is a streamed POST to /v1/completions (the prompt as token ids: exactly the prompts
the in-process engine gets) or /v1/chat/completions (messages as text). It asks for exact lengths
as vLLM's extensions spell them (`min_tokens` = `max_tokens`, `ignore_eos`), greedy, the usage in a
last chunk (`stream_options.include_usage`) and the generated ids (`return_token_ids`, vLLM's and
bench serve's). A server that ignores an extension still answers: what it sent is what is counted.

Time stamps: one per server-sent event that carries tokens (its `token_ids`, else non-empty text, as
vLLM's `bench serve` counts them), read from the session's clock as the event is parsed, on the
client's own thread (its event loop runs beside the session's thread, which keeps the arrival
schedule): events that arrive in one read get a stamp each, and a read is not held back while the
schedule sends; an event with several tokens is one stamp. A request fails, counted with its reason and never fatal to the
session, on: an HTTP status other than 200 (`http_<status>`), no answer within the timeout
(`timeout`), a connection that could not be made (`connection`), a stream that ends before its
finish (`disconnected`), or a body that is not a stream of OpenAI chunks, or larger than a reply
can be (`bad_stream`). The API key is read from the environment variable a flag names and is sent
as a bearer token, never recorded, never shown, and never sent elsewhere: no redirect is followed
(a 3xx is `http_3xx`), and no proxy from the environment is used (aiohttp's `trust_env` is off).

Counting: a reply's tokens are what was streamed — its token ids where the chunks carry them, else
one per chunk with text (as vLLM's `bench serve` counts) — and never more than the request asked
for: stamps and ids past that are not kept. The server's `usage.completion_tokens` is a claim,
recorded apart (`Trace.usage_tokens`) and compared (`count_disagreements`), never counted: a server
that says 2,147,483,647 tokens for 4 chunks gets 4.

Waits: every wait on the server has a total deadline — the probe before any work (endpoint.py),
each request (`--request-timeout-s`, aiohttp's `ClientTimeout.total`: connection, send and the whole
stream), and a session whose server process is known (`watch`: a server started by the run that
exited or was stopped fails what is in flight at once).
"""

from __future__ import annotations

import asyncio
import json
import math
import queue
import threading
import time
from dataclasses import dataclass, field

from bench.serve.endpoint import auth
from bench.serve.protocol import GenRequest, Trace

POLL_S = 0.05  # `wait` returns at least this often while requests are in flight
MAX_LINE = 1 << 20  # one server-sent event line at most
MAX_BODY = 16 << 20  # one reply's stream at most
MAX_TEXT = 1 << 20  # of its text, kept at most
KEEP_ALIVE_S = 3.0  # an idle connection is reused within this, else closed
WATCH_S = 1.0  # how often a session looks at its server's process (`watch`), at most


@dataclass(frozen=True)
class Endpoint:
    """Where and how requests go: the base URL (no /v1), the API, the model's name, the key."""

    url: str
    api: str = "completions"
    model: str = ""
    key: str | None = field(default=None, repr=False)  # never in a repr, a log or an error
    timeout_s: float = 600.0
    text: bool = False  # completions' prompts go as their text (the session's prompts came as text), not ids

    @property
    def path(self) -> str:
        return "/v1/chat/completions" if self.api == "chat" else "/v1/completions"

    def headers(self) -> dict:
        return auth(self.key)


def body(endpoint: Endpoint, request: GenRequest, messages=None) -> dict:
    """The JSON of one streamed request: exact length, its sampling (greedy: temperature 0), usage and
    token ids asked for; the prompt as messages (chat), as text (prompts that came as text), or as ids."""
    out = {"model": endpoint.model, "max_tokens": request.max_tokens, "min_tokens": request.min_tokens,
           "ignore_eos": True, **sampling(request.sampling), "stream": True,
           "stream_options": {"include_usage": True}, "return_token_ids": True}
    if endpoint.api == "chat":
        return {**out, "messages": [{"role": role, "content": text} for role, text in messages or ()]}
    if endpoint.text and messages:
        return {**out, "prompt": messages[-1][1]}
    return {**out, "prompt": list(request.prompt)}


def sampling(s) -> dict:
    """A request's sampling as OpenAI's fields: temperature; top_p and seed where it samples."""
    if s.greedy:
        return {"temperature": 0.0}
    return {"temperature": s.temperature, "top_p": s.top_p, **({} if s.seed is None else {"seed": s.seed})}


class StreamReader:
    """Server-sent events of one reply, fed as they arrive (`feed(bytes)`), onto its trace; each event
    stamped by `clock` as it is parsed (bytes that hold several events give each its own stamp, as
    vLLM's client stamps each message); its tokens counted as streamed, up to `asked` (what the request
    asked for)."""

    def __init__(self, trace: Trace, chat: bool, asked: int, clock):
        self.trace, self.chat, self.asked, self.clock = trace, chat, asked, clock
        self.max_chunks = 4 * asked + 16  # far past what was asked: not a reply to this request
        self.buffer, self.size, self.finished, self.done = b"", 0, False, False
        self.streamed, self.chunks = 0, 0

    def feed(self, data: bytes) -> bool:
        """Take received bytes; True once the stream ended ([DONE], or a failure)."""
        self.size += len(data)
        if self.size > MAX_BODY:
            return self._bad()
        self.buffer += data
        while b"\n" in self.buffer and not self.done:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self._line(line.strip())
        if len(self.buffer) > MAX_LINE:
            return self._bad()
        return self.done

    def close(self) -> None:
        """The stream ended: a reply without its finish was cut off."""
        if not self.done:
            self.done = True
            if self.finished:
                self._complete()
            else:
                self.trace.fail("disconnected")

    def _bad(self) -> bool:
        self.done = True
        self.trace.fail("bad_stream")
        return True

    def _line(self, line: bytes) -> None:
        if not line.startswith(b"data:"):
            return  # comments, event names, blank lines between events
        t = self.clock()  # this event's stamp, as it is parsed
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return self._complete() if self.finished or self.trace.token_s else self.trace.fail("bad_stream")
        try:
            chunk = json.loads(payload)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than a parser goes
            return self._bad()
        if not isinstance(chunk, dict) or "error" in chunk:
            self.done = True
            return self.trace.fail("server_error" if isinstance(chunk, dict) else "bad_stream")
        self._chunk(chunk, t)

    def _chunk(self, chunk: dict, t: float) -> None:
        usage = chunk.get("usage")
        if isinstance(usage, dict):  # the server's claim: recorded, compared, not counted
            self.trace.usage_tokens = _count(usage.get("completion_tokens"))
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, dict):
                self._choice(choice, t)

    def _choice(self, choice: dict, t: float) -> None:
        """A choice carries tokens when it has token ids, else non-empty text (as vLLM counts them)."""
        delta = choice.get("delta") if self.chat else choice
        text = (delta.get("content") if self.chat else delta.get("text")) if isinstance(delta, dict) else None
        text = text if isinstance(text, str) else ""
        ids = choice.get("token_ids")
        ids = [i for i in ids if type(i) is int] if isinstance(ids, list) else []
        if ids or text:
            self._stamp(t, ids, text)
        if choice.get("finish_reason"):
            self.finished, self.trace.reason = True, str(choice["finish_reason"])[:32]

    def _stamp(self, t: float, ids: list[int], text: str) -> None:
        self.chunks += 1
        if self.chunks > self.max_chunks:
            self._bad()
            return
        room = self.asked - self.streamed
        self.streamed += len(ids) or 1
        if room <= 0:
            return  # past what was asked: counted as streamed (and compared), not kept
        self.trace.token_s.append(t)
        self.trace.tokens.extend(ids[:room])
        if len(self.trace.text) < MAX_TEXT:  # a reply's text is kept for the next turn of a conversation
            self.trace.text += text[: MAX_TEXT - len(self.trace.text)]

    def _complete(self) -> None:
        tr = self.trace
        if not tr.token_s:
            tr.fail("bad_stream")
            return
        tr.finish_s = tr.token_s[-1]
        tr.streamed, tr.new_tokens = self.streamed, min(self.streamed, self.asked)


def _count(value) -> int | None:
    return value if type(value) is int and 0 <= value < 1 << 31 else None


def count_disagreements(traces) -> str | None:
    """Where the servers' own counts (usage.completion_tokens) or what they streamed disagree with
    what was counted: a sentence with the counts, for a warning; None where all agree."""
    done = [t for t in traces if t.finish_s is not None and t.new_tokens is not None]
    claims = [t for t in done if t.usage_tokens is not None and t.usage_tokens != (t.streamed or t.new_tokens)]
    over = [t for t in done if (t.streamed or 0) > t.new_tokens]
    if not claims and not over:
        return None
    parts = []
    if claims:
        parts.append(f"for {len(claims)} of {len(done)} completed requests the server's usage.completion_tokens "
                     f"disagreed with the tokens streamed ({sum(t.usage_tokens for t in claims):,} claimed, "
                     f"{sum(t.streamed or t.new_tokens for t in claims):,} streamed)")
    if over:
        parts.append(f"{len(over)} streamed more tokens than asked ({sum(t.streamed for t in over):,} for "
                     f"{sum(t.new_tokens for t in over):,}); the extra were not counted")
    return "; ".join(parts) + ": the figures count what was streamed, up to what each request asked"


class HttpClient:
    """The session's client over HTTP: each request a task on an event loop that runs on a thread of its
    own, so that a chunk is read, parsed and stamped when it arrives, whatever the session's thread (the
    arrival schedule) is doing; `wait` returns the requests that ended, at least every POLL_S.

    `watch`, where the server's process is known (one the run started): called at most every
    WATCH_S, it returns why the server can no longer answer (an error code: it exited, or it was
    stopped) or None; from then on what is in flight and what is sent fail at once with that code,
    rather than each waiting out --request-timeout-s."""

    def __init__(self, endpoint: Endpoint, clock, sleep=time.sleep, watch=None):
        self.endpoint, self.clock, self.sleep, self.watch = endpoint, clock, sleep, watch
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-http", daemon=True)
        self.thread.start()
        self.session = None
        self.tasks: dict[str, asyncio.Task] = {}  # the loop's thread only
        self.ended: queue.SimpleQueue = queue.SimpleQueue()  # (request id, its task) as each ends
        self.in_flight = 0
        self.gone: str | None = None  # why the server cannot answer any more (`watch`)
        self.failed: list[str] = []  # requests failed by `watch` before they were sent, not yet returned
        self.watched = -math.inf

    def send(self, request: GenRequest, trace: Trace, messages=None) -> None:
        if self.gone is not None:
            trace.sent_s = self.clock()
            trace.fail(self.gone)
            self.failed.append(request.id)
            return
        self.in_flight += 1
        self.loop.call_soon_threadsafe(self._start, request, trace, messages)

    def _start(self, request: GenRequest, trace: Trace, messages) -> None:  # the loop's thread
        task = self.tasks[request.id] = self.loop.create_task(self._one(request, trace, messages))
        task.add_done_callback(lambda t, rid=request.id: self._done(rid, trace, t))

    def _done(self, rid: str, trace: Trace, task: asyncio.Task) -> None:  # the loop's thread
        if task.cancelled() and self.gone is not None and not trace.done:  # the server exited or was stopped
            trace.fail(self.gone)
        self.tasks.pop(rid, None)
        self.ended.put((rid, task))

    def wait(self, until: float) -> list[str]:
        self._look()
        if self.failed:
            out, self.failed = self.failed, []
            return out
        now = self.clock()
        if not self.in_flight:
            if math.isinf(until):
                raise RuntimeError("the session waits for requests that were never sent")
            self.sleep(max(0.0, until - now))
            return []
        try:
            got = [self.ended.get(timeout=max(0.0, min(until - now, POLL_S)))]
        except queue.Empty:
            return []
        while True:
            try:
                got.append(self.ended.get_nowait())
            except queue.Empty:
                break
        self.in_flight -= len(got)
        for _, task in got:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # a bug in _one surfaces here; a failed request is its trace's
        return [rid for rid, _ in got]

    def _look(self) -> None:
        """Ask `watch` (at most every WATCH_S of real time) whether the server can still answer; if not,
        every request in flight fails with its code (each ends, and `wait` returns it)."""
        if self.watch is None or self.gone is not None or time.monotonic() - self.watched < WATCH_S:
            return
        self.watched = time.monotonic()
        self.gone = self.watch()
        if self.gone is not None:
            asyncio.run_coroutine_threadsafe(self._cancel_all(), self.loop).result()

    async def _cancel_all(self) -> None:
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        async def end():
            await self._cancel_all()
            if self.session is not None:
                await self.session.close()

        try:
            asyncio.run_coroutine_threadsafe(end(), self.loop).result()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()
            self.loop.close()

    async def _session(self):
        import aiohttp

        if self.session is None:
            # idle connections are closed before the 5 s most servers keep them (uvicorn's default): a
            # request sent on one the server closes at that moment would fail before it reached it
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEP_ALIVE_S)
            self.session = aiohttp.ClientSession(connector=connector)
        return self.session

    async def _one(self, request: GenRequest, trace: Trace, messages) -> None:
        import aiohttp

        e = self.endpoint
        trace.sent_s = self.clock()
        session = await self._session()
        reader = StreamReader(trace, e.api == "chat", request.max_tokens, self.clock)
        try:
            # no redirect is followed: the key would go with it (aiohttp 3.14 client.py `_request` drops
            # Authorization only when the redirect changes origin; a 3xx here is then `http_3xx`)
            async with session.post(e.url + e.path, json=body(e, request, messages), headers=e.headers(),
                                    timeout=aiohttp.ClientTimeout(total=e.timeout_s), allow_redirects=False) as resp:
                if resp.status != 200:
                    trace.fail(f"http_{resp.status}")
                    return
                async for data in resp.content.iter_any():
                    if reader.feed(data):
                        break
            reader.close()
        except asyncio.TimeoutError:
            trace.fail("timeout")
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
            trace.fail("disconnected")
        except aiohttp.ClientError:
            trace.fail("connection")
