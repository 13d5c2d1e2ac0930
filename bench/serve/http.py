"""The load generator's HTTP client: any OpenAI-compatible server (bench serve, vLLM, TGI, ...) over
streaming (server-sent events), with aiohttp.

Each request is a streamed POST to /v1/completions (the prompt as token ids: exactly the prompts
the in-process engine gets) or /v1/chat/completions (messages as text). It asks for exact lengths
as vLLM's extensions spell them (`min_tokens` = `max_tokens`, `ignore_eos`), greedy, the usage in a
last chunk (`stream_options.include_usage`) and the generated ids (`return_token_ids`, vLLM's and
bench serve's). A server that ignores an extension still answers: what it sent is what is counted.

Time stamps: one per received chunk that carries tokens (its `token_ids`, else non-empty text, as
vLLM's `bench serve` counts them), read from the session's clock when the chunk is read — a chunk
with several tokens is one stamp. A request fails, counted with its reason and never fatal to the
session, on: an HTTP status other than 200 (`http_<status>`), no answer within the timeout
(`timeout`), a connection that could not be made (`connection`), a stream that ends before its
finish (`disconnected`), or a body that is not a stream of OpenAI chunks, or larger than a reply
can be (`bad_stream`). The API key is read from the environment variable a flag names and is sent
as a bearer token, never recorded.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from bench.core.errors import ConfigError
from bench.serve.protocol import GenRequest
from bench.serve.protocol import Trace

POLL_S = 0.05  # `wait` returns at least this often while requests are in flight
MAX_LINE = 1 << 20  # one server-sent event line at most
MAX_BODY = 16 << 20  # one reply's stream at most
MAX_TEXT = 1 << 20  # of its text, kept at most
KEEP_ALIVE_S = 3.0  # an idle connection is reused within this, else closed


@dataclass(frozen=True)
class Endpoint:
    """Where and how requests go: the base URL (no /v1), the API, the model's name, the key."""

    url: str
    api: str = "completions"
    model: str = ""
    key: str | None = None
    timeout_s: float = 600.0

    @property
    def path(self) -> str:
        return "/v1/chat/completions" if self.api == "chat" else "/v1/completions"

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}


def base_url(text: str, flag: str = "--endpoint") -> str:
    """An http(s) URL of a server: its scheme, host, port and path, without a trailing /v1; no
    credentials in it (an API key belongs in an environment variable: a URL is written to the
    report), no query or fragment."""
    try:
        u = urllib.parse.urlsplit(text.strip())
        port = u.port
    except ValueError as exc:
        raise ConfigError(f"{flag}: not a URL ({exc})") from None
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ConfigError(f"{flag}: expected http://HOST[:PORT][/PATH], got {text[:80]!r}")
    if u.username or u.password:
        raise ConfigError(f"{flag}: credentials in the URL would be written to the report; name an environment "
                          "variable holding the key with --api-key-env")
    if u.query or u.fragment:
        raise ConfigError(f"{flag}: the base URL takes no query or fragment")
    path = u.path.rstrip("/")
    path = path[:-3] if path.endswith("/v1") else path
    host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
    return f"{u.scheme}://{host}{f':{port}' if port else ''}{path}"


