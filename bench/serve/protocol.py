"""The engine's narrow protocol: what a client hands an engine, and what it gets back.

An engine is driven step by step, as MLPerf LoadGen drives a system under test: `submit` queues a
request (first in, first out), `step` runs one iteration — requests that may join do (their encoder
pass and first decoder step happen in it), every running request gets one new token, finished ones
leave — and returns what happened as events stamped on the engine's clock. `wake_at` tells the
driver when the engine next has work, so that it can sleep until then or until the next arrival.

The same protocol serves the open-loop load generator in this process (session.py), the HTTP server
(app.py) and tests on a virtual clock; a client over HTTP sees the same events as server-sent chunks.

Token times: every token of a step is stamped once, after the device finished the step
(`backend.synchronize()`, then the clock). One stamp per generated token per request: time to first
token, inter-token latency and time per output token all follow from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from bench.core.errors import BenchError

FinishReason = Literal["stop", "length", "cancelled", "error", "stopped"]

# Below this temperature a request is greedy, as vLLM treats it (vllm/sampling_params.py, `_SAMPLING_EPS = 1e-5`:
# "if self.temperature < _SAMPLING_EPS: # Zero temperature means greedy sampling"); logits / T of a smaller one
# overflow float32 (1e-39, a subnormal, makes every finite logit infinite).
SAMPLING_EPS = 1e-5


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen: greedy at temperature 0 (below SAMPLING_EPS), else sampled (top-p),
    seeded per request."""

    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None  # None: a fresh seed; the same seed gives the same tokens

    @property
    def greedy(self) -> bool:
        return self.temperature < SAMPLING_EPS


@dataclass(frozen=True)
class GenRequest:
    """One generation: a prompt of token ids, how many tokens, how to choose them."""

    id: str
    prompt: tuple[int, ...]
    max_tokens: int
    min_tokens: int = 0  # end of sequence is not chosen before this many tokens
    ignore_eos: bool = False  # go on past an end-of-sequence token, up to max_tokens
    sampling: Sampling = field(default_factory=Sampling)
    arrival_s: float | None = None  # when it arrived, on the engine's clock (None: when submitted)


@dataclass(frozen=True)
class Event:
    """Something that happened to one request: it started (joined a batch), got a token, or finished."""

    request: str
    kind: Literal["start", "token", "finish"]
    t: float
    token: int | None = None
    reason: FinishReason | None = None
    detail: str | None = None  # why it failed (reason "error")
    batch: int | None = None  # start: the static batch it is in, or the engine step it joined at


@dataclass
class StepRecord:
    """One engine step: its span (between two synchronized clock reads), rows, and events."""

    index: int
    start_s: float
    end_s: float
    rows: int  # requests that got a token in it
    joined: int  # of those, how many joined in it
    finished: int  # requests that finished in it
    events: list[Event] = field(default_factory=list)
    flops: float | None = None  # matmul FLOPs of its real rows and tokens (padding not counted), where counted


class Executor(Protocol):
    """The model side of an engine (a generating workload offers one: workloads/blender_executor.py; a fake in
    tests): rows that each hold one request. Met by shape: the workload does not import this module."""

    max_source: int  # the longest prompt it takes
    max_tokens: int  # the most tokens one request may generate
    vocab_size: int
    eos: int

    def step(self, joining: list[GenRequest]) -> dict[str, int]:
        """Take `joining` into free rows (their encoder pass), then one decode step over every row:
        the next token of each request, the joiners' first included. Leaves the device synchronized."""

    def drop(self, ids: list[str]) -> None:
        """Free the rows of these requests (their caches are no longer read)."""

    # optional: `last_flops`, the matmul FLOPs of the last step on its real rows and tokens;
    # `last_failed`, {request id: why} of the rows the last step could not give a token (logits that are not
    # finite, a sampler that raised): they are not in step()'s tokens, and the engine fails and drops them;
    # `reset()`, free every row, whatever state a step that raised left them in (an engine whose executor has
    # none cannot go on after such a step)


class RequestRejected(BenchError):
    """A request the engine cannot take, with the parameter at fault and an OpenAI-style code."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_request"):
        super().__init__(message)
        self.param, self.code = param, code


class QueueFull(RequestRejected):
    """The waiting queue is at its bound: try again later (HTTP 429)."""

    def __init__(self, bound: int):
        super().__init__(f"the server's queue is full ({bound} waiting requests); retry later", None, "queue_full")


ENGINE_ERRORS = {"cancelled": "cancelled", "error": "engine_error", "stopped": "server_stopped"}


@dataclass
class Trace:
    """What one request went through, on the session's clock."""

    arrival_s: float
    sent_s: float | None = None  # when the load generator handed it over
    ready_s: float | None = None  # under a concurrency cap: when it could be sent (its arrival, or a slot freed)
    start_s: float | None = None  # when it joined a batch (known in this process only)
    token_s: list[float] = field(default_factory=list)  # one stamp per generated token (per chunk over HTTP)
    tokens: list[int] = field(default_factory=list)  # their ids, where the client sees them
    finish_s: float | None = None
    reason: str | None = None
    batch: int | None = None
    error: str | None = None  # why it did not complete: a code (timeout, disconnected, http_503, ...)
    text: str = ""  # the reply's text, where the client gets text
    prompt_tokens: int | None = None
    new_tokens: int | None = None  # tokens generated, as the client counted them (over HTTP: streamed, up to asked)
    usage_tokens: int | None = None  # over HTTP: what the server's usage claimed (compared, not counted)
    streamed: int | None = None  # over HTTP: tokens streamed, past what was asked included
    turn: int = 0
    conversation: int | None = None

    @property
    def done(self) -> bool:
        return self.finish_s is not None or self.error is not None

    def apply(self, event: Event) -> None:
        if event.kind == "start":
            self.start_s, self.batch = event.t, event.batch
        elif event.kind == "token":
            self.token_s.append(event.t)
            self.tokens.append(event.token)
        elif event.reason in ENGINE_ERRORS:
            self.error, self.reason = ENGINE_ERRORS[event.reason], event.reason
        else:
            self.finish_s, self.reason = event.t, event.reason

    def fail(self, code: str) -> None:
        self.error, self.finish_s = code, None
