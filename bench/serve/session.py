"""A load-generating session: requests sent on their schedule through a client, every token timed.

Open loop (the default): the load does not wait for the server. Arrival times are fixed before the
session starts (a seeded Poisson or gamma process, evenly spaced, or a file), and a request that
arrives while the server is busy waits in its queue, its queueing part of its latency (MLPerf
LoadGen's Server scenario). Latency is counted from the scheduled arrival, not from when the
request went out: the load generator's own lateness (`Trace.sent_s` - arrival) is recorded apart.
Closed loop (`--load concurrency:N`): N requests in flight, the next one arriving when one is
answered (a closed-loop generator never offers a slow server more than it takes). Conversations:
a conversation's next turn arrives `think_s` after its previous answer and carries the dialogue so
far (loads.py).

A client is how the requests reach a server: `send(request, trace, messages)` hands one over and
`wait(until)` lets the server work until `until` or until something happened, whichever is first,
and returns the ids of the requests that ended (answered or failed). `InProcessClient` drives an
engine in this process (on any clock: the run's, or a virtual one in tests); the HTTP client
(http.py) fills the same traces from server-sent chunks. A request that fails is counted with its
reason (`Trace.error`), never fatal to the session.
"""

from __future__ import annotations

import math
import time

from bench.measure.busy import merge_spans
from bench.serve.plan import ServingPlan
from bench.model.report import RequestLog
from bench.serve.loads import Schedule
from bench.serve.protocol import GenRequest, RequestRejected, StepRecord, Trace

class InProcessClient:
    """The load generator's way to an engine in this process: `wait` runs one engine step when the
    engine has work, else sleeps until `until` or until the engine wants to run."""

    def __init__(self, engine, clock, sleep=time.sleep):
        self.engine, self.clock, self.sleep = engine, clock, sleep
        self.traces: dict[str, Trace] = {}
        self.steps: list[StepRecord] = []
        self.refused: list[str] = []

    def send(self, request: GenRequest, trace: Trace, messages=None) -> None:
        trace.sent_s = self.clock()
        try:
            self.submit(request)
        except RequestRejected as exc:
            trace.fail(f"rejected_{exc.code}")
            self.refused.append(request.id)
            return
        self.traces[request.id] = trace

    def submit(self, request: GenRequest) -> None:
        self.engine.submit(request)

    def wait(self, until: float) -> list[str]:
        if self.refused:
            out, self.refused = self.refused, []
            return out
        now = self.clock()
        at = self.engine.wake_at(now)
        if at is None or at > now:
            target = min(until, math.inf if at is None else at)
            if math.isinf(target):
                raise RuntimeError("the session waits for requests that were never sent")
            self.sleep(max(0.0, target - now))
            return []
        record = self.engine.step()
        if record is None:
            return []
        if record.rows:
            self.steps.append(record)
        ended = []
        for event in record.events:
            self.traces[event.request].apply(event)
            if event.kind == "finish":
                ended.append(event.request)
        return ended

    def close(self) -> None: ...


def run_session(plan: ServingPlan, client, clock, progress=None, encode=None, t0: float | None = None,
                schedule: Schedule | None = None) -> list[Trace]:
    """Every request of the plan sent on its schedule (offsets from t0, default now); returns their
    traces, in request order. A caller that must keep what was done if the session is cut short
    passes its own `schedule`: its traces are those of the requests that arrived so far."""
    schedule = schedule or Schedule(plan, clock() if t0 is None else t0, encode)
    n, done = schedule.total, 0
    while done < n:
        for request, trace, messages in schedule.due(clock()):
            client.send(request, trace, messages)
        ended = client.wait(schedule.next_at())
        for rid in ended:
            schedule.ended(rid, clock())
        done += len(ended)
        if ended and progress is not None:
            progress(done, n)
    return schedule.traces


