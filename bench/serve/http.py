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
as a bearer token, never recorded, never shown, and never sent elsewhere: no redirect is followed
(a 3xx is `http_3xx`), and no proxy from the environment is used (aiohttp's `trust_env` is off).

Counting: a reply's tokens are what was streamed — its token ids where the chunks carry them, else
one per chunk with text (as vLLM's `bench serve` counts) — and never more than the request asked
for: stamps and ids past that are not kept. The server's `usage.completion_tokens` is a claim,
recorded apart (`Trace.usage_tokens`) and compared (`count_disagreements`), never counted: a server
that says 2,147,483,647 tokens for 4 chunks gets 4.

Waits: every wait on the server has a total deadline — the probe (PROBE_S for the whole of GET
/v1/models, connection to last byte: a server that drips a byte at a time cannot hold it), each
request (`--request-timeout-s`, aiohttp's `ClientTimeout.total`: connection, send and the whole
stream), and a session whose server process is known (`watch`: a server started by the run that
exited or was stopped fails what is in flight at once).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import re
import time
import unicodedata
import urllib.parse
from dataclasses import dataclass, field

from bench.core.errors import ConfigError
from bench.core.text import clip, redact, terminal_safe
from bench.serve.protocol import GenRequest
from bench.serve.protocol import Trace

POLL_S = 0.05  # `wait` returns at least this often while requests are in flight
MAX_LINE = 1 << 20  # one server-sent event line at most
MAX_BODY = 16 << 20  # one reply's stream at most
MAX_TEXT = 1 << 20  # of its text, kept at most
KEEP_ALIVE_S = 3.0  # an idle connection is reused within this, else closed
PROBE_S = 10.0  # GET /v1/models, connection to its last byte
MAX_MODELS = 1000  # models of a listing read at most
WATCH_S = 1.0  # how often a session looks at its server's process (`watch`), at most
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]{1,8192}=*")  # RFC 6750 section 2.1: b64token
_HOST = re.compile(r"[\w.\-]{1,253}")  # a host name (letters of any script, digits, - _ .)
_BAD_URL_CHARS = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")  # controls, format marks, spaces


@dataclass(frozen=True)
class Endpoint:
    """Where and how requests go: the base URL (no /v1), the API, the model's name, the key."""

    url: str
    api: str = "completions"
    model: str = ""
    key: str | None = field(default=None, repr=False)  # never in a repr, a log or an error
    timeout_s: float = 600.0

    @property
    def path(self) -> str:
        return "/v1/chat/completions" if self.api == "chat" else "/v1/completions"

    def headers(self) -> dict:
        return _auth(self.key)


def base_url(text: str, flag: str = "--endpoint") -> str:
    """An http(s) URL of a server: its scheme, host, port and path, without a trailing /v1; no
    credentials in it (an API key belongs in an environment variable: a URL is written to the
    report), no query or fragment, no space or control character anywhere (an ESC, a CR LF)."""
    text = text.strip()
    bad = next((i for i, c in enumerate(text) if unicodedata.category(c) in _BAD_URL_CHARS), None)
    if bad is not None:
        raise ConfigError(f"{flag}: a URL holds no spaces or control characters; this one has {ascii(text[bad])} at "
                          f"character {bad + 1}")
    try:
        u = urllib.parse.urlsplit(text)
        port = u.port
    except ValueError as exc:
        raise ConfigError(f"{flag}: not a URL ({terminal_safe(redact(str(exc)), 120)})") from None
    if u.username is not None or u.password is not None:
        raise ConfigError(f"{flag}: credentials in the URL would be written to the report; name an environment "
                          "variable holding the key with --api-key-env")
    if u.scheme not in ("http", "https") or not u.hostname or not _host_ok(u.hostname):
        raise ConfigError(f"{flag}: expected http://HOST[:PORT][/PATH], got {terminal_safe(text, 80)!r}")
    if u.query or u.fragment or "?" in text or "#" in text:
        raise ConfigError(f"{flag}: the base URL takes no query or fragment")
    path = u.path.rstrip("/")
    path = path[:-3] if path.endswith("/v1") else path
    host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
    return f"{u.scheme}://{host}{f':{port}' if port else ''}{path}"


def _host_ok(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOST.fullmatch(host)) and ".." not in host


def bearer_token(value: str, name: str) -> str:
    """The API key of environment variable `name`, as a bearer token may be (RFC 6750: letters, digits,
    -._~+/ and a trailing =); ConfigError otherwise, never quoting it (a trailing newline or CR LF
    from a file is the usual fault)."""
    if _TOKEN.fullmatch(value):
        return value
    ends = " (it ends with a newline or a space: strip it)" if value != value.rstrip() else ""
    raise ConfigError(f"--api-key-env {name}: its value is not a bearer token (RFC 6750: letters, digits, -._~+/ then "
                      f"=, at most 8192){ends}; the value is not shown")


def is_local(url: str) -> bool:
    """The endpoint is on this machine: a loopback address or localhost."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def probe(url: str, key: str | None = None, timeout_s: float | None = None) -> dict:
    """What the server at `url` says of itself: its models (/v1/models), their owner, its Server
    header. All of it within `timeout_s` (PROBE_S), no redirect followed; ConfigError naming
    --endpoint when nothing OpenAI-compatible answers, or its listing is not one."""
    limit = timeout_s or PROBE_S
    status, server, location, raw = _fetch(url, key, limit)
    if status in (301, 302, 303, 307, 308):
        raise ConfigError(f"--endpoint {url}: GET /v1/models answered {status}, a redirect to {_origin(location)}: "
                          "not followed (the API key must not go to a host not named); give --endpoint the URL of "
                          "the server itself")
    if status != 200:
        hint = " (a key is needed: --api-key-env VAR)" if status in (401, 403) else ""
        raise ConfigError(f"--endpoint {url}: GET /v1/models answered {status}{hint}")
    if len(raw) > MAX_LINE:
        raise ConfigError(f"--endpoint {url}: GET /v1/models answered more than {MAX_LINE >> 20} MiB: not a list of "
                          "models")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON (or not UTF-8), or nested deeper than a parser goes
        raise ConfigError(f"--endpoint {url}: GET /v1/models answered something other than JSON: no "
                          "OpenAI-compatible server answers there") from None
    return _listing(data, url, server)


def _fetch(url: str, key: str | None, limit: float) -> tuple[int, str | None, str | None, bytes]:
    """(status, Server, Location, body up to MAX_LINE + 1 bytes) of GET url/v1/models, within `limit`
    seconds in all: aiohttp's `ClientTimeout.total` covers connection, send and reading the body (aiohttp
    3.14 docs, "Timeouts"), asyncio.wait_for around it; urllib's timeout bounded each read only."""
    import aiohttp

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(_get(url + "/v1/models", key, limit), limit + 1.0))
    except TimeoutError:  # asyncio's and aiohttp's (both are TimeoutError in Python 3.11)
        raise ConfigError(f"--endpoint {url}: GET /v1/models was not answered in full within {limit:g} s (a "
                          "server that is stuck, stopped, or sends its answer a byte at a time)") from None
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        why = terminal_safe(redact(f"{type(exc).__name__}: {exc}", key), 200)
        raise ConfigError(f"--endpoint {url}: no OpenAI-compatible server answers there ({why})") from None
    finally:
        loop.close()


