"""Serving as a measured scenario: the runner's phases (setup, warm-up, measure, verify) around an
engine instead of a step loop.

`ServingMeasurement` (bench run --workload blender-serve): who serves is the workload's choice —
  in-process  the warm-up builds the executor over the workload's model, runs every shape bucket
              where the device needs static shapes, then closed-loop full batches; each engine step
              is recorded as a step (its span between synchronized clock reads, the requests it
              finished, the tokens it made and their FLOPs);
  http        `bench serve` started on a free local port (--engine http: the warm-up is its start,
              which builds and warms its own engine) or a server at --endpoint, then full batches of
              warm-up requests over HTTP; the client cannot see the server's steps, so a step is a
              span in which some request was in flight, cut at each completion (session.busy_steps),
              and the worker's own CPU says nothing of the server's (no CPU ratio).
The measured part is a session (session.py) through the client; every request's times and tokens
go in the request log, and `Result.served_by` says who served.

`ApiMeasurement` (bench serve): the in-process warm-up, then the HTTP server until it is stopped;
with `--report`, the requests it answered are the session's records.

`SERVING` is the scenario launch's table gives blender-serve: the results a run makes (one per
offered rate, or the probes of a capacity search, each chosen from the last result), what it says
before it starts (a search's plan and worst case), and which measurement a job gets.

Graph compiles are counted per phase by the runner's phases (bench/measure/compiles.py), as for every
workload; one while measuring is a `compiled_while_measuring` warning (a shape the warm-up did not cover).
"""

from __future__ import annotations

import functools
import time

from bench.measure.compiles import read_stats
from bench.measure.runner import Measurement
from bench.measure.scenario import Cut, Estimate, Pace, Scenario, repeats_of
from bench.measure.warmup import until_steady
from bench.model.report import Repeat, Result, ServedBy
from bench.serve.arrivals import parse_load, read_arrivals
from bench.serve.engine import Engine
from bench.serve.maths.capacity import MIN_QPS, capacity_plan, capacity_search
from bench.serve.options import ServerOptions
from bench.serve.plan import ServingPlan
from bench.serve.protocol import GenRequest, Sampling
from bench.serve.loads import Schedule
from bench.serve.session import add_steps, busy_steps, request_log, run_session
from bench.serve.workload import BlenderServe

FAILED_SHARE = 0.5  # a session whose measured requests failed beyond this share is a failed result


