"""Serving as a measured scenario: the runner's phases (setup, warm-up, measure, verify) around an
engine instead of a step loop.

`ServingMeasurement` (bench run --workload blender-serve): the warm-up builds the executor over the
workload's model, runs every shape bucket where the device needs static shapes, then closed-loop
full batches; the measured part is an open-loop session (session.py) through the in-process
client. Each engine step is recorded as a step (its span between synchronized clock reads, the
requests it finished and the tokens it made), every request's times and tokens in the request log.

`ApiMeasurement` (bench serve): the same warm-up, then the HTTP server until it is stopped; with
`--report`, the requests it answered are the session's records.

Graph compiles are counted per phase by the runner's phases (bench/measure/compiles.py), as for every
workload; one while measuring is a `compiled_while_measuring` warning (a shape the warm-up did not cover).
"""

from __future__ import annotations

import time

from bench.measure.runner import Measurement
from bench.serve.blender import BlenderExecutor
from bench.serve.engine import Engine
from bench.serve.protocol import GenRequest
from bench.serve.session import InProcessClient, add_steps, request_log, run_session


class ServingMeasurement(Measurement):
    """One repeat of a serving workload: warm the engine, then serve the workload's plan."""

    warm_tokens = None  # tokens per warm-up request (None: the workload's --new-tokens)

    def limits(self) -> dict:
        """The executor's shape limits: --max-batch rows, --context-len prompts, --new-tokens outputs."""
        c = self.wl.common
        return {"max_rows": self.wl.options.max_batch, "max_source": c.context_len, "max_tokens": c.new_tokens}

    def new_engine(self, **overrides) -> Engine:
        o = self.wl.options
        settings = {"batching": o.batching, "max_batch": o.max_batch, "max_tokens_in_flight": o.max_tokens_in_flight,
                    "batch_wait_s": o.batch_wait_ms / 1000, **overrides}
        return Engine(self.executor, self.clock.now, sync=self.backend.synchronize, **settings)

    def _warmup(self) -> None:
        n = self.m.warmup or 0
        with self.phase("warmup"):
            self.sink.progress("warmup", 0, n)
            t0 = time.perf_counter_ns()
            self.executor = BlenderExecutor(self.wl.model, self.backend, precision=self.wl.common.precision,
                                            **self.limits())
            self.executor.warmup()
            times = []
            for i in range(n):
                times.append(self._warm_batch(i))
                self.sink.progress("warmup", i + 1, n)
            self.repeat.first_step_s = times[0] if times else None
            self.repeat.warmup_s = (time.perf_counter_ns() - t0) / 1e9
        self.backend.reset_peak_memory()
        self.wl.start_measuring()

    def _warm_batch(self, i: int) -> float:
        """A full batch of the warm-up prompts, closed-loop, through a throwaway engine: seconds."""
        engine = self.new_engine(batching="continuous")
        k = min(self.warm_tokens or self.wl.common.new_tokens, self.executor.max_tokens)
        for j, prompt in enumerate(self.wl.warm_prompts):
            engine.submit(GenRequest(f"warm-{i}-{j}", tuple(prompt[: self.executor.max_source]), k, k))
        self.backend.synchronize()
        t0 = time.perf_counter_ns()
        while engine.running or engine.waiting:
            engine.step()
        self.backend.synchronize()
        return (time.perf_counter_ns() - t0) / 1e9

    def _steps(self) -> None:
        rep, plan = self.repeat, self.wl.serving_plan()
        client = InProcessClient(self.new_engine(), self.clock.now)
        self.sink.progress("measure", 0, len(plan.arrivals))
        with self.timed_window(busy_only=True):
            try:
                traces = run_session(plan, client, self.clock.now,
                                     progress=lambda done, total: self.sink.progress("measure", done, total))
                rep.requests = request_log(traces, plan.prompt_tokens)
            finally:
                add_steps(rep, client.steps)


class ApiMeasurement(ServingMeasurement):
    """`bench serve`: the engine warmed as for a serving run, then the OpenAI-compatible HTTP server
    until SIGTERM or Ctrl-C (in-flight requests drained first)."""

    warm_tokens = 8

    def __init__(self, *args, server, **kwargs):
        super().__init__(*args, **kwargs)
        self.server = server

    def limits(self) -> dict:
        """Prompts up to --context-len, outputs up to the model's decoder positions."""
        return {**super().limits(), "max_tokens": self.wl.config.max_position_embeddings}

    def _steps(self) -> None:
        from bench.serve.loop import Recorder
        from bench.serve.server import serve_http

        rep = self.repeat
        recorder = Recorder(self.server.record_limit) if self.server.report else None
        engine = self.new_engine(max_waiting=self.server.max_waiting)
        with self.timed_window(busy_only=True):
            try:
                serve_http(engine, self.wl, self.server, self.clock.now, recorder,
                           on_ready=lambda url: self.sink.progress(f"serving {url}", 0, None))
            finally:
                if recorder is not None:
                    recorder.fill(rep, self.result)


def scenario_for(job: dict):
    """The Measurement class of a serving job: the HTTP server for `bench serve`, else a session."""
    if job.get("api") is None:
        return ServingMeasurement
    from bench.serve.options import ServerOptions

    server = ServerOptions.from_json(job["api"])
    return lambda *args, **kwargs: ApiMeasurement(*args, server=server, **kwargs)
