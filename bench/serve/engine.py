"""The engine: FIFO admission, a batching policy, stop rules and cancellation over an executor.

Policies (the same arrivals can be served by either, so they can be compared):
    continuous  iteration-level batching: at every step, waiting requests join the running batch
                while there is a free row and room in the tokens-in-flight budget; a finished request
                leaves at once, so its row is free for the next step.
    static      a batch is formed only when none runs: the oldest waiting request holds it open for
                up to `batch_wait_s` from its arrival for company, up to `max_batch`; then nothing
                joins until every member has finished.

Admission is first come, first served: a request that does not fit the budget makes the ones
behind it wait too (no overtaking). The budget counts each running request's prompt plus its
max_tokens, the most cache it can come to hold.

A request stops at end of sequence (unless `ignore_eos`; the executor does not choose it before
`min_tokens`) or at `max_tokens`. `submit`, `cancel` and the counts may be called from any thread;
`step`, `recover`, `stop` and `abort` from one driver thread only.

Failures: a row the executor could not give a token (`last_failed`: logits that are not finite, a sampler
that raised) fails that request alone. A step that raises leaves the engine as it was, except that its
joiners are held apart: `recover` then fails every request the step held (the running rows and the
joiners) and resets the executor's rows; the waiting requests stay queued for the next step.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

from bench.serve.protocol import Event, GenRequest, QueueFull, RequestRejected, StepRecord

POLICIES = ("continuous", "static")


@dataclass
class _Live:
    request: GenRequest
    arrival_s: float
    generated: int = 0
    last_s: float | None = None  # when its last token was ready

    @property
    def cost(self) -> int:
        return len(self.request.prompt) + self.request.max_tokens


class Engine:
    def __init__(self, executor, clock, *, batching: str = "continuous", max_batch: int = 8,
                 max_tokens_in_flight: int | None = None, batch_wait_s: float = 0.0, max_waiting: int | None = None,
                 sync=None):
        if batching not in POLICIES:
            raise ValueError(f"batching: {batching!r} is not one of {', '.join(POLICIES)}")
        self.executor, self.clock, self.batching = executor, clock, batching
        self.max_batch, self.budget, self.batch_wait_s = max_batch, max_tokens_in_flight, batch_wait_s
        self.max_waiting = max_waiting
        self._sync = sync or (lambda: None)
        self._lock = threading.Lock()
        self._waiting: deque[_Live] = deque()
        self._running: dict[str, _Live] = {}
        self._cancels: dict[str, str] = {}  # request id -> the reason it ends with
        self._joining: list[_Live] = []  # taken from the queue by the step under way, not yet running
        self.steps = self.batches = 0

    # -- any thread -----------------------------------------------------------------------------------
    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        """Requests holding a row, the joiners of the step under way included."""
        return len(self._running) + len(self._joining)

    def submit(self, request: GenRequest) -> None:
        """Queue a request; RequestRejected (QueueFull) when it cannot be taken."""
        self._check(request)
        arrival = self.clock() if request.arrival_s is None else request.arrival_s
        with self._lock:
            if request.id in self._running or any(w.request.id == request.id for w in self._waiting):
                raise RequestRejected(f"request id {request.id!r} is already in the engine", "id")
            if self.max_waiting is not None and len(self._waiting) >= self.max_waiting:
                raise QueueFull(self.max_waiting)
            self._waiting.append(_Live(request, arrival))

    def cancel(self, request_id: str, reason: str = "cancelled") -> None:
        """Stop a request: it leaves at the next step, with reason `cancelled` (its client went away), or
        `stop` (its client saw a stop string in its text: it finished, at its last token's time)."""
        with self._lock:
            self._cancels.setdefault(request_id, reason)

    def wake_at(self, now: float) -> float | None:
        """When `step` next has work: `now`, a later time (static batching holding a batch open), or
        None (nothing to do until a request arrives)."""
        with self._lock:
            if self._running or self._cancels:
                return now
            if not self._waiting:
                return None
            if self.batching == "static" and len(self._waiting) < self.max_batch:
                return max(now, self._waiting[0].arrival_s + self.batch_wait_s)
            return now

    # -- the driver thread ----------------------------------------------------------------------------
    def step(self) -> StepRecord | None:
        """One iteration (see the module's docstring); None when there was nothing to do."""
        now = self.clock()
        with self._lock:
            events = self._take_cancels(now)
            joining = self._joining = self._admit(now)
        if not self._running and not joining:
            return StepRecord(self.steps, now, now, 0, 0, 0, events) if events else None
        self._sync()
        start = self.clock()
        tokens = self.executor.step([live.request for live in joining])
        self._sync()
        end = self.clock()
        events += self._joined(joining, start)
        finished = self._advance(tokens, end, events)
        record = StepRecord(self.steps, start, end, len(tokens), len(joining), len(finished), events,
                            getattr(self.executor, "last_flops", None))
        self.steps += 1
        return record

    def recover(self, detail: str) -> list[Event]:
        """After a step raised: fail every request it held (running, joining) and reset the executor's
        rows; waiting requests stay queued. Raises what `reset` raises, or TypeError where the executor
        has no `reset` (then nothing can vouch for its rows: `abort`)."""
        reset = getattr(self.executor, "reset", None)
        if reset is None:
            raise TypeError("the executor has no reset(): its rows cannot be trusted after a failed step")
        now = self.clock()
        with self._lock:
            held = self._joining + list(self._running.values())
            self._running.clear()
            self._joining = []
            for live in held:
                self._cancels.pop(live.request.id, None)
        reset()
        self.steps += 1
        return [Event(live.request.id, "finish", now, reason="error", detail=detail) for live in held]

    def stop(self) -> list[Event]:
        """The server stops: every request not finished (waiting, running, joining) ends with reason
        `stopped`; the engine is empty after."""
        return self._end_all("stopped", None)

    def abort(self, detail: str) -> list[Event]:
        """Fail every waiting and running request (the executor failed); the engine is empty after."""
        return self._end_all("error", detail)

    def _end_all(self, reason: str, detail: str | None) -> list[Event]:
        now = self.clock()
        with self._lock:
            lives = list(self._waiting) + self._joining + list(self._running.values())
            self._waiting.clear()
            self._running.clear()
            self._cancels.clear()
            self._joining = []
        reset = getattr(self.executor, "reset", None)
        try:
            if reset is not None:
                reset()
            else:
                self.executor.drop([live.request.id for live in lives])
        except Exception:  # noqa: BLE001 - the rows are given up either way; nobody steps this engine again
            pass
        return [Event(live.request.id, "finish", now, reason=reason, detail=detail) for live in lives]

    # -- inside -----------------------------------------------------------------------------------------
    def _check(self, r: GenRequest) -> None:
        ex = self.executor
        if not r.prompt:
            raise RequestRejected("the prompt is empty", "prompt")
        if len(r.prompt) > ex.max_source:
            raise RequestRejected(f"the prompt has {len(r.prompt)} tokens; this server takes at most {ex.max_source}",
                                  "prompt", "context_length_exceeded")
        if any(not 0 <= t < ex.vocab_size for t in r.prompt):
            raise RequestRejected(f"prompt token ids must be between 0 and {ex.vocab_size - 1}", "prompt")
        if not 1 <= r.max_tokens <= ex.max_tokens:
            raise RequestRejected(f"max_tokens must be between 1 and {ex.max_tokens}, got {r.max_tokens}", "max_tokens")
        if not 0 <= r.min_tokens <= r.max_tokens:
            raise RequestRejected(f"min_tokens must be between 0 and max_tokens ({r.max_tokens}), got {r.min_tokens}",
                                  "min_tokens")
        s = r.sampling
        if not (math.isfinite(s.temperature) and s.temperature >= 0) or not (math.isfinite(s.top_p) and 0 < s.top_p <= 1):
            raise RequestRejected("temperature must be >= 0 and top_p in (0, 1]", "temperature")
        if self.budget is not None and len(r.prompt) + r.max_tokens > self.budget:
            raise RequestRejected(f"prompt + max_tokens = {len(r.prompt) + r.max_tokens} tokens is more than the "
                                  f"server's tokens-in-flight budget ({self.budget})", "max_tokens")

    def _take_cancels(self, now: float) -> list[Event]:
        if not self._cancels:
            return []
        gone = [w for w in self._waiting if w.request.id in self._cancels]
        running = [rid for rid in self._running if rid in self._cancels]
        self.executor.drop(running)  # first: if it raises, they are still running, and fail with the step
        for w in gone:
            self._waiting.remove(w)
        lives = gone + [self._running.pop(rid) for rid in running]
        reasons, self._cancels = self._cancels, {}
        return [Event(live.request.id, "finish", live.last_s or now if reasons[live.request.id] == "stop" else now,
                      reason=reasons[live.request.id]) for live in lives]

    def _admit(self, now: float) -> list[_Live]:
        if self.batching == "static":
            if self._running or not self._waiting:
                return []
            if len(self._waiting) < self.max_batch and now < self._waiting[0].arrival_s + self.batch_wait_s:
                return []
        out: list[_Live] = []
        in_flight = sum(live.cost for live in self._running.values())
        while self._waiting and len(self._running) + len(out) < self.max_batch:
            head = self._waiting[0]
            if self.budget is not None and in_flight + head.cost > self.budget:
                break
            in_flight += head.cost
            out.append(self._waiting.popleft())
        if out and self.batching == "static":
            self.batches += 1
        return out

    def _joined(self, joining: list[_Live], start: float) -> list[Event]:
        group = self.batches - 1 if self.batching == "static" else self.steps
        with self._lock:
            for live in joining:
                self._running[live.request.id] = live
            self._joining = []
        return [Event(live.request.id, "start", start, batch=group) for live in joining]

    def _advance(self, tokens: dict[str, int], end: float, events: list[Event]) -> list[str]:
        """Count each row's new token; the requests that finished with it leave, and so do the rows the
        executor could not give a token (failed alone)."""
        finished = []
        for rid, token in tokens.items():
            live = self._running[rid]
            live.generated += 1
            live.last_s = end
            events.append(Event(rid, "token", end, token=token))
            reason = self._stop(live, token)
            if reason:
                finished.append(rid)
                events.append(Event(rid, "finish", end, reason=reason))
        failed = {rid: why for rid, why in (getattr(self.executor, "last_failed", None) or {}).items()
                  if rid in self._running and rid not in tokens}
        events += [Event(rid, "finish", end, reason="error", detail=why) for rid, why in failed.items()]
        self.executor.drop(finished + list(failed))
        with self._lock:
            for rid in finished + list(failed):
                del self._running[rid]
        return finished

    def _stop(self, live: _Live, token: int) -> str | None:
        r = live.request
        if token == self.executor.eos and not r.ignore_eos and live.generated >= r.min_tokens:
            return "stop"
        return "length" if live.generated >= r.max_tokens else None
