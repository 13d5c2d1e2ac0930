"""An open-loop session: requests sent at their arrival times through a client, every token timed.

The load does not wait for the server: arrival times are fixed before the session starts (a seeded
Poisson process or a file), and a request that arrives while the server is busy waits in its queue,
its queueing part of its latency (MLPerf LoadGen's Server scenario; a closed-loop generator, which
sends the next request only when one is answered, never offers a slow server more than it takes).
Latency is counted from the scheduled arrival.

A client is how the requests reach a server: `send(request, trace)` hands one over and `wait(until)`
lets the server work until `until` or until something happened, whichever is first, and returns how
many requests finished. `InProcessClient` drives an engine in this process (on any clock: the run's,
or a virtual one in tests); an HTTP client fills the same traces from server-sent chunks.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from bench.core.arrivals import ServingPlan
from bench.model.report import RequestLog
from bench.serve.protocol import Event, GenRequest, StepRecord


@dataclass
class Trace:
    """What one request went through, on the session's clock."""

    arrival_s: float
    start_s: float | None = None
    token_s: list[float] = field(default_factory=list)  # one stamp per generated token
    tokens: list[int] = field(default_factory=list)
    finish_s: float | None = None
    reason: str | None = None
    batch: int | None = None

    @property
    def done(self) -> bool:
        return self.finish_s is not None

    def apply(self, event: Event) -> None:
        if event.kind == "start":
            self.start_s, self.batch = event.t, event.batch
        elif event.kind == "token":
            self.token_s.append(event.t)
            self.tokens.append(event.token)
        else:
            self.finish_s, self.reason = event.t, event.reason


class InProcessClient:
    """The load generator's way to an engine in this process: `wait` runs one engine step when the
    engine has work, else sleeps until `until` or until the engine wants to run."""

    def __init__(self, engine, clock, sleep=time.sleep):
        self.engine, self.clock, self.sleep = engine, clock, sleep
        self.traces: dict[str, Trace] = {}
        self.steps: list[StepRecord] = []

    def send(self, request: GenRequest, trace: Trace) -> None:
        self.traces[request.id] = trace
        self.engine.submit(request)

    def wait(self, until: float) -> int:
        now = self.clock()
        at = self.engine.wake_at(now)
        if at is None or at > now:
            target = min(until, math.inf if at is None else at)
            if math.isinf(target):
                raise RuntimeError("the session waits for requests that were never sent")
            self.sleep(max(0.0, target - now))
            return 0
        record = self.engine.step()
        if record is None:
            return 0
        if record.rows:
            self.steps.append(record)
        for event in record.events:
            self.traces[event.request].apply(event)
        return sum(event.kind == "finish" for event in record.events)


def plan_request(plan: ServingPlan, i: int, arrival_s: float) -> GenRequest:
    """Request i of a plan: exactly its new tokens (min = max), greedy, as blender-generate."""
    k = plan.new_tokens[i]
    return GenRequest(str(i), plan.prompts[i], max_tokens=k, min_tokens=k, arrival_s=arrival_s)


def run_session(plan: ServingPlan, client, clock, progress=None) -> list[Trace]:
    """Every request of the plan sent at its time (offsets from now); returns their traces."""
    t0 = clock()
    traces = [Trace(t0 + a) for a in plan.arrivals]
    n, sent, done = len(traces), 0, 0
    while done < n:
        now = clock()
        while sent < n and traces[sent].arrival_s <= now:
            client.send(plan_request(plan, sent, traces[sent].arrival_s), traces[sent])
            sent += 1
        finished = client.wait(traces[sent].arrival_s if sent < n else math.inf)
        done += finished
        if finished and progress is not None:
            progress(done, n)
    return traces


def request_log(traces: list[Trace], prompt_tokens: list[int]) -> RequestLog:
    """The report's per-request columns from the traces; a request that did not complete (its client
    went away, or the engine failed) has no finish time."""
    return RequestLog(arrival_s=[t.arrival_s for t in traces], start_s=[t.start_s for t in traces],
                      first_token_s=[t.token_s[0] if t.token_s else None for t in traces],
                      finish_s=[t.finish_s if t.reason in ("stop", "length") else None for t in traces],
                      prompt_tokens=list(prompt_tokens),
                      new_tokens=[len(t.tokens) for t in traces], batch=[t.batch for t in traces],
                      token_s=[list(t.token_s) for t in traces])


def add_steps(repeat, steps: list[StepRecord]) -> None:
    """Engine steps as a repeat's steps: span, requests finished (samples), tokens made."""
    for s in steps:
        repeat.step_times_s.append(s.end_s - s.start_s)
        repeat.step_samples.append(s.finished)
        repeat.step_tokens.append(s.rows)
