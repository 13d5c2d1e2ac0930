"""The OpenAI-compatible HTTP app (FastAPI) in front of the engine loop.

    POST /v1/completions       prompt as text or token ids; max_tokens defaults to 16 (OpenAI's default)
    POST /v1/chat/completions  messages become the dialogue context (text.py); max_tokens (or
                               max_completion_tokens) defaults to 64 (CHAT_TOKENS), within the decoder
    GET  /v1/models            the one model served
    GET  /health               200 while the engine works; 503 while its steps keep failing (loop.py), or
                               once it cannot go on
    GET  /metrics              Prometheus text (loop.py Metrics)

`stream: true` answers with server-sent events as vLLM sends them: in chat, a role-only chunk first
(with the first token); one chunk per generated token (its text piece; a token without text, such as
end of sequence, gives an empty piece), the last one carrying the finish reason (reply.py: stop
strings end a reply there); then (with stream_options.include_usage) one with the usage — in every
chunk too with `continuous_usage_stats` — then `data: [DONE]`. `usage` counts every generated token.
A client that disconnects, streaming or not, cancels its request and frees its row. Errors are
OpenAI-shaped: 400 (a body that is not JSON or not sent as JSON, a bad or unsupported field, context
too long, max_tokens out of range, stream_options without stream), 404 (unknown model or path), 413 (a
body over 1 MiB), 429 (the queue is full), 500 (its generation failed: in its stream, or as the
answer), 503 (the server is stopping, or its engine cannot go on).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from bench.serve.api import ApiError, ChatRequest, CompletionRequest, Shape, check_content_type, parse, usage
from bench.serve.protocol import GenRequest, QueueFull, RequestRejected, Sampling
from bench.serve.reply import Piece, Reply
from bench.serve.text import BUDGET, RenderBudget, TemplateRefused

MAX_BODY = 1 << 20
COMPLETION_TOKENS = 16  # OpenAI's default max_tokens for completions
CHAT_TOKENS = 64  # chat's default: a reply a person reads (BlenderBot's replies average 18 tokens), not the decoder's
# whole length (512 tokens of the random-init presets' words stream for seconds)
TEXT_THREADS = 4  # renders at once; each bounded by its budget (text.py)
_GONE = object()  # put in a request's queue when its client disconnects


class Service:
    """What the routes need: the engine loop, the text codec, the model's name and limits, the clock;
    a few threads for text (a chat template is code: text.py bounds it, and it runs off the event loop)."""

    def __init__(self, loop, codec, name: str, clock, metrics, budget: RenderBudget = BUDGET):
        self.loop, self.codec, self.name, self.clock, self.metrics = loop, codec, name, clock, metrics
        self.max_source, self.max_tokens = loop.engine.executor.max_source, loop.engine.executor.max_tokens
        self.created = int(time.time())
        self.identity: dict | None = None  # the served model's identity, as bench's reports name it
        self.budget, self.stopping = budget, threading.Event()
        self.text = ThreadPoolExecutor(TEXT_THREADS, thread_name_prefix="bench-text")
        self.rendering = 0  # texts being turned into ids, off the event loop

    def close(self) -> None:
        """The server stops: a render under way ends at its next template line; none starts."""
        self.stopping.set()
        self.text.shutdown(wait=False, cancel_futures=True)

    async def ids(self, body, chat: bool) -> list[int]:
        """The prompt's or the messages' token ids; text is encoded (a chat template rendered) off the
        event loop."""
        if chat:
            return await self._off_loop(self.chat_ids, body.messages)
        prompt = body.prompt
        text = isinstance(prompt, str) or (isinstance(prompt, list) and prompt and isinstance(prompt[0], str))
        return await self._off_loop(self.prompt_ids, prompt) if text else self.prompt_ids(prompt)

    async def _off_loop(self, fn, arg):
        stopping = ApiError(503, "the server is stopping", "server_error", code="server_stopping")
        try:
            future = self.text.submit(fn, arg)
        except RuntimeError:  # the threads were shut down: the server is stopping
            raise stopping from None
        self.rendering += 1
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if future.cancelled() and self.stopping.is_set():  # dropped from the threads' queue by close()
                raise stopping from None
            raise
        except TemplateRefused as exc:
            if exc.code == "server_stopping":
                raise stopping from None
            raise ApiError(400, str(exc), param="messages", code=exc.code) from None
        finally:
            self.rendering -= 1

    # -- a body to an engine request --------------------------------------------------------------
    def prompt_ids(self, prompt) -> list[int]:
        if isinstance(prompt, str):
            return self._encode(prompt)
        if not prompt:
            raise ApiError(400, "prompt: it is empty", param="prompt")
        if isinstance(prompt[0], int):
            return list(prompt)
        if len(prompt) != 1:
            raise ApiError(400, "prompt: one prompt per request (batches of prompts are not supported)", param="prompt")
        return self.prompt_ids(prompt[0])

    def chat_ids(self, messages) -> list[int]:
        if not self.codec.has_text:
            raise ApiError(400, "this model has no tokenizer: use /v1/completions with the prompt as token ids",
                           param="messages")
        return self.codec.chat([(m.role, m.text) for m in messages], self.budget, self.stopping)

    def _encode(self, text: str) -> list[int]:
        if not self.codec.has_text:
            raise ApiError(400, "this model has no tokenizer: send the prompt as a list of token ids", param="prompt")
        return self.codec.encode(text)

    def request(self, body, ids: list[int], chat: bool, rid: str) -> GenRequest:
        if body.model != self.name:
            raise ApiError(404, f"the model {body.model[:100]!r} is not served here; this server serves "
                                f"{self.name!r}", param="model", code="model_not_found")
        # chat's own field only: on a completions body an unknown key is an extra, and pydantic shows extras as
        # attributes, unvalidated (a "max_completion_tokens": "5" reached the engine as a string)
        limit = (body.max_completion_tokens if chat else None) or body.max_tokens
        default = min(self.max_tokens, max(CHAT_TOKENS, body.min_tokens)) if chat else COMPLETION_TOKENS
        temperature, top_p = body.sampling
        return GenRequest(rid, tuple(ids), limit if limit is not None else default, body.min_tokens, body.ignore_eos,
                          Sampling(temperature, top_p, body.seed), arrival_s=self.clock())

    def submit(self, request: GenRequest) -> asyncio.Queue:
        """Queue it with the engine; its events arrive in the returned queue."""
        queue: asyncio.Queue = asyncio.Queue()
        aloop = asyncio.get_running_loop()

        def sink(events):
            try:
                aloop.call_soon_threadsafe(queue.put_nowait, events)
            except RuntimeError:  # the event loop closed (the server stopped): nobody waits for it
                pass

        try:
            self.loop.submit(request, sink)
        except QueueFull as exc:
            raise ApiError(429, str(exc), "rate_limit_error", code="queue_full") from None
        except RequestRejected as exc:
            if exc.code in ("engine_failed", "server_stopping"):
                raise ApiError(503, str(exc), "server_error", code=exc.code) from None
            raise ApiError(400, str(exc), param=exc.param, code=exc.code) from None
        return queue


# -- responses ------------------------------------------------------------------------------------------
def sse(obj) -> str:
    return "data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n\n"


@dataclass(frozen=True)
class Streaming:
    """What a stream carries besides its tokens: the usage last (`include_usage`) or in every chunk
    (`continuous_usage_stats`), each chunk's token ids (`return_token_ids`)."""

    usage_last: bool = False
    usage_each: bool = False
    ids: bool = False

    @classmethod
    def of(cls, body) -> Streaming:
        last, each = body.usage_wanted()
        return cls(last, each, bool(body.return_token_ids))


