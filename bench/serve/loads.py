"""When each request of a session is sent, and what it asks: the schedule of a ServingPlan.

    open loop     every request (or conversation) at its arrival offset from the session's start
    closed loop   `concurrency` requests in flight: the first ones spread over the ramp-up, then each
                  next one arrives the moment one is answered (its arrival is that answer's time)
    a cap         (`max_concurrency`, an open loop) at most that many in flight: a request that arrives
                  at the cap waits, in arrival order, until one ends; its arrival stays its scheduled
                  time (its latency counts the wait, as a user's would), and `Trace.ready_s` is when a
                  slot freed for it (the load generator's own lateness counts from there)
    conversations turn k + 1 of a conversation arrives `think_s` after turn k was answered (or failed);
                  its prompt is the dialogue so far — every earlier prompt and reply, then the new
                  user turn — cut to its last `context_len` tokens, as a chatbot's context grows
                  and is truncated; for an API that takes messages, the same dialogue as messages
                  (user and assistant turns, the oldest dropped while it would not fit)

A reply's tokens are its ids where the client saw them (in this process; over HTTP from a server
that returns token ids, as vLLM's `return_token_ids` and bench serve do); else its text encoded by
`encode` where there is one; else the reply is left out of the next prompt.
"""

from __future__ import annotations

import heapq
import math
from collections import deque

from bench.serve.plan import ServingPlan
from bench.serve.protocol import GenRequest, Trace


class Schedule:
    def __init__(self, plan: ServingPlan, t0: float, encode=None):
        self.plan, self.encode = plan, encode
        self.total = len(plan.prompts)
        self.traces: list[Trace | None] = [None] * self.total
        self.queue: list[tuple[float, int]] = []
        self.history: dict[int, tuple[list[int], list[tuple[str, str]]]] = {}
        self.cap, self.in_flight = plan.max_concurrency, 0
        self.waiting: deque = deque()  # (request, trace, messages) arrived at the cap, in arrival order
        # when each free slot became free, oldest first (the next sent takes it): every slot free from the start;
        # each end gives one back, several ending together each give their own
        self.freed: deque = deque([-math.inf] * (self.cap or 0))
        if plan.concurrency is None:
            for c, offset in enumerate(plan.arrivals):
                heapq.heappush(self.queue, (t0 + offset, c * plan.turns))
        else:
            first = min(plan.concurrency, self.total)
            for j in range(first):
                heapq.heappush(self.queue, (t0 + j * plan.ramp_s / plan.concurrency, j))
            self.next_index = first

    def next_at(self) -> float:
        """When the next request is due (infinity while the rest wait for answers, or for a slot)."""
        if self.cap is not None and self.in_flight >= self.cap:
            return math.inf
        return self.queue[0][0] if self.queue else math.inf

    def due(self, now: float):
        """(request, trace, messages) of every request due by now (and, under a cap, with a slot free), in
        arrival order."""
        while self.queue and self.queue[0][0] <= now:
            at, i = heapq.heappop(self.queue)
            request, messages = self.ask(i, at)
            trace = self.traces[i] = Trace(at, prompt_tokens=len(request.prompt), turn=self.turn(i),
                                           conversation=i // self.plan.turns if self.plan.turns > 1 else None)
            self.waiting.append((request, trace, messages))
        while self.waiting and (self.cap is None or self.in_flight < self.cap):
            request, trace, messages = self.waiting.popleft()
            if self.cap is not None:
                trace.ready_s = max(trace.arrival_s, self.freed.popleft())
            self.in_flight += 1
            yield request, trace, messages

    def ended(self, rid: str, now: float) -> None:
        """Request `rid` was answered or failed: what follows from it becomes due."""
        i = int(rid)
        trace = self.traces[i]
        end = trace.finish_s if trace.finish_s is not None else now
        if self.cap is not None:
            self.freed.append(end)
        self.in_flight -= 1
        p = self.plan
        if p.concurrency is not None and self.next_index < self.total:
            heapq.heappush(self.queue, (end, self.next_index))
            self.next_index += 1
        elif p.turns > 1 and self.turn(i) < p.turns - 1:
            self.history[i // p.turns] = self.dialogue(i, trace)
            heapq.heappush(self.queue, (end + p.think_s, i + 1))

    # -- what a request asks ------------------------------------------------------------------------
    def turn(self, i: int) -> int:
        return i % self.plan.turns

    def ask(self, i: int, at: float) -> tuple[GenRequest, tuple | None]:
        p = self.plan
        ids, messages = self._prompt(i)
        k = p.new_tokens[i]
        return GenRequest(str(i), tuple(ids), max_tokens=k, min_tokens=k, sampling=p.sampling_of(i), arrival_s=at), \
            messages

    def _prompt(self, i: int) -> tuple[list[int], tuple | None]:
        p = self.plan
        user = list(p.prompts[i])
        text = p.texts[i] if p.texts is not None else None
        if p.turns == 1:
            return user, None if text is None else (("user", text),)
        ids, said = self.history.get(i // p.turns, ([], []))
        ids = (ids + user)[-p.context_len:] if p.context_len else ids + user
        if text is None:
            return ids, None
        return ids, self._fit([*said, ("user", text)])

    def dialogue(self, i: int, trace: Trace) -> tuple[list[int], list[tuple[str, str]]]:
        """The conversation after turn i: its prompt and the reply, as ids and as messages."""
        ids, messages = self._prompt(i)
        reply = list(trace.tokens) or (self.encode(trace.text) if self.encode and trace.text else [])
        said = [] if messages is None else [*messages, ("assistant", trace.text)]
        return ids + reply, said

    def _fit(self, messages: list[tuple[str, str]]) -> tuple:
        """The newest messages that fit the context (by `encode`'s count), the last one always kept."""
        limit, out = self.plan.context_len, list(messages)
        if self.encode is None or not limit:
            return tuple(out)
        while len(out) > 1 and sum(len(self.encode(t)) for _, t in out) > limit:
            out.pop(0)
        return tuple(out)
