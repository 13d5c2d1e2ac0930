"""RunConfig: everything that defines a `bench run`, built from the option groups their owners
declare, frozen once checked. Every check that can run before a run runs here."""

from __future__ import annotations

import errno
import os
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bench.core.errors import ConfigError
from bench.core.options import Options, namespace_values, opt
from bench.devices import registry as devices
from bench.launch import catalog
from bench.devices.options import DeviceOptions
from bench.launch.options import LaunchOptions, OutputOptions
from bench.measure.options import MeasureOptions
from workloads.common import PRESETS, CommonOptions


@dataclass(frozen=True)
class PresetOptions(Options):
    title = "preset"

    preset: str = opt("tiny", "tiny: a 363k-parameter config, batch 8, the shipped dialogue data — a smoke run; "
                              "seed: the seed project's BlenderBot-90M (87,508,992 parameters), batch 24, 163 "
                              "context + 18 label tokens", choices=tuple(PRESETS))


@dataclass(frozen=True)
class WhatOptions(PresetOptions):
    title = "what to run"

    workload: tuple[str, ...] | None = opt(None, "repeatable; default: every registered workload (`bench list`)",
                                           metavar="NAME")


@dataclass(frozen=True)
class RunConfig:
    preset: str
    workloads: tuple[str, ...]
    device: DeviceOptions
    device_own: Options | None  # the chosen device's own group (Gaudi's mode and graphs)
    common: CommonOptions
    measure: MeasureOptions
    launch: LaunchOptions
    output: OutputOptions
    workload_options: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    def options_of(self, workload: str) -> Options:
        return self.workload_options[workload]

    def to_json(self) -> dict[str, Any]:
        out = {"preset": self.preset, "workloads": list(self.workloads), "device": self.device.to_json(),
               "device_own": {"of": self._own_device(), **self.device_own.to_json()} if self.device_own else {},
               "common": self.common.to_json(),
               "measure": self.measure.to_json(), "launch": self.launch.to_json(), "output": self.output.to_json()}
        out.update({f"workload:{n}": o.to_json() for n, o in self.workload_options.items()})
        return out

    def _own_device(self) -> str:
        return next(n for n, s in devices.specs().items() if s.options is type(self.device_own))

    @classmethod
    def from_json(cls, data: dict) -> RunConfig:
        own = dict(data.get("device_own") or {})
        owner = own.pop("of", None)
        names = tuple(data["workloads"])
        return cls(data["preset"], names, DeviceOptions.from_json(data["device"]),
                   devices.spec(owner).options.from_json(own) if owner else None,
                   CommonOptions.from_json(data["common"]), MeasureOptions.from_json(data["measure"]),
                   LaunchOptions.from_json(data["launch"]), OutputOptions.from_json(data["output"]),
                   MappingProxyType({n: catalog.load(n).Options.from_json(data.get(f"workload:{n}", {}))
                                     for n in names}))

    def replace(self, **changes) -> RunConfig:
        from dataclasses import replace

        return replace(self, **changes)


# ---- the command line ------------------------------------------------------------------------------

FIXED_GROUPS = (WhatOptions, DeviceOptions, CommonOptions, MeasureOptions, LaunchOptions, OutputOptions)


def option_groups() -> list[type[Options]]:
    """Every group `bench run` takes: the fixed ones, each device's own, each workload's own."""
    groups = list(FIXED_GROUPS[:3])
    for name in catalog.available():
        cls = catalog.load(name).Options
        if cls.declared() and cls not in groups:
            groups.append(cls)
    return groups + device_groups() + list(FIXED_GROUPS[3:])


def scenario_groups() -> dict[type[Options], str]:
    """The option groups of workloads run under a scenario of their own (serving), by name: their
    flags are shown by `bench run --help` only where that name is chosen."""
    return {catalog.load(n).Options: n for n in catalog.available() if catalog.scenario(n).name != "steps"}


def device_groups() -> list[type[Options]]:
    return [s.options for s in devices.specs().values() if s.options is not None and s.options.declared()]


def add_run_arguments(parser, chosen: tuple[str, ...] = ()) -> None:
    """Every group's flags; a scenario's own only shown where `chosen` names its workload (its flags are
    taken all the same, and refused unless it is selected)."""
    hidden = {g for g, name in scenario_groups().items() if name not in chosen}
    add_groups(parser, option_groups(), hidden=hidden)
    if hidden:
        names = ", ".join(sorted(scenario_groups()[g] for g in hidden))
        parser.description = (f"{parser.description} " if parser.description else "") + \
            f"The options of {names} show with --workload: bench run --workload {names.split(', ')[0]} --help."


def add_groups(parser, groups, skip: tuple[str, ...] = (), hidden=frozenset()) -> None:
    taken: dict[str, str] = {"--help": "bench", "-h": "bench"}
    for group in groups:
        group.add_arguments(parser, taken, skip, hidden=group in hidden)