async def stream(service: Service, request: GenRequest, queue: asyncio.Queue, shape: Shape, how: Streaming,
                 stops: tuple[str, ...] = ()):
    """Server-sent events: chat's role-only chunk, a chunk per token (its id where asked; the finish reason
    on the last), the usage, [DONE]; one step's chunks written at once. Leaving early (the client
    disconnected: Starlette cancels this generator) cancels the request."""
    reply, prompt = Reply(service.codec, stops, request.min_tokens), len(request.prompt)
    try:
        while reply.finish is None:
            pieces = reply.take(await queue.get())
            if reply.stopped:
                service.loop.cancel(request.id, "stop")
            chunks = _chunks(shape, how, reply, pieces, prompt)
            if chunks:
                yield "".join(sse(c) for c in chunks)
        if reply.error is not None:
            yield sse(reply.error.body())
        elif how.usage_last:
            yield sse(shape.usage_chunk(usage(prompt, reply.tokens)))
        yield "data: [DONE]\n\n"
    finally:
        if not reply.engine_done and not reply.stopped:
            service.loop.cancel(request.id)


def _chunks(shape: Shape, how: Streaming, reply: Reply, pieces: list[Piece], prompt: int) -> list[dict]:
    out, n = [], reply.tokens - sum(1 for p in pieces if p.token is not None)
    for p in pieces:
        if shape.chat and n == 0 and p.token is not None:
            out.append(shape.role_chunk(usage(prompt, 0) if how.usage_each else None))
        n += p.token is not None
        ids = ([p.token] if p.token is not None else []) if how.ids else None
        out.append(shape.chunk(p.text, p.finish, ids, usage(prompt, n) if how.usage_each else None))
    return out


