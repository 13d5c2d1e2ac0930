"""`bench serve`'s HTTP server: uvicorn in front of the app, the engine on its own thread.

Stopping: SIGTERM or Ctrl-C stop new connections; requests in flight finish (for at most
--drain-s), then the engine stops and the call returns: a drained stop is the normal end of a
session, not an interruption. uvicorn re-raises the signal it caught once it has shut down; that
re-raise is swallowed here, so that the session's report is still written.
"""

from __future__ import annotations

import contextlib
import signal
import threading

from bench.core.errors import BenchError
from bench.serve.app import Service, create_app
from bench.serve.loop import EngineLoop, Metrics
from bench.serve.text import load_codec


# an idle connection is kept this long (uvicorn's default, 5 s, races a client that reuses it at the same
# moment: its next request meets a closed socket)
KEEP_ALIVE_S = 75


def make_service(engine, codec, name: str, clock, recorder=None) -> Service:
    """The app's service over an engine: the engine loop (not started), its metrics and records."""
    metrics = Metrics(engine, clock)
    loop = EngineLoop(engine, clock, [metrics] + ([recorder] if recorder is not None else []))
    return Service(loop, codec, name, clock, metrics)


def serve_http(engine, wl, options, clock, recorder=None, on_ready=None) -> None:
    """Serve until stopped (see the module's docstring). wl: the blender-serve workload, set up."""
    import uvicorn

    codec = load_codec(wl.served)
    service = make_service(engine, codec, options.served_model_name or wl.served.name(), clock, recorder)
    service.identity = {k: wl.served.identity.get(k) for k in ("model", "model_type", "parameters", "config_hash")}
    # connections beyond what the queue and the rows can hold (plus room for health and metrics) get 503
    config = uvicorn.Config(create_app(service), host=options.host, port=options.port, log_level="warning",
                            access_log=False, timeout_graceful_shutdown=options.drain_s, lifespan="off",
                            timeout_keep_alive=KEEP_ALIVE_S,
                            limit_concurrency=options.max_waiting + engine.max_batch + 64)
    server = _ready_server(config, on_ready)
    service.loop.start()
    try:
        with _stop_signals_noted():
            server.run()
    except SystemExit:  # uvicorn exits when it cannot listen
        raise BenchError(f"--host {options.host} --port {options.port}: could not listen there (in use, or not "
                         "an address of this machine)") from None
    finally:
        service.loop.stop()


def _ready_server(config, on_ready):
    """uvicorn's Server, telling `on_ready(url)` once it listens (with the port it got for --port 0)."""
    import uvicorn

    class ReadyServer(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            if self.started and on_ready is not None:
                host, port = self.servers[0].sockets[0].getsockname()[:2]
                on_ready(f"http://{host}:{port}")

    return ReadyServer(config)


@contextlib.contextmanager
def _stop_signals_noted():
    """While uvicorn runs: a stop signal it re-raises after its shutdown is only noted."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.getsignal(s) for s in stops}
    for s in stops:
        signal.signal(s, lambda signum, frame: None)
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
