"""The HTTP side of a serving session: the server at --endpoint, or `bench serve` started for the
run (--engine http), and the warm-up over HTTP.

The report says who served (`Result.served_by`). A server on this machine (a loopback address)
is sampled by the run's host telemetry; its process, found by the port it listens on, counts as the
run's own work rather than contention (one the run started is a child of the worker already). The
worker holds no device (it only sends requests: bench/devices/watching.py); the run's telemetry
watches the accelerator the server uses — said by the bench serve it started, held by the process
listening on the endpoint's port, or named with --endpoint-device — and `served_by.device` says which
and how. A remote endpoint's hardware is not sampled, and the result says so.
"""

from __future__ import annotations

import time
import urllib.parse

from bench.core.errors import BenchError
from bench.core.text import terminal_safe
from bench.serve.endpoint import base_url, is_local, probe
from bench.measure.warmup import until_steady
from bench.model.report import ServedBy
from bench.serve.http import Endpoint, HttpClient
from bench.serve.session import run_session
from bench.serve.spawn import LocalServer

REMOTE = "the endpoint is not on this machine: its hardware was not sampled"


def connect(m, o) -> Endpoint:
    """The endpoint of --endpoint, asked what it serves; the result's `served_by` filled."""
    url = base_url(o.endpoint)
    key = o.api_key()
    info = probe(url, key)
    model = o.endpoint_model or info["models"][0]
    if model not in info["models"]:  # it was listed when the run was checked: the server changed since
        raise BenchError(f"--endpoint-model {terminal_safe(model, 80)}: {url} no longer lists it")
    local = is_local(url)
    told = info.get("identity", {}).get(model)
    text = m.wl.text_prompts
    if told is not None:  # bench serve says what it serves: compared with bench's engine on that model
        m.result.params.update(told)
    elif not o.endpoint_serves:  # else the model the user declared it serves (set up by the workload)
        m.result.params["model"] = f"endpoint:{model}"
        if o.api == "completions" and not text:
            m.result.warn("prompts_as_ids", f"{url} is not bench serve and was not declared to serve bench's model "
                                            f"(--endpoint-serves): the prompts went as token ids of bench's own "
                                            f"tokenizer ({m.wl.common.model}), which its model reads as other tokens "
                                            "of the same lengths; send text with --data-file FILE, --data synthetic "
                                            "--data-tokenizer DIR, or --api chat")
    m.result.served_by = ServedBy("http", info["owner"] or info["server"], url, o.api, model, local,
                                  telemetry=None if local else REMOTE)
    if local:
        pid = listening_pid(urllib.parse.urlsplit(url).port or 80)
        m.claim([pid] if pid else [], on_device=1 if pid and m.backend.name != "cpu" else 0)
        named = o.device_identity()
        m.result.served_by.device = watch_server(m, [pid] if pid else [], named=[named] if named else None)
    else:
        m.result.warn("no_server_telemetry", f"{url}: {REMOTE}")
    return Endpoint(url, o.api, model, key, o.request_timeout_s, text)


def start_local(m, o) -> Endpoint:
    """`bench serve` on 127.0.0.1, a free port, the run's model, device and engine options."""
    m.server = LocalServer(m.server_argv)
    url = m.server.start()
    m.claim([m.server.pid], on_device=1 if m.backend.name != "cpu" else 0)  # its CPU and its card are the run's
    model = probe(url)["models"][0]
    m.result.served_by = ServedBy("http", "bench serve", url, o.api, model, True, started_by_run=True,
                                  static_shapes=bool(m.backend.static_shapes))
    m.result.served_by.device = watch_server(m, [m.server.pid], told=m.server.told)
    return Endpoint(url, o.api, model, None, o.request_timeout_s, m.wl.text_prompts)


def watch_server(m, pids: list[int], told: list[dict] | None = None, named: list[dict] | None = None) -> str | None:
    """Have the run's telemetry watch the accelerator the server on this machine uses, and say which and how it
    was found: named with --endpoint-device, said by the bench serve the run started (the collector specs it
    printed), or held by the server's process (the device spec's `cards_of`: by PID). None where the worker
    holds the device itself or the device is no accelerator; a server whose device is not found is said
    (`no_server_telemetry`): the run's accelerator figures would otherwise be of no device at all."""
    backend = m.backend
    spec = getattr(backend, "spec", None)
    if not hasattr(backend, "watch") or spec is None or not spec.accelerator:
        return None
    if named:
        devices, how = named, "named with --endpoint-device"
    elif told:
        collector = next((n for n in spec.collectors if n != "host"), None)
        devices = [d for t in told if t["name"] == collector for d in t["devices"]]
        how = f"said by bench serve (process {pids[0]})" if pids else "said by bench serve"
    elif pids and spec.cards_of is not None:
        devices, how = spec.cards_of(pids)
    else:
        devices, how = [], "the server's process was not found (no process listens on its port here)"
    m.watch(backend.watch(devices))
    if not devices:
        m.result.warn("no_server_telemetry", f"the server's accelerator was not found ({how}): its utilization, power "
                                             "and energy were not sampled; name it with --endpoint-device")
        return f"not found: {how}"
    return f"{', '.join(_identity_text(d) for d in devices)} ({how})"


def _identity_text(device: dict) -> str:
    return " ".join(f"{k} {v}" for k, v in device.items())


def client(m) -> HttpClient:
    """A session's client; where the run started the server, one that watches its process (a server
    that exited or was stopped fails what is in flight at once, not after --request-timeout-s)."""
    server = getattr(m, "server", None)
    return HttpClient(m.endpoint, m.clock.now, watch=server.problem if server is not None else None)


def warm_over_http(m) -> None:
    """The warm-up of an HTTP session: the server's start (--engine http), then full batches of the
    warm-up prompts over HTTP, each timed as a warm-up step."""
    o, n = m.wl.options, m.m.warmup  # None: until the batches' times agree (bench/measure/warmup.py)
    with m.phase("warmup"):
        m.sink.progress("warmup", 0, n)
        t0 = time.perf_counter_ns()
        if m.endpoint is None:
            m.endpoint = start_local(m, o)

        def batch() -> float:
            http, start = client(m), time.perf_counter_ns()
            try:
                traces = run_session(m.warm_plan(), http, m.clock.now)
            finally:
                http.close()
            _warmed(traces, m.endpoint.url)
            return (time.perf_counter_ns() - start) / 1e9

        done = until_steady(batch, n, lambda i: m.sink.progress("warmup", i, n))
        m.repeat.first_step_s = done.times[0] if done.times else None
        m.repeat.warmup_s = (time.perf_counter_ns() - t0) / 1e9
        m.repeat.warmup_steps, m.repeat.warmup_steady = len(done.times), done.steady
    m.wl.start_measuring()


def _warmed(traces, url: str) -> None:
    """A warm-up batch must be answered: a server that fails it (stopped, gone, refusing) would make
    every measured request fail too, each after its own wait."""
    failed = [t.error for t in traces if t.error is not None]
    if failed:
        counts = ", ".join(f"{failed.count(c)} {c}" for c in sorted(set(failed)))
        raise BenchError(f"{url}: the server did not answer the warm-up ({len(failed)} of {len(traces)} requests "
                         f"failed: {counts}); nothing was measured")


def listening_pid(port: int) -> int | None:
    """The process listening on this TCP port here, where it can be seen (psutil; None if not)."""
    try:
        import psutil

        for c in psutil.net_connections(kind="tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
                return c.pid
    except Exception:  # noqa: BLE001 - no psutil, or no right to see the sockets: the server is then other load
        return None
    return None