class ServingMeasurement(Measurement):
    """One repeat of a serving workload: warm the engine (or the server), then serve the plan."""

    warm_tokens = None  # tokens per warm-up request (None: the workload's --new-tokens)

    def __init__(self, *args, server_argv=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.server_argv = server_argv  # `bench serve`'s arguments, for --engine http
        self.server = self.endpoint = None
        self.warm_batches = 0

    @property
    def http(self) -> bool:
        return bool(getattr(self.wl.options, "http", False))

    def limits(self) -> dict:
        """The executor's shape limits: --max-batch rows, --context-len prompts, the longest output."""
        c = self.wl.common
        return {"max_rows": self.wl.options.max_batch, "max_source": c.context_len, "max_tokens": self.wl.max_output()}

    def new_engine(self, **overrides) -> Engine:
        o = self.wl.options
        settings = {"batching": o.batching, "max_batch": o.max_batch, "max_tokens_in_flight": o.max_tokens_in_flight,
                    "batch_wait_s": o.batch_wait_ms / 1000, **overrides}
        return Engine(self.executor, self.clock.now, sync=self.backend.synchronize, **settings)

    def _setup(self) -> None:
        super()._setup()
        o = self.wl.options
        if not self.http:
            self.result.served_by = ServedBy("in-process", local=True,
                                             static_shapes=bool(self.backend.static_shapes))
        elif o.endpoint is not None:
            from bench.serve.remote import connect

            self.endpoint = connect(self, o)
        cut = self.wl.cut_note()
        if cut:
            self.result.warn("prompts_cut", cut)

    def _warmup(self) -> None:
        if self.http:
            from bench.serve.remote import warm_over_http

            return warm_over_http(self)
        n = self.m.warmup  # None: full batches until their times agree (bench/measure/warmup.py)
        with self.phase("warmup"):
            self.sink.progress("warmup", 0, n)
            t0 = time.perf_counter_ns()
            self.executor = self.wl.served.executor(precision=self.wl.common.precision, **self.limits())
            if self.backend.static_shapes:
                self.result.served_by.hpu_graphs = bool(getattr(self.executor, "graphs", False))
            self.executor.warmup()
            done = until_steady(self._warm_batch, n, lambda i: self.sink.progress("warmup", i, n),
                                compiles=lambda: (read_stats(self.backend) or {}).get("graphs"))
            self.repeat.first_step_s = done.times[0] if done.times else None
            self.repeat.warmup_s = (time.perf_counter_ns() - t0) / 1e9
            self.repeat.warmup_steps, self.repeat.warmup_steady = len(done.times), done.steady
        self.backend.reset_peak_memory()
        self.wl.start_measuring()

    def _warm_batch(self) -> float:
        """A full batch of the warm-up prompts, closed-loop, through a throwaway engine: seconds."""
        i, self.warm_batches = self.warm_batches, self.warm_batches + 1
        engine = self.new_engine(batching="continuous")
        k = min(self.warm_tokens or self.wl.common.new_tokens, self.executor.max_tokens)
        plan = self.wl.plan  # the session's sampling (bench serve has no plan: greedy)
        for j, prompt in enumerate(self.wl.warm_prompts):
            engine.submit(GenRequest(f"warm-{i}-{j}", tuple(prompt[: self.executor.max_source]), k, k,
                                     sampling=plan.sampling_of(j) if plan is not None else Sampling()))
        self.backend.synchronize()
        t0 = time.perf_counter_ns()
        while engine.running or engine.waiting:
            engine.step()
        self.backend.synchronize()
        return (time.perf_counter_ns() - t0) / 1e9

    def warm_plan(self) -> ServingPlan:
        """A full batch of the warm-up prompts at once, each of --new-tokens, sent as the session's are (its
        sampling; text where its prompts are text: the session's own first ones)."""
        plan, k = self.wl.plan, self.wl.common.new_tokens
        if plan.as_text:
            n = self.wl.options.max_batch
            prompts = tuple(plan.prompts[i % len(plan.prompts)] for i in range(n))
            texts = tuple(plan.texts[i % len(plan.texts)] for i in range(n))
        else:
            prompts = tuple(tuple(p[: self.wl.common.context_len]) for p in self.wl.warm_prompts)
            # a chat API takes messages: each warm-up prompt's own text (a plan shorter than a batch, as a
            # few conversations' is, left the warm-up without any, and every warm-up request a 400)
            texts = self.wl.served.texts(prompts) if self.wl.options.api == "chat" else None
        return ServingPlan((0.0,) * len(prompts), prompts, (k,) * len(prompts), texts, sampling=plan.sampling,
                           as_text=plan.as_text)

    def client(self):
        if not self.http:
            from bench.serve.loop import LocalClient

            return LocalClient(self.new_engine(), self.clock.now)
        from bench.serve.remote import client

        return client(self)

    def _steps(self) -> None:
        rep, plan, o = self.repeat, self.wl.plan, self.wl.options
        client, cut = self.client(), "session_failed"
        self.sink.progress("measure", 0, len(plan.prompts))
        t0 = self.clock.now()
        schedule = Schedule(plan, t0, self.wl.encode_text)
        with self.timed_window(busy_only=True):
            try:
                run_session(plan, client, self.clock.now, self._progress, schedule=schedule)
            except KeyboardInterrupt:
                cut = "interrupted"  # the requests it finished are kept: the result is partial
                raise
            finally:
                client.close()
                traces = [tr for tr in schedule.traces if tr is not None]  # those that arrived
                rep.requests = request_log(traces, warmup=o.warmup_requests, cooldown=o.cooldown_requests,
                                           session_start_s=t0, unfinished=cut)
                add_steps(rep, busy_steps(traces) if self.http else client.steps)
        judge_requests(rep, self.result)
        judge_lateness(rep, self.result)
        _count_disagreements(traces, self.result)
        if self.http:
            rep.cpu_wall_ratio = rep.threads = None  # the worker only sends: the server's CPU is its own

    def _progress(self, done: int, total: int) -> None:
        self.sink.progress("measure", done, total)

    def run(self):
        try:
            return super().run()
        finally:
            if self.server is not None:  # the server started for this repeat ends with it, whatever happened
                self.server.stop()
                self.server = None


def judge_requests(repeat: Repeat, result: Result, not_failures: tuple[str, ...] = ()) -> None:
    """A serving session's outcome from its requests: complete (status ok; failed requests, if any,
    counted in a warning), or failed when more than FAILED_SHARE of its measured requests failed —
    its figures describe the few that completed, not the server. (Partial, the third outcome, is a
    session cut short: status interrupted, its finished requests kept.) Requests that ended with one of
    `not_failures` are counted in the warning, not in the share."""
    log = repeat.requests
    errors = [e for e in (log.error or []) if e is not None] if log else []
    if not errors:
        return
    shown = ", ".join(f"{errors.count(code)} {code}" for code in sorted(set(errors)))
    result.warn("request_errors", f"{len(errors)} of {len(log.error)} requests failed ({shown})")
    measured = [i for i in range(len(log.arrival_s)) if log.measured is None or log.measured[i]]
    failed = sum(1 for i in measured if log.error[i] is not None and log.error[i] not in not_failures)
    if result.status == "ok" and measured and failed > FAILED_SHARE * len(measured):
        result.status = repeat.status = "failed"
        result.error = repeat.error = (f"{failed} of {len(measured)} measured requests failed ({shown}): more than "
                                       f"{FAILED_SHARE:.0%}; the figures of the {len(measured) - failed} that "
                                       "completed are kept")


LATE_SHARE = 0.1  # a generator later than this share of p99 TTFT (and LATE_FLOOR_S) is said to be late
LATE_FLOOR_S = 0.001


def judge_lateness(repeat: Repeat, result: Result) -> None:
    """A session whose load generator sent requests late beyond the stated bound says so, and which figure
    to trust: TTFT counts from the scheduled arrival, so the lateness is inside it."""
    from bench.serve.maths import records as rec
    from bench.serve.maths.metrics import nearest_rank

    found = rec.records(repeat.requests) if repeat.requests else []
    late = nearest_rank(sorted(v for r in found if (v := rec.late(r)) is not None))
    ttft = nearest_rank(sorted(v for r in found if (v := rec.ttft(r)) is not None))
    if late is None or ttft is None or late <= max(LATE_FLOOR_S, LATE_SHARE * ttft):
        return
    result.warn("generator_late", f"the load generator sent requests up to {late * 1e3:.3g} ms late (p99), "
                                  f"{late / ttft:.0%} of p99 TTFT: the TTFT figures, counted from each request's "
                                  "scheduled arrival, include it; the latencies from the send (bench compare "
                                  "--vllm-json) do not; a quieter machine, or --engine http, gives the load "
                                  "generator a core of its own")


def _count_disagreements(traces, result: Result) -> None:
    from bench.serve.http import count_disagreements

    said = count_disagreements(traces)
    if said:
        result.warn("server_count_disagrees", said)


class ApiMeasurement(ServingMeasurement):
    """`bench serve`: the engine warmed as for a serving run, then the OpenAI-compatible HTTP server
    until a stop signal (server.py: in-flight requests drained first, or cut at once); with --report,
    every request it took is a record, closed whatever ended the session."""

    warm_tokens = 8

    def __init__(self, *args, server, **kwargs):
        super().__init__(*args, **kwargs)
        self.api_server = server

    @property
    def http(self) -> bool:
        return False

    def limits(self) -> dict:
        """Prompts up to --context-len, outputs up to the model's decoder positions."""
        return {**super().limits(), "max_tokens": self.wl.served.positions}

    def _steps(self) -> None:
        from bench.serve.loop import Recorder
        from bench.serve.server import serve_http

        rep, server = self.repeat, self.api_server
        recorder = Recorder(server.record_limit) if server.report else None
        engine = self.new_engine(max_waiting=server.max_waiting)
        with self.timed_window(busy_only=True):
            try:
                serve_http(engine, self.wl, server, self.clock.now, recorder, on_ready=self._ready(recorder))
            finally:
                if recorder is not None:
                    recorder.fill(rep, self.result)
                    judge_requests(rep, self.result, not_failures=("server_stopped", "cancelled"))


    def _ready(self, recorder):
        """What the server does once it listens: say where, and start the session's clock (its rates count
        from it: a server session's requests arrive as its clients send them, from then on)."""
        def ready(url: str) -> None:
            if recorder is not None:
                recorder.started_s = self.clock.now()
            self.sink.progress(f"serving {url}", 0, None)

        return ready


# -- the scenario: which results a run makes, and the measurement of each repeat ------------------------
def variants(options):
    """Each offered rate (--qps R,R,...), the probes of --find-capacity, or the options once."""
    if options.find_capacity:
        plan = capacity_plan(options)
        yield from capacity_search(plan.start_qps, options.max_probes, plan.requests_at)
    elif options.arrivals is not None or not options.qps or not parse_load(options.load).rated:
        yield {}  # a replay, a burst or a closed loop: no offered rate to name it by (a burst read "qps=20")
    else:
        for q in options.qps:
            yield {"qps": (q,)}


def count(options) -> int | None:
    if options.find_capacity:
        return None
    return len(options.qps) if options.arrivals is None and options.qps and parse_load(options.load).rated else 1


def preamble(options) -> str | None:
    """What a capacity search will do, and how long it can take, said before it starts."""
    return capacity_plan(options).text() if options.find_capacity else None


def measurement(job: dict, cfg, options):
    """The HTTP server for `bench serve` (the job carries its options), else a session, with how to
    start `bench serve` where the run serves over HTTP itself (--engine http)."""
    if job.get("api") is not None:
        return functools.partial(ApiMeasurement, server=ServerOptions.from_json(job["api"]))
    from bench.serve.spawn import serve_argv

    argv = serve_argv(cfg, options) if options.engine == "http" and options.endpoint is None else None
    return functools.partial(ServingMeasurement, server_argv=argv)


# -- how long it holds the device, and how to fit it into some seconds ----------------------------------
def arrivals_s(options, pace: Pace) -> float:
    """How long a session's requests take to arrive (plus one request's service for the last): the rate's
    n / qps (ramp-up included), an --arrivals file's last time, conversations' starts and their turns, or a
    closed loop's n requests N at a time at the pace."""
    load = parse_load(options.load)
    if options.arrivals is not None:
        return read_arrivals(options.arrivals)[0][-1] + pace.step_s
    if not load.open:
        return (options.requests or 1) * pace.step_s / load.value + pace.step_s
    if load.kind == "burst":  # all at once: served a batch (or the cap) at a time
        return (options.requests or 1) * pace.step_s / (options.max_concurrency or options.max_batch) + pace.step_s
    qps = options.qps[0] if options.qps else 1.0
    if options.conversations:
        return options.conversations / qps + options.turns * (options.think_time_s + pace.step_s)
    return (options.requests or 1) / qps + options.ramp_up_s / 2 + pace.step_s


def repeat_s(options, measure, pace: Pace, variant=None) -> float:
    """One repeat of one result (an offered rate, a probe): the worker's fixed part and the session."""
    options = options.replace(**{k: tuple(v) if isinstance(v, list) else v for k, v in (variant or {}).items()})
    return pace.overhead_s + arrivals_s(options, pace)


def estimate(options, measure, pace: Pace) -> Estimate:
    """Every offered rate's sessions, or a capacity search's probes: expected if the capacity is near the
    first rate, worst if every probe misses (the rate halving each time)."""
    repeats = repeats_of(measure)
    if options.find_capacity:
        plan = capacity_plan(options)
        per = pace.overhead_s + pace.step_s
        expected = sum(per + plan.requests_at(q) / max(q, MIN_QPS) for q in plan.path(plan.start_qps))
        worst = plan.worst_case_s() + plan.probes * per
        return Estimate(expected * repeats[0], worst * repeats[1], None, repeats[1])
    one = sum(repeat_s(options, measure, pace, v) for v in variants(options))
    return Estimate(one * repeats[0], one * repeats[1], count(options), repeats[1])


def fit(options, measure, pace: Pace, seconds: float):
    """The serving options cut to fit `seconds`: a capacity search's probes shortened (--max-probe-s: a
    probe that then gets fewer than the 459 requests a valid p99 verdict needs is provisional), or each
    offered rate's requests fewer. Conversations, closed loops and --arrivals files are left as given."""
    if estimate(options, measure, pace).expected_s <= seconds:
        return options, []
    if options.find_capacity:
        return _fit_probes(options, measure, pace, seconds)
    if options.arrivals is not None or options.conversations or not parse_load(options.load).rated:
        return options, []
    rates = [v.get("qps", options.qps)[0] for v in variants(options)]
    per_session = seconds / max(1, repeats_of(measure)[0]) - len(rates) * (pace.overhead_s + pace.step_s)
    least = options.warmup_requests + options.cooldown_requests + 2
    n = max(least, int(per_session / sum(1 / q for q in rates)) if per_session > 0 else least)
    if n >= (options.requests or 0):
        return options, []
    return options.replace(requests=n), [Cut("requests", options.requests, n)]


USEFUL_PROBE_S = 10.0  # a shorter probe judges too few requests to be worth its set-up: take fewer probes instead


def _fit_probes(options, measure, pace: Pace, seconds: float):
    """The longest --max-probe-s (to a tenth of a second, at least 1 s) whose expected search fits; where
    that is under USEFUL_PROBE_S, fewer probes (--max-probes, at least 2) of longer ones."""
    for probes in range(options.max_probes, 1, -1):
        fitted = options.replace(max_probes=probes)
        probe_s = _longest_probe(fitted, measure, pace, seconds)
        if probe_s >= min(USEFUL_PROBE_S, options.max_probe_s) or probes == 2:
            break
    cuts = [Cut("probes", options.max_probes, probes)] if probes < options.max_probes else []
    if probe_s < options.max_probe_s:
        cuts.append(Cut("probe_s", options.max_probe_s, probe_s))
    return fitted.replace(max_probe_s=probe_s), cuts


def _longest_probe(options, measure, pace: Pace, seconds: float) -> float:
    def fits(probe_s: float) -> bool:
        return estimate(options.replace(max_probe_s=probe_s), measure, pace).expected_s <= seconds

    lo, hi = 1.0, options.max_probe_s
    if fits(hi):
        return hi
    while hi - lo > 0.1:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return round(lo, 1)


def needs_device(options) -> bool:
    """A session over HTTP (--engine http, --endpoint) only sends requests: the server holds the device."""
    return not options.http


SERVING = Scenario("serving", "req", measurement, variants, count, preamble, BlenderServe, estimate, repeat_s, fit,
                   needs_device)
