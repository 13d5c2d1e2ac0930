"""Workloads come from the `bench.workloads` entry-point group: built-ins and plug-ins alike."""

from __future__ import annotations

from importlib.metadata import entry_points

from bench.core.errors import BenchError

GROUP = "bench.workloads"


def workload_entry_points() -> dict:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load_workload(name: str):
    eps = workload_entry_points()
    try:
        return eps[name].load()
    except KeyError:
        raise BenchError(f"workload {name!r} is not registered in {GROUP}") from None
    except ImportError as exc:
        raise BenchError(f"workload {name!r} could not be imported ({exc})") from None


def load_workloads(names: list[str] | None = None) -> dict:
    """{name: class} for the given names, or every registered workload in name order."""
    names = names or sorted(workload_entry_points())
    return {n: load_workload(n) for n in names}
