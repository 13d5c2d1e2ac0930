"""Open-loop serving: requests arrive on their own schedule, queue, and are served in static batches.

Serving is a scenario of its own, not the step loop: the load does not wait for the device. Arrival
times are fixed before the session starts (a seeded Poisson process or a file); a request that
arrives while the device is busy waits in the queue, and its queueing delay is part of its latency —
the mistake a closed-loop load generator makes is to send the next request only when the last one
is answered, so a slow device is never offered more than it can take. (MLPerf LoadGen's Server
scenario has the same semantics.)

Static batching: when the device is free, the oldest waiting request opens a batch, which waits at
most `batch_wait_s` from that request's arrival for more requests, up to `max_batch`; the batch then
runs to completion (no request joins a running batch — continuous batching is out of scope).

Every time is on the clock given (the run's clock in a real run; a virtual one in tests). The
scheduler owns the clock: `run_batch(indices)` generates for those requests and returns each
one's first-token time and new-token count; it must leave the device synchronized.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from bench.core.arrivals import ServingPlan
from bench.model.report import RequestLog


@dataclass
class Batch:
    start_s: float
    end_s: float
    size: int
    new_tokens: int


def serve(plan: ServingPlan, run_batch, clock, sleep=time.sleep, progress=None) -> tuple[RequestLog, list[Batch]]:
    """One open-loop session: every request of the plan served once. Returns the per-request log
    (times on `clock`) and each batch's span."""
    n = len(plan.arrivals)
    t0 = clock()
    due = [t0 + a for a in plan.arrivals]
    log = RequestLog(arrival_s=list(due), start_s=[None] * n, first_token_s=[None] * n, finish_s=[None] * n,
                     prompt_tokens=list(plan.prompt_tokens), new_tokens=[0] * n, batch=[None] * n)
    batches: list[Batch] = []
    queue: deque[int] = deque()
    nxt = served = 0
    while served < n:
        now = clock()
        while nxt < n and due[nxt] <= now:
            queue.append(nxt)
            nxt += 1
        if not queue:
            sleep(max(0.0, due[nxt] - now))
            continue
        fill_by = due[queue[0]] + plan.batch_wait_s  # the oldest waits this long at most for company
        while len(queue) < plan.max_batch and nxt < n:
            now = clock()
            if due[nxt] <= now:
                queue.append(nxt)
                nxt += 1
                continue
            if now >= fill_by:
                break
            sleep(min(fill_by, due[nxt]) - now)
        members = [queue.popleft() for _ in range(min(plan.max_batch, len(queue)))]
        start = clock()
        first, new = run_batch(members)
        end = clock()
        index = len(batches)
        for i, f, k in zip(members, first, new):
            log.start_s[i], log.first_token_s[i], log.finish_s[i] = start, f, end
            log.new_tokens[i], log.batch[i] = k, index
        batches.append(Batch(start, end, len(members), sum(new)))
        served += len(members)
        if progress is not None:
            progress(served, n)
    return log, batches
