"""The engine behind the HTTP server: stepped on a thread of its own while it has work, each event
handed to its request's waiter and to the watchers (the Prometheus metrics, the session's records).

Requests come from the event loop's thread (`submit`, `cancel`); the engine thread only steps. When
a step raises, the requests it held (its rows and its joiners) fail with the reason, the executor's
rows are reset, and the engine goes on with the waiting requests: one request that breaks a step
never breaks the server. The health says `failing` while FAILING_STEPS or more steps in a row have
failed (until one succeeds), and `failed` only where the engine cannot go on at all (an executor
that cannot reset its rows, a fault of the loop itself): then every request in it fails and new ones
are refused. `stop` ends every request not finished with reason `stopped`.
"""

from __future__ import annotations

import collections
import queue
import threading

from bench.serve.protocol import GenRequest, RequestRejected, StepRecord
from bench.serve.protocol import Trace
from bench.serve.session import InProcessClient, add_steps, request_log

FAILING_STEPS = 3  # failed steps in a row after which the health says `failing`
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class EngineLoop:
    def __init__(self, engine, clock, watchers=()):
        self.engine, self.clock, self.watchers = engine, clock, list(watchers)
        self.sinks: dict[str, object] = {}
        self.failure: str | None = None  # why the engine cannot go on (permanent)
        self.failed_steps, self.last_error = 0, None  # steps in a row that raised, and the last one's reason
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="bench-engine", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop stepping (the step under way finishes first), then end every request not finished with
        reason `stopped`: each is answered, and its record closed. A submit is either in before the stop
        (and ended by it) or refused: both take the lock."""
        with self._lock:
            self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        now = self.clock()
        events = self.engine.stop()
        if events:
            self._deliver(StepRecord(self.engine.steps, now, now, 0, 0, 0, events))

    @property
    def failing(self) -> bool:
        return self.failed_steps >= FAILING_STEPS

    def submit(self, request: GenRequest, sink) -> None:
        """Queue a request; sink(events) is called on the engine's thread with its events of each step, in
        their order, at once (a token and the finish it ends with arrive together)."""
        if self.failure is not None:
            raise RequestRejected(f"the engine failed ({self.failure}); restart the server", None, "engine_failed")
        with self._lock:  # its events are not delivered before the watchers know it
            if self._stopping:  # under the lock: no request slips in after stop() ended the engine's
                raise RequestRejected("the server is stopping", None, "server_stopping")
            self.sinks[request.id] = sink
            try:
                self.engine.submit(request)
            except RequestRejected:
                del self.sinks[request.id]
                raise
            for w in self.watchers:
                w.on_submit(request)
        self._wake.set()

    def cancel(self, request_id: str, reason: str = "cancelled") -> None:
        self.engine.cancel(request_id, reason)
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            now = self.clock()
            at = self.engine.wake_at(now)
            if at is None or at > now:
                self._wake.wait(None if at is None else at - now)
                continue
            try:
                record = self._step(now)
                if record is not None:
                    self._deliver(record)
            except Exception as exc:  # noqa: BLE001 - a fault of the loop itself: nothing left can be trusted
                self.failure = f"{type(exc).__name__}: {exc}"[:500]
                self._deliver(StepRecord(self.engine.steps, now, now, 0, 0, 0, self.engine.abort(self.failure)),
                              watchers=False)

    def _step(self, now: float) -> StepRecord | None:
        try:
            record = self.engine.step()
        except Exception as exc:  # noqa: BLE001 - the requests it held fail with the reason, and are told
            return self._recover(now, f"{type(exc).__name__}: {exc}"[:500])
        if record is not None and record.rows:
            self.failed_steps = 0
        return record

    def _recover(self, now: float, detail: str) -> StepRecord:
        self.failed_steps, self.last_error = self.failed_steps + 1, detail
        try:
            events = self.engine.recover(detail)
        except Exception as exc:  # noqa: BLE001 - rows that cannot be reset: the engine cannot go on
            self.failure = f"{detail}; then the executor's rows could not be reset ({type(exc).__name__}: {exc})"[:500]
            events = self.engine.abort(self.failure)
        return StepRecord(self.engine.steps, now, now, 0, 0, 0, events)

    def _deliver(self, record: StepRecord, watchers: bool = True) -> None:
        """The watchers see the step, then each event reaches its request (without the watchers: after
        one of them failed; the records it did not close are closed when the session ends)."""
        by_request: dict[str, list] = {}
        for e in record.events:
            by_request.setdefault(e.request, []).append(e)
        with self._lock:
            for w in self.watchers if watchers else ():
                w.on_step(record)
            sinks = [(self.sinks.get(rid), events) for rid, events in by_request.items()]
            for e in record.events:
                if e.kind == "finish":
                    self.sinks.pop(e.request, None)
        for sink, events in sinks:
            if sink is not None:
                sink(events)


class LocalClient(InProcessClient):
    """The load generator's way to an engine in this process, the engine stepping on a thread of its own
    (the EngineLoop bench serve runs), the session on the caller's: a request is handed over at its
    scheduled time even while a step runs, as a client over HTTP hands it to a server.

    Why not step the engine on the session's thread: torch's intra-op threads, driven from a process's
    main thread, stalled on a shared 2-core box — engine steps of the tiny model with 2 threads took a
    median 31-73 ms and a p99 of 620-680 ms from the main thread, 6 ms and 47-54 ms from a side thread
    (benchmarks/serving_threads.py), and the generator, waiting for each step, sent requests up to
    620 ms late. bench serve always stepped on a side thread. (session.py's single-threaded
    InProcessClient remains for a virtual clock, where the order of events is the test.)"""

    QUIET_S = 60.0  # a wait with nothing due and no event this long checks that the engine's thread lives

    def __init__(self, engine, clock):
        super().__init__(engine, clock)
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.loop = EngineLoop(engine, clock, [self])
        self.loop.start()

    def submit(self, request: GenRequest) -> None:
        self.loop.submit(request, self.events.put)

    def wait(self, until: float) -> list[str]:
        """The requests that ended by `until` (at least one, if any ends before it)."""
        if self.refused:
            out, self.refused = self.refused, []
            return out
        events = self._next(until)
        ended = []
        while events is not None:
            for event in events:
                self.traces[event.request].apply(event)
                if event.kind == "finish":
                    ended.append(event.request)
            events = self._poll()
        return ended

    def _next(self, until: float):
        while True:
            left = until - self.clock()
            try:
                return self.events.get(timeout=min(max(0.0, left), self.QUIET_S))
            except queue.Empty:
                if left <= self.QUIET_S:
                    return None
                if not self.loop.alive:
                    raise RuntimeError("the engine's thread ended with requests in flight") from None

    def _poll(self):
        try:
            return self.events.get_nowait()
        except queue.Empty:
            return None

    def on_submit(self, request: GenRequest) -> None: ...

    def on_step(self, record: StepRecord) -> None:  # the engine's thread; read once the session ended
        if record.rows:
            self.steps.append(record)

    def close(self) -> None:
        self.loop.stop()


class Metrics:
    """The server's Prometheus metrics, in a registry of its own: requests waiting and running,
    tokens generated (a counter, and a rate over the last ten seconds), time to first token from
    each request's arrival (a histogram), requests finished by reason, open connections."""

    WINDOW_S = 10.0

    def __init__(self, engine, clock):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.clock, self.registry = clock, CollectorRegistry()
        r = self.registry
        Gauge("bench_requests_waiting", "requests waiting for a row", registry=r).set_function(lambda: engine.waiting)
        Gauge("bench_requests_running", "requests being decoded", registry=r).set_function(lambda: engine.running)
        self.tokens = Counter("bench_generation_tokens", "tokens generated", registry=r)
        Gauge("bench_generation_tokens_per_second", "tokens generated per second over the last 10 s",
              registry=r).set_function(self.rate)
        self.ttft = Histogram("bench_time_to_first_token_seconds", "from a request's arrival to its first token",
                              buckets=TTFT_BUCKETS, registry=r)
        self.finished = Counter("bench_requests", "requests finished, by reason", ["finish_reason"], registry=r)
        self.arrivals: dict[str, float] = {}
        self.recent: collections.deque = collections.deque()  # (step end, tokens)
        self.connections = Gauge("bench_connections", "open HTTP connections", registry=r)

    def count_connections(self, count) -> None:
        """The connections gauge reads count() (the server's, once it exists)."""
        self.connections.set_function(count)

    def on_submit(self, request: GenRequest) -> None:
        self.arrivals[request.id] = request.arrival_s

    def on_step(self, record: StepRecord) -> None:
        if record.rows:
            self.tokens.inc(record.rows)
            self.recent.append((record.end_s, record.rows))
        for e in record.events:
            if e.kind == "token" and e.request in self.arrivals:
                self.ttft.observe(max(0.0, e.t - self.arrivals.pop(e.request)))
            elif e.kind == "finish":
                self.arrivals.pop(e.request, None)
                self.finished.labels(e.reason).inc()

    def rate(self) -> float:
        now = self.clock()
        while self.recent and self.recent[0][0] < now - self.WINDOW_S:
            self.recent.popleft()
        return sum(n for _, n in self.recent) / self.WINDOW_S

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class Recorder:
    """`bench serve --report`: each request's trace (the first `limit` requests), the engine's steps
    while they are recorded, for the session's report."""

    def __init__(self, limit: int):
        self.limit, self.dropped = limit, 0
        self.traces: dict[str, tuple[Trace, int]] = {}
        self.steps: list[StepRecord] = []
        self.started_s: float | None = None  # when the server began to listen: the session's start, its rates' origin

    def on_submit(self, request: GenRequest) -> None:
        if len(self.traces) >= self.limit:
            self.dropped += 1
            return
        self.traces[request.id] = (Trace(request.arrival_s), len(request.prompt))

    def on_step(self, record: StepRecord) -> None:
        for e in record.events:
            if e.request in self.traces:
                self.traces[e.request][0].apply(e)
        if record.rows and not self.dropped:
            self.steps.append(StepRecord(record.index, record.start_s, record.end_s, record.rows, record.joined,
                                         record.finished))

    def fill(self, repeat, result) -> None:
        """The session's records: a request the process could not finish (the server stopped before it
        did) is closed with the error `server_stopped`; a record the report's model would refuse is left
        out, counted in a warning, so that it does not take the session's others with it."""
        for trace, _ in self.traces.values():
            if not trace.done:
                trace.fail("server_stopped")
        kept, refused = _valid(list(self.traces.values()))
        repeat.requests = request_log([t for t, _ in kept], [n for _, n in kept], session_start_s=self.started_s)
        add_steps(repeat, self.steps)
        if refused:
            result.warn("metrics_failed", f"{len(refused):,} request records are not valid and were left out of the "
                                          f"report (the first: {refused[0]})")
        if self.dropped:
            result.warn("metrics_failed", f"only the first {self.limit:,} requests are in the report; "
                                          f"{self.dropped:,} more were served (raise --record-limit)")


def _valid(records: list[tuple[Trace, int]]) -> tuple[list[tuple[Trace, int]], list[str]]:
    """(the records the report's model takes, why each other one is refused): checked all at once, and
    one by one only where that fails."""
    if _refused(records) is None:
        return records, []
    kept, refused = [], []
    for record in records:
        why = _refused([record])
        if why is None:
            kept.append(record)
        else:
            refused.append(why)
    return kept, refused


def _refused(records: list[tuple[Trace, int]]) -> str | None:
    from bench.model.fields import ModelError, parse, plain
    from bench.model.report import RequestLog

    try:
        parse(RequestLog, plain(request_log([t for t, _ in records], [n for _, n in records])))
    except (ModelError, TypeError) as exc:
        return str(exc)
    return None