async def _get(target: str, key: str | None, limit: float):
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit)) as session:
        async with session.get(target, headers=_auth(key), allow_redirects=False) as resp:
            chunks, size = [], 0
            async for chunk in resp.content.iter_any():
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_LINE:
                    break
            return resp.status, resp.headers.get("Server"), resp.headers.get("Location"), b"".join(chunks)


def _auth(key: str | None) -> dict:
    return {"Authorization": f"Bearer {key}"} if key else {}


def _origin(location: str | None) -> str:
    """Where a redirect points, as scheme://host:port only (its path or query may carry a token)."""
    try:
        u = urllib.parse.urlsplit(location or "")
        shown = f"{u.scheme}://{u.hostname}{f':{u.port}' if u.port else ''}" if u.hostname else "a path of its own"
    except ValueError:
        shown = "a place that is not a URL"
    return terminal_safe(shown, 120)


def _listing(data, url: str, server: str | None) -> dict:
    """The models of an OpenAI model list (`{"data": [{"id": ...}, ...]}`), each id a name."""
    cards = data.get("data") if isinstance(data, dict) else None
    if not isinstance(cards, list) or not cards:
        raise ConfigError(f"--endpoint {url}: GET /v1/models lists no model (an OpenAI model list is "
                          '{"data": [{"id": NAME, ...}, ...]})')
    models = [_model_id(card, i, url) for i, card in enumerate(cards[:MAX_MODELS])]
    length = cards[0].get("max_model_len")
    return {"models": models, "owner": _label(cards[0].get("owned_by")), "server": _label(server),
            "max_model_len": length if type(length) is int and 0 < length < 1 << 31 else None}


def _model_id(card, i: int, url: str) -> str:
    name = card.get("id") if isinstance(card, dict) else None
    if isinstance(name, str) and 0 < len(name) <= 256 and name.isprintable() and name.strip() == name:
        return name
    raise ConfigError(f"--endpoint {url}: GET /v1/models: entry {i + 1} has no model id that is a name (a string of "
                      "1 to 256 printable characters): not an OpenAI model list")


def _label(value) -> str | None:
    """A name the server gives itself, where it is printable text (at most 80 characters)."""
    return clip(value, 80, "…") if isinstance(value, str) and value.isprintable() and value.strip() else None