def request_log(traces: list[Trace], prompt_tokens: list[int] | None = None, warmup: int = 0,
                cooldown: int = 0, session_start_s: float | None = None, unfinished: str = "unfinished") -> RequestLog:
    """The report's per-request columns from the traces. A request that did not complete has no
    finish time and says why (`error`; one still open — the session was cut short — is closed with
    the code `unfinished`); the first `warmup` and last `cooldown` requests by arrival are outside the
    measured window."""
    for t in traces:
        if not t.done:
            t.fail(unfinished)

    def column(get):
        return [get(t) for t in traces]

    conversations = any(t.conversation is not None for t in traces)
    return RequestLog(arrival_s=column(lambda t: t.arrival_s), start_s=column(lambda t: t.start_s),
                      first_token_s=column(lambda t: t.token_s[0] if t.token_s else None),
                      finish_s=column(lambda t: t.finish_s if t.error is None else None),
                      prompt_tokens=list(prompt_tokens) if prompt_tokens is not None
                      else column(lambda t: t.prompt_tokens or 0),
                      new_tokens=column(lambda t: max(t.new_tokens or 0, len(t.token_s))),
                      batch=column(lambda t: t.batch), token_s=column(lambda t: list(t.token_s)),
                      sent_s=column(lambda t: t.sent_s), error=column(lambda t: t.error),
                      ready_s=column(lambda t: t.ready_s) if any(t.ready_s is not None for t in traces) else None,
                      measured=window(traces, warmup, cooldown), turn=column(lambda t: t.turn) if conversations else None,
                      session_start_s=session_start_s)


def window(traces: list[Trace], warmup: int, cooldown: int) -> list[bool]:
    """Whether each request is in the measured window: not among the first `warmup` or the last
    `cooldown` by arrival."""
    order = sorted(range(len(traces)), key=lambda i: traces[i].arrival_s)
    outside = set(order[:warmup]) | set(order[len(order) - cooldown:] if cooldown else ())
    return [i not in outside for i in range(len(traces))]


def add_steps(repeat, steps: list[StepRecord]) -> None:
    """Engine steps as a repeat's steps: span, requests finished (samples), tokens made, and FLOPs
    where the executor counts them."""
    for s in steps:
        repeat.step_times_s.append(s.end_s - s.start_s)
        repeat.step_samples.append(s.finished)
        repeat.step_tokens.append(s.rows)
    flops = [s.flops for s in steps]
    if steps and all(f is not None for f in flops):
        repeat.step_flops = (repeat.step_flops or []) + flops


def busy_steps(traces: list[Trace]) -> list[StepRecord]:
    """A client's view of a server's work, where it cannot see the engine's steps (over HTTP): the
    spans in which some request was in flight (sent, not yet ended), cut at every completion; each
    with the completions at its end and the token stamps inside it. Their sum is the time the
    server was busy as the client saw it."""
    finishes = sorted(t.finish_s for t in traces if t.finish_s is not None)
    stamps = sorted(s for t in traces if t.finish_s is not None for s in t.token_s)  # a cut stream made no reply
    steps: list[StepRecord] = []
    for a, b in _busy_spans(traces):
        cuts = sorted({f for f in finishes if a < f <= b} | {b})
        for start, end in zip([a, *cuts[:-1]], cuts, strict=True):
            if end > start:
                steps.append(StepRecord(len(steps), start, end, _count_in(stamps, start, end), 0,
                                        _count_in(finishes, start, end)))
    return steps


def _busy_spans(traces: list[Trace]) -> list[tuple[float, float]]:
    """The union of the requests' spans from send to end (their last stamp where they failed)."""
    return merge_spans((t.sent_s, t.finish_s if t.finish_s is not None else max([t.sent_s, *t.token_s]))
                       for t in traces if t.sent_s is not None)


def _count_in(sorted_values: list[float], a: float, b: float) -> int:
    """How many of the values lie in (a, b]."""
    import bisect

    return bisect.bisect_right(sorted_values, b) - bisect.bisect_right(sorted_values, a)