async def whole(service: Service, http_request, request: GenRequest, queue: asyncio.Queue, shape: Shape,
                stops: tuple[str, ...] = ()):
    """The whole answer; a client that goes away meanwhile cancels the request."""
    watcher = asyncio.create_task(_put_when_gone(http_request, queue))
    reply = Reply(service.codec, stops, request.min_tokens)
    try:
        while reply.finish is None:
            events = await queue.get()
            if events is _GONE:
                return None
            reply.take(events)
            if reply.stopped:
                service.loop.cancel(request.id, "stop")
        if reply.error is not None:
            raise reply.error
        return shape.whole(reply.text, reply.finish, usage(len(request.prompt), reply.tokens))
    finally:
        watcher.cancel()
        if not reply.engine_done and not reply.stopped:
            service.loop.cancel(request.id)


async def _put_when_gone(http_request, queue: asyncio.Queue) -> None:
    while True:
        message = await http_request.receive()
        if message["type"] == "http.disconnect":
            queue.put_nowait(_GONE)
            return


async def read_body(http_request) -> bytes:
    """The body, at most MAX_BODY bytes (413 beyond, whatever Content-Length says)."""
    declared = http_request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, f"the body is larger than {MAX_BODY:,} bytes")
    chunks, size = [], 0
    try:
        async for chunk in http_request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise ApiError(413, f"the body is larger than {MAX_BODY:,} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # it went away, or was cut for sending too slowly (connections.py): nobody to answer
        raise ApiError(400, "the client went away before its body arrived") from None
    return b"".join(chunks)


# -- the app ----------------------------------------------------------------------------------------------
def create_app(service: Service) -> FastAPI:
    app = FastAPI(title="bench serve", docs_url=None, redoc_url=None, openapi_url=None)
    _errors(app)
    _generation_routes(app, service)
    _status_routes(app, service)
    return app


def _errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(_, exc: HTTPException):
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(ApiError(exc.status_code, str(exc.detail), kind).body(), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(_, exc: Exception):  # a bug: say so without the details
        return JSONResponse(ApiError(500, f"internal error ({type(exc).__name__})", "server_error").body(),
                            status_code=500)


def _generation_routes(app: FastAPI, service: Service) -> None:
    async def generate(http_request: Request, chat: bool):
        check_content_type(http_request.headers.get("content-type"))
        body = parse(await read_body(http_request), ChatRequest if chat else CompletionRequest)
        ids = await service.ids(body, chat)
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        request = service.request(body, ids, chat, rid)
        try:
            queue = service.submit(request)
        except ApiError as exc:
            if chat and exc.param == "prompt":  # a chat body has no prompt: its messages make it
                exc.param, exc.message = "messages", f"the messages make the prompt, and {exc.message}"
            raise
        shape = Shape(chat, rid, service.name, int(time.time()))
        if body.stream:
            return StreamingResponse(stream(service, request, queue, shape, Streaming.of(body), body.stops),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        answer = await whole(service, http_request, request, queue, shape, body.stops)
        return JSONResponse(answer) if answer is not None else Response(status_code=499)

    @app.post("/v1/completions")
    async def completions(http_request: Request):
        return await generate(http_request, chat=False)

    @app.post("/v1/chat/completions")
    async def chat_completions(http_request: Request):
        return await generate(http_request, chat=True)


def _status_routes(app: FastAPI, service: Service) -> None:
    @app.get("/v1/models")
    async def models():
        card = {"id": service.name, "object": "model", "created": service.created, "owned_by": "bench",
                "max_model_len": service.max_source, "max_tokens": service.max_tokens}
        if service.identity is not None:  # what a load generator compares results by (bench/serve/endpoint.py)
            card["bench"] = service.identity
        return {"object": "list", "data": [card]}

    @app.get("/health")
    async def health():
        loop = service.loop
        if loop.failure:
            return JSONResponse({"status": "failed", "reason": loop.failure}, status_code=503)
        if loop.failing:
            return JSONResponse({"status": "failing", "reason": loop.last_error, "failed_steps": loop.failed_steps},
                                status_code=503)
        return {"status": "ok", "waiting": service.loop.engine.waiting, "running": service.loop.engine.running}

    @app.get("/metrics")
    async def metrics():
        data, content_type = service.metrics.exposition()
        return Response(data, media_type=content_type)