def body(endpoint: Endpoint, request: GenRequest, messages=None) -> dict:
    """The JSON of one streamed request: exact length, greedy, usage and token ids asked for."""
    out = {"model": endpoint.model, "max_tokens": request.max_tokens, "min_tokens": request.min_tokens,
           "ignore_eos": True, "temperature": 0.0, "stream": True, "stream_options": {"include_usage": True},
           "return_token_ids": True}
    if endpoint.api == "chat":
        return {**out, "messages": [{"role": role, "content": text} for role, text in messages or ()]}
    return {**out, "prompt": list(request.prompt)}


class StreamReader:
    """Server-sent events of one reply, fed as they arrive (`feed(bytes, t)`), onto its trace; its
    tokens counted as streamed, up to `asked` (what the request asked for)."""

    def __init__(self, trace: Trace, chat: bool, asked: int):
        self.trace, self.chat, self.asked = trace, chat, asked
        self.max_chunks = 4 * asked + 16  # far past what was asked: not a reply to this request
        self.buffer, self.size, self.finished, self.done = b"", 0, False, False
        self.streamed, self.chunks = 0, 0

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
    claims = [t for t in done if t.usage_tokens is not None and t.usage_tokens != t.new_tokens]
    over = [t for t in done if (t.streamed or 0) > t.new_tokens]
    if not claims and not over:
        return None
    parts = []
    if claims:
        parts.append(f"for {len(claims)} of {len(done)} completed requests the server's usage.completion_tokens "
                     f"disagreed with the tokens streamed ({sum(t.usage_tokens for t in claims):,} claimed, "
                     f"{sum(t.new_tokens for t in claims):,} streamed)")
    if over:
        parts.append(f"{len(over)} streamed more tokens than asked ({sum(t.streamed for t in over):,} for "
                     f"{sum(t.new_tokens for t in over):,}); the extra were not counted")
    return "; ".join(parts) + ": the figures count what was streamed, up to what each request asked"


class HttpClient:
    """The session's client over HTTP: each request a task on an event loop that runs while `wait`
    waits (so the caller's thread is the only one), returning at least every POLL_S.

    `watch`, where the server's process is known (one the run started): called at most every
    WATCH_S, it returns why the server can no longer answer (an error code: it exited, or it was
    stopped) or None; from then on what is in flight and what is sent fail at once with that code,
    rather than each waiting out --request-timeout-s."""

    def __init__(self, endpoint: Endpoint, clock, sleep=time.sleep, watch=None):
        self.endpoint, self.clock, self.sleep, self.watch = endpoint, clock, sleep, watch
        self.loop = asyncio.new_event_loop()
        self.session = None
        self.tasks: dict[str, asyncio.Task] = {}
        self.traces: dict[str, Trace] = {}
        self.gone: str | None = None  # why the server cannot answer any more (`watch`)
        self.failed: list[str] = []  # requests failed by `watch`, not yet returned by `wait`
        self.watched = -math.inf

    def send(self, request: GenRequest, trace: Trace, messages=None) -> None:
        trace.sent_s = self.clock()
        if self.gone is not None:
            trace.fail(self.gone)
            self.failed.append(request.id)
            return
        self.traces[request.id] = trace
        self.tasks[request.id] = self.loop.create_task(self._one(request, trace, messages))

    def wait(self, until: float) -> list[str]:
        self._look()
        if self.failed:
            out, self.failed = self.failed, []
            return out
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
            self.traces.pop(rid, None)
            self.tasks.pop(rid).result()  # a bug in _one surfaces here; a failed request is its trace's
        return ended

    def _look(self) -> None:
        """Ask `watch` (at most every WATCH_S of real time) whether the server can still answer; if
        not, fail every request in flight with its code."""
        if self.watch is None or self.gone is not None or time.monotonic() - self.watched < WATCH_S:
            return
        self.watched = time.monotonic()
        self.gone = self.watch()
        if self.gone is None:
            return
        for rid, task in self.tasks.items():
            if not task.done():
                task.cancel()
                self.traces[rid].fail(self.gone)
            self.failed.append(rid)
        self.loop.run_until_complete(asyncio.gather(*self.tasks.values(), return_exceptions=True))
        self.tasks.clear()
        self.traces.clear()

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
        reader = StreamReader(trace, e.api == "chat", request.max_tokens)
        try:
            # no redirect is followed: the key would go with it (aiohttp 3.14 client.py `_request` drops
            # Authorization only when the redirect changes origin; a 3xx here is then `http_3xx`)
            async with session.post(e.url + e.path, json=body(e, request, messages), headers=e.headers(),
                                    timeout=aiohttp.ClientTimeout(total=e.timeout_s), allow_redirects=False) as resp:
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