def build(ns) -> RunConfig:
    """The checked, frozen RunConfig from parsed arguments (ConfigError names the flag)."""
    what = WhatOptions.build(namespace_values(ns, WhatOptions))
    known = catalog.available()
    names = tuple(dict.fromkeys(what.workload or known))
    unknown = [w for w in names if w not in known]
    if unknown:
        raise ConfigError(f"--workload: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    device = DeviceOptions.build(namespace_values(ns, DeviceOptions))
    device_own = device_own_options(ns, device.device)
    wl_opts = {n: catalog.load(n).Options.build(namespace_values(ns, catalog.load(n).Options), what.preset)
               for n in names}
    _flags_without_effect(ns, names)
    return RunConfig(what.preset, names, device, device_own,
                     CommonOptions.build(namespace_values(ns, CommonOptions), what.preset),
                     MeasureOptions.build(namespace_values(ns, MeasureOptions), what.preset),
                     LaunchOptions.build(namespace_values(ns, LaunchOptions)),
                     OutputOptions.build(namespace_values(ns, OutputOptions)), MappingProxyType(wl_opts))


def device_own_options(ns, device: str):
    """The chosen device's own options; another device's flags are an error, not ignored."""
    chosen = None
    for name, spec in devices.specs().items():
        if spec.options is None:
            continue
        given = {k: v for k, v in namespace_values(ns, spec.options).items() if v not in (None, False)}
        if name == device or (device == "auto" and given):
            chosen = spec.options.build(given)
        elif given:
            flags = ", ".join(spec.options.flag_of(k) for k in given)
            raise ConfigError(f"{flags}: only applies to --device {name}, not {device}")
    return chosen


def _flags_without_effect(ns, names) -> None:
    for name in catalog.available():
        if name in names or catalog.load(name).Options in {catalog.load(n).Options for n in names}:
            continue
        given = namespace_values(ns, catalog.load(name).Options)
        if given:
            flags = ", ".join(catalog.load(name).Options.flag_of(k) for k in given)
            raise ConfigError(f"{flags}: only affects {name}, which is not selected (--workload)")


# ---- before anything runs ---------------------------------------------------------------------------

def resolve_device(cfg: RunConfig) -> RunConfig:
    """--device auto becomes the device found here; a named device must be present."""
    name = devices.detect() if cfg.device.device == "auto" else cfg.device.device
    spec = devices.require(name)
    own = cfg.device_own
    if own is not None and cfg.device.device == "auto" and spec.options is not type(own):
        owner = next(n for n, s in devices.specs().items() if s.options is type(own))
        flags = "/".join(type(own).flag_of(k) for k, v in own.to_json().items() if v not in (None, False))
        raise ConfigError(f"{flags}: --device auto found no {owner} and picked {name}")
    if own is None and spec.options is not None:
        own = spec.options.build({})
    return cfg.replace(device=cfg.device.replace(device=name), device_own=own)


def check_before_run(cfg: RunConfig) -> RunConfig:
    """Resolve the device and refuse, before any work, what cannot run: device x precision, modes,
    lengths against the model's positions, the model path, missing extras, an unwritable --out,
    more ranks than devices. Returns the config with the device resolved."""
    cfg = resolve_device(cfg)
    spec = devices.spec(cfg.device.device)
    spec.check(cfg.device, cfg.device_own, cfg.common, [catalog.load(n) for n in cfg.workloads])
    check_compile(cfg)
    for name in cfg.workloads:
        catalog.load(name).check(cfg.common, cfg.options_of(name), spec)
    _check_ranks(cfg, spec)
    check_rendezvous(cfg.launch)
    check_writable(cfg.output.out)
    check_temporary()
    return cfg


def check_compile(cfg: RunConfig) -> None:
    """--compile with a workload that runs eager is refused, saying why."""
    for name in cfg.workloads if cfg.device.compile else ():
        why = catalog.load(name).eager
        if why:
            raise ConfigError(f"--compile: {why} ({name} would not be compiled); drop --compile, or run the other "
                              "workloads apart")


def check_temporary() -> None:
    """The run's events and samples go to the temporary directory: it must take a file."""
    try:
        with tempfile.TemporaryDirectory(prefix="bench-probe-") as d, open(os.path.join(d, "probe"), "wb") as fh:
            fh.write(b"bench probe\n" * 16)
    except (OSError, FileNotFoundError) as exc:
        where = os.environ.get("TMPDIR") or "the system default"
        raise ConfigError(f"the temporary directory ({where}) cannot take a file: "
                          f"{getattr(exc, 'strerror', None) or exc}; set TMPDIR to a writable directory") from None


def check_rendezvous(launch) -> None:
    """On node 0 the rendezvous store listens on the port on every interface: it must be free here
    (torchrun would fail with a traceback after the other nodes joined). Other nodes only connect."""
    if not launch.distributed or not launch.rdzv_endpoint or launch.node_rank != 0:
        return
    port = int(launch.rdzv_endpoint.rpartition(":")[2])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free to listen on
        try:
            s.bind(("", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"--rdzv-endpoint: port {port} is already in use on this machine (another "
                                  "run?); choose a free port") from None
            raise ConfigError(f"--rdzv-endpoint: cannot listen on port {port} here ({exc.strerror or exc})") from None


def _check_ranks(cfg: RunConfig, spec) -> None:
    present = spec.count()
    for n in cfg.launch.scaling or (cfg.launch.nproc,):
        if present is not None and n > present:
            raise ConfigError(f"--nproc {n}: only {present} {spec.name} device(s) on this node")


def check_writable(path: str) -> None:
    """Refuse an output directory we cannot write to before anything runs."""
    target = Path(path)
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target, prefix=".bench-probe-"):
            pass
    except OSError as exc:
        raise ConfigError(f"--out: cannot write to {path!r} ({exc.strerror or exc}); "
                          "choose a directory you can write to") from None
