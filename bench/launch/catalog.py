"""What `--workload NAME` can run, and which scenario measures each: the registered workloads
(workloads/registry.py) under the steps scenario, and the names this table gives to another
scenario. A scenario's name is run like any workload's; the scenario brings the workload class it
runs (the serving scenario's: bench/serve/workload.py, over blender-generate's model)."""

from __future__ import annotations

from bench.core.errors import BenchError
from bench.core.registry import load_target
from bench.measure.scenario import STEPS, Scenario
from workloads import registry as workloads

SCENARIOS = {"blender-serve": "bench.serve.scenario:SERVING"}


def available() -> dict[str, str]:
    """{name: where it comes from} of every workload and scenario, workloads first."""
    found = workloads.available()
    taken = [n for n in SCENARIOS if n in found]
    if taken:
        raise BenchError(f"the workload plug-in {taken[0]} takes the name of a built-in scenario; give it another name")
    return {**found, **SCENARIOS}


def scenario(name: str) -> Scenario:
    """The scenario that measures `name`: its own, else the steps scenario."""
    return load_target(SCENARIOS[name]) if name in SCENARIOS else STEPS


def load(name: str):
    """The workload class `name` runs (for a scenario's name, the one it brings)."""
    if name in SCENARIOS:
        return scenario(name).workload
    return workloads.load(name)
