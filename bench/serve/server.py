"""`bench serve`'s HTTP server: uvicorn in front of the app, the engine on its own thread.

Stopping, by signal (every stop signal of bench/measure/signals.py; docs/serving.md says the same):
    drain  SIGTERM, SIGINT (Ctrl-C), SIGHUP, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO: no new
           connections; the requests in flight go on, for at most --drain-s; then stop
    stop   SIGQUIT (Ctrl-\\), SIGXCPU (a CPU-time limit: SIGKILL follows it), SIGPWR (power failing), or
           any second signal during a drain: at once
To stop is to answer every request not finished (503 `server_stopped`, in its stream or as the answer),
then stop the engine; the call returns, so that the session's report is written with every request in
it closed. A stop is the normal end of a session, not an interruption. uvicorn's own signal handling
(SIGINT and SIGTERM only, raised again once it has shut down) is replaced, and so is its shutdown
(which cancels the responses still running after its timeout, with a traceback each).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from bench.core.errors import BenchError
from bench.measure.signals import redirected
from bench.serve.app import Service, create_app
from bench.serve.connections import protocol_class
from bench.serve.endpoint import IDENTITY_KEYS
from bench.serve.loop import EngineLoop, Metrics
from bench.serve.options import FILES_BESIDE
from bench.serve.text import load_codec

STOP_NOW = ("SIGQUIT", "SIGXCPU", "SIGPWR")  # every other stop signal drains
FINISH_S = 10.0  # once stopped, how long the last answers may take to be written before their connections are cut
POLL_S = 0.05


def make_service(engine, codec, name: str, clock, recorder=None) -> Service:
    """The app's service over an engine: the engine loop (not started), its metrics and records."""
    metrics = Metrics(engine, clock)
    loop = EngineLoop(engine, clock, [metrics] + ([recorder] if recorder is not None else []))
    return Service(loop, codec, name, clock, metrics)


def serve_http(engine, wl, options, clock, recorder=None, on_ready=None) -> None:
    """Serve until stopped (see the module's docstring). wl: the blender-serve workload, set up."""
    codec = load_codec(wl.served)
    service = make_service(engine, codec, options.served_model_name or wl.served.name(), clock, recorder)
    service.identity = {k: wl.served.identity.get(k) for k in IDENTITY_KEYS}
    open_files(options.connection_limit + FILES_BESIDE)
    server = bench_server(uvicorn_config(create_app(service), options), service, options.drain_s, on_ready)
    service.loop.start()
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot listen
        raise BenchError(f"--host {options.host} --port {options.port}: could not listen there (in use, or not "
                         "an address of this machine)") from None
    finally:
        service.close()
        service.loop.stop()


def uvicorn_config(app, options, **overrides):
    """uvicorn's settings for the app: its connections bounded apart from its requests (connections.py;
    no `limit_concurrency`, which counts connections against the queue), no WebSocket, logs of warnings
    only, no lifespan."""
    import uvicorn

    settings = dict(host=options.host, port=options.port, log_level="warning", access_log=False, lifespan="off",
                    http=protocol_class(options.connection_limit, options.client_timeout_s),
                    timeout_keep_alive=options.keep_alive_s, ws="none")
    logging.getLogger("uvicorn.error").addFilter(_quiet_cuts)
    return uvicorn.Config(app, **{**settings, **overrides})


def bench_server(config, service: Service, drain_s: float, on_ready=None):
    """uvicorn's Server, stopping as the module's docstring says, telling `on_ready(url)` once it listens
    (with the port it got for --port 0)."""
    import uvicorn

    class BenchServer(uvicorn.Server):
        stop_now = False

        @contextlib.contextmanager
        def capture_signals(self):
            with redirected(self.signalled):
                yield

        def signalled(self, signum: int) -> None:
            if self.should_exit or signal.Signals(signum).name in STOP_NOW:
                self.stop_now = True
            self.should_exit = True

        async def startup(self, sockets=None):
            await super().startup(sockets)
            service.metrics.count_connections(lambda: len(self.server_state.connections))
            if self.started and on_ready is not None:
                host, port = self.servers[0].sockets[0].getsockname()[:2]
                on_ready(f"http://{host}:{port}")

        async def shutdown(self, sockets=None):
            await stop_serving(self, service, drain_s)

    return BenchServer(config)


async def stop_serving(server, service: Service, drain_s: float) -> None:
    """No new connections; idle ones closed; the requests in flight drained (for at most drain_s, unless
    told to stop now); then every request not finished answered `server_stopped` and the engine stopped;
    the answers written (for at most FINISH_S), then what is left cut."""
    state = server.server_state
    for listener in server.servers:
        listener.close()
    for connection in list(state.connections):
        connection.shutdown()  # uvicorn's: closes an idle one, and a busy one after its response
    await _until(lambda: not state.tasks or server.stop_now, drain_s)
    service.close()
    await asyncio.to_thread(service.loop.stop)
    await _until(lambda: not state.tasks, FINISH_S)
    for connection in list(state.connections):  # a client that does not read its answer
        connection.transport.abort()
    await _until(lambda: not state.tasks, FINISH_S)
    for task in list(state.tasks):
        task.cancel()


def open_files(n: int) -> None:
    """Raise the soft limit on open files to n where it is lower (up to the hard limit, which
    ServerOptions.check holds n within)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n if hard == resource.RLIM_INFINITY else min(n, hard), hard))


async def _until(done, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not done() and loop.time() < end:
        await asyncio.sleep(POLL_S)


def _quiet_cuts(record: logging.LogRecord) -> bool:
    """uvicorn logs a response task cancelled (the last resort of a stop) with a traceback: one line instead."""
    if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
        record.msg, record.args, record.exc_info = "a response was cut off when the server stopped", (), None
    return True