def is_local(url: str) -> bool:
    """The endpoint is on this machine: a loopback address or localhost."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def probe(url: str, key: str | None = None, timeout_s: float = 10.0) -> dict:
    """What the server at `url` says of itself: its models (/v1/models), their owner, its Server
    header. BenchError (a ConfigError) naming --endpoint when nothing OpenAI-compatible answers."""
    req = urllib.request.Request(url + "/v1/models", headers=Endpoint(url, key=key).headers())
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            data = json.loads(resp.read(MAX_LINE))
            server = resp.headers.get("Server")
    except urllib.error.HTTPError as exc:
        hint = " (a key is needed: --api-key-env VAR)" if exc.code in (401, 403) else ""
        raise ConfigError(f"--endpoint {url}: GET /v1/models answered {exc.code}{hint}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--endpoint {url}: no OpenAI-compatible server answers there "
                          f"({type(exc).__name__}: {str(exc)[:200]})") from None
    cards = data.get("data") if isinstance(data, dict) else None
    if not isinstance(cards, list) or not cards or not all(isinstance(c, dict) for c in cards):
        raise ConfigError(f"--endpoint {url}: GET /v1/models lists no model")
    return {"models": [str(c.get("id"))[:256] for c in cards], "owner": str(cards[0].get("owned_by") or "")[:80]
            or None, "server": (server or "")[:80] or None, "max_model_len": cards[0].get("max_model_len")}


def body(endpoint: Endpoint, request: GenRequest, messages=None) -> dict:
    """The JSON of one streamed request: exact length, greedy, usage and token ids asked for."""
    out = {"model": endpoint.model, "max_tokens": request.max_tokens, "min_tokens": request.min_tokens,
           "ignore_eos": True, "temperature": 0.0, "stream": True, "stream_options": {"include_usage": True},
           "return_token_ids": True}
    if endpoint.api == "chat":
        return {**out, "messages": [{"role": role, "content": text} for role, text in messages or ()]}
    return {**out, "prompt": list(request.prompt)}


class StreamReader:
    """Server-sent events of one reply, fed as they arrive (`feed(bytes, t)`), onto its trace."""

    def __init__(self, trace: Trace, chat: bool, max_chunks: int):
        self.trace, self.chat, self.max_chunks = trace, chat, max_chunks
        self.buffer, self.size, self.finished, self.done = b"", 0, False, False

    def feed(self, data: bytes, t: float) -> bool:
        """Take received bytes; True once the stream ended ([DONE], or a failure)."""
        self.size += len(data)
        if self.size > MAX_BODY:
            return self._bad()
        self.buffer += data
        while b"\n" in self.buffer and not self.done:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self._line(line.strip(), t)
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

    def _line(self, line: bytes, t: float) -> None:
        if not line.startswith(b"data:"):
            return  # comments, event names, blank lines between events
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
        if isinstance(usage, dict):
            self.trace.new_tokens = _count(usage.get("completion_tokens"))
            self.trace.prompt_tokens = _count(usage.get("prompt_tokens")) or self.trace.prompt_tokens
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
        if len(self.trace.token_s) >= self.max_chunks:
            self._bad()
            return
        self.trace.token_s.append(t)
        self.trace.tokens.extend(ids)
        if len(self.trace.text) < MAX_TEXT:  # a reply's text is kept for the next turn of a conversation
            self.trace.text += text[: MAX_TEXT - len(self.trace.text)]

    def _complete(self) -> None:
        tr = self.trace
        if not tr.token_s:
            tr.fail("bad_stream")
            return
        tr.finish_s = tr.token_s[-1]
        n = max(len(tr.tokens), len(tr.token_s))
        tr.new_tokens = max(tr.new_tokens or 0, n)


def _count(value) -> int | None:
    return value if type(value) is int and 0 <= value < 1 << 31 else None


class HttpClient:
    """The session's client over HTTP: each request a task on an event loop that runs while `wait`
    waits (so the caller's thread is the only one), returning at least every POLL_S."""

    def __init__(self, endpoint: Endpoint, clock, sleep=time.sleep):
        self.endpoint, self.clock, self.sleep = endpoint, clock, sleep
        self.loop = asyncio.new_event_loop()
        self.session = None
        self.tasks: dict[str, asyncio.Task] = {}

    def send(self, request: GenRequest, trace: Trace, messages=None) -> None:
        trace.sent_s = self.clock()
        self.tasks[request.id] = self.loop.create_task(self._one(request, trace, messages))

    def wait(self, until: float) -> list[str]:
        now = self.clock()
        if not self.tasks:
            if math.isinf(until):
                raise RuntimeError("the session waits for requests that were never sent")
            self.sleep(max(0.0, until - now))
            return []
        timeout = max(0.0, min(until - now, POLL_S))
        self.loop.run_until_complete(asyncio.wait(list(self.tasks.values()), timeout=timeout,
                                                  return_when=asyncio.FIRST_COMPLETED))
        ended = [rid for rid, task in self.tasks.items() if task.done()]
        for rid in ended:
            self.tasks.pop(rid).result()  # a bug in _one surfaces here; a failed request is its trace's
        return ended

    def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        if self.tasks:
            self.loop.run_until_complete(asyncio.gather(*self.tasks.values(), return_exceptions=True))
        if self.session is not None:
            self.loop.run_until_complete(self.session.close())
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
        session = await self._session()
        reader = StreamReader(trace, e.api == "chat", max_chunks=4 * request.max_tokens + 16)
        try:
            async with session.post(e.url + e.path, json=body(e, request, messages), headers=e.headers(),
                                    timeout=aiohttp.ClientTimeout(total=e.timeout_s)) as resp:
                if resp.status != 200:
                    trace.fail(f"http_{resp.status}")
                    return
                async for data in resp.content.iter_any():
                    if reader.feed(data, self.clock()):
                        break
            reader.close()
        except asyncio.TimeoutError:
            trace.fail("timeout")
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
            trace.fail("disconnected")
        except aiohttp.ClientError:
            trace.fail("connection")
