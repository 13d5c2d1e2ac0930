"""Which devices exist: the built-ins, registered here in code, and plug-ins from the `bench.devices`
entry-point group (each names a DeviceSpec). A new device is one folder plus an entry point."""

from __future__ import annotations

from bench.core.errors import BenchError, ConfigError, DeviceUnavailable
from bench.core.registry import discover, load_target
from bench.devices.collectors import Collector, CollectorUnavailable

GROUP = "bench.devices"
BUILTINS = {
    "cpu": "bench.devices.cpu.spec:SPEC",
    "cuda": "bench.devices.cuda.spec:SPEC",
    "hpu": "bench.devices.hpu.spec:SPEC",
}


def available() -> dict[str, str]:
    return discover(GROUP, BUILTINS, "device")


def spec(name: str):
    targets = available()
    if name not in targets:
        raise ConfigError(f"--device: {name!r} is not one of auto, {', '.join(targets)}")
    try:
        return load_target(targets[name])
    except (ImportError, AttributeError) as exc:
        raise BenchError(f"device {name!r} could not be imported from {targets[name]} ({exc})") from None


def specs() -> dict:
    return {name: spec(name) for name in available()}


def detect() -> str:
    """--device auto: the first device present, by each spec's auto_priority (hpu, cuda, cpu)."""
    for s in sorted(specs().values(), key=lambda s: s.auto_priority):
        if probe_reason(s) is None:
            return s.name
    return "cpu"


def probe_reason(s) -> str | None:
    """None where the device is usable here, else why not (torch itself failing to import included)."""
    try:
        return s.probe()
    except ImportError as exc:
        return f"torch not importable ({exc})"
    except DeviceUnavailable as exc:
        return str(exc)


def require(name: str):
    """The spec of a device that must be present here; DeviceUnavailable says what to install."""
    s = spec(name)
    reason = probe_reason(s)
    if reason:
        raise DeviceUnavailable(f"--device {name}: {reason}")
    return s


def make_backend(name: str, options, own=None, local_rank: int = 0, local_world: int = 1):
    """Build and prepare the backend of a device; never falls back silently to another device."""
    backend = spec(name).backend_class()(options, own, local_rank, local_world)
    backend.prepare()
    return backend


def make_watching(name: str, options):
    """A backend that touches no device of `name` and watches the one a server uses (devices/watching.py): the
    worker of a run that only sends HTTP requests."""
    from bench.devices.watching import Watching

    backend = Watching(spec(name), options)
    backend.prepare()
    return backend


def build_collector(spec: dict) -> Collector:
    """Open the collector named by spec['name'], trying the sources its device declares, in order."""
    chain = next((s.collectors[spec["name"]] for s in specs().values() if spec["name"] in s.collectors), None)
    if chain is None:
        raise CollectorUnavailable(f"unknown collector {spec['name']!r}")
    reasons = []
    for target in chain:
        collector = load_target(target)(spec)
        try:
            collector.open()
            collector.fallback_reasons = reasons
            return collector
        except CollectorUnavailable as exc:
            reasons.append(f"{collector.source}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a vendor library's own error: try the next source
            reasons.append(f"{collector.source}: {type(exc).__name__}: {str(exc)[:200]}")
    raise CollectorUnavailable("; ".join(reasons))
