"""The configuration of the `bench serve` command: one in-process repeat of the serving scenario
(bench/serve/scenario.py) whose measured part is the HTTP server, built from the option groups their
owners declare. The model is checked by the served workload's own check (its `servable`), with no
load generator built."""

from __future__ import annotations

import errno
import importlib.util
import socket
from types import MappingProxyType

from bench.core.errors import ConfigError
from bench.core.options import Options, namespace_values
from bench.devices import registry as devices
from bench.devices.options import DeviceOptions
from bench.launch.config import (PresetOptions, RunConfig, add_groups, check_temporary, check_writable,
                                 device_groups, device_own_options, resolve_device)
from bench.launch.options import LaunchOptions, OutputOptions
from bench.measure.options import MeasureOptions, TelemetryOptions
from bench.serve.options import SERVE_UNUSED, EngineOptions, ServeOptions, ServerOptions
from bench.serve.text import check_chat_template, load_codec
from bench.serve.workload import BlenderServe
from workloads.common import CommonOptions

SERVE_WORKLOAD = BlenderServe.name
SERVE_EXTRA = ("fastapi", "uvicorn", "pydantic", "prometheus_client")


def serve_groups() -> list[type[Options]]:
    """The groups `bench serve` takes: model, device, engine, telemetry, the server, output."""
    return [PresetOptions, DeviceOptions, CommonOptions, EngineOptions, *device_groups(), TelemetryOptions,
            ServerOptions, OutputOptions]


def add_serve_arguments(parser) -> None:
    add_groups(parser, serve_groups(), SERVE_UNUSED)


def build_serve(ns) -> tuple[RunConfig, ServerOptions]:
    """(RunConfig of the server's session, ServerOptions) from parsed `bench serve` arguments."""
    preset = PresetOptions.build(namespace_values(ns, PresetOptions)).preset
    device = DeviceOptions.build(namespace_values(ns, DeviceOptions))
    server = ServerOptions.build(namespace_values(ns, ServerOptions))
    hz = TelemetryOptions.build(namespace_values(ns, TelemetryOptions)).sample_hz if server.report else 0.0
    serving = ServeOptions.build(namespace_values(ns, EngineOptions))  # the flags given: none it would ignore
    cfg = RunConfig(preset, (SERVE_WORKLOAD,), device, device_own_options(ns, device.device),
                    CommonOptions.build(namespace_values(ns, CommonOptions), preset),
                    MeasureOptions.build({"repeats": 1, "warmup": 1, "steps": 2, "sample_hz": hz}),
                    LaunchOptions.build({"in_process": True}), OutputOptions.build(namespace_values(ns, OutputOptions)),
                    MappingProxyType({SERVE_WORKLOAD: serving}))
    return cfg, server


def check_before_serve(cfg: RunConfig, server: ServerOptions) -> RunConfig:
    """As check_before_run, for a server: the extra, the device, the model and its chat template, the
    address, the report."""
    missing = [m for m in SERVE_EXTRA if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"bench serve needs the serve extra ({', '.join(missing)} missing): pip install 'bench[serve]'")
    cfg = resolve_device(cfg)
    devices.spec(cfg.device.device).check(cfg.device, cfg.device_own, cfg.common, [BlenderServe])
    BlenderServe.servable().check(cfg.common)
    check_chat_template(load_codec(BlenderServe.servable()(cfg.common)), cfg.common.model)
    check_listen(server.host, server.port)
    if server.report:
        check_writable(cfg.output.out)
        check_temporary()
    return cfg


def check_listen(host: str, port: int) -> None:
    """The server's address must be one this machine can listen on, and the port free."""
    try:
        infos = socket.getaddrinfo(host, port or None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: not an address of this machine ({exc.strerror or exc})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            what = "in use (another server?)" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
            raise ConfigError(f"--host {host} --port {port}: cannot listen there: {what}") from None
