"""Which workloads exist: the built-ins, registered here in code, and plug-ins from the
`bench.workloads` entry-point group. A plug-in is one module with a Workload subclass plus an entry
point; a plug-in that takes a built-in's name is refused, never silently preferred."""

from __future__ import annotations

from bench.core.errors import BenchError
from bench.core.registry import discover, load_target

GROUP = "bench.workloads"
BUILTINS = {
    "blender-finetune": "workloads.blender_finetune:BlenderFinetune",
    "blender-generate": "workloads.blender_generate:BlenderGenerate",
    "retrieval-encode": "workloads.retrieval_encode:RetrievalEncode",
    "retrieve-refine": "workloads.retrieve_refine:RetrieveRefine",
}


def available() -> dict[str, str]:
    """{name: 'module:Class'} of every workload, built-ins first, then plug-ins by name."""
    return discover(GROUP, BUILTINS, "workload")


def load(name: str):
    """The Workload class registered under name."""
    targets = available()
    if name not in targets:
        raise BenchError(f"workload {name!r} is not registered; choose from {', '.join(targets)}")
    try:
        return load_target(targets[name])
    except (ImportError, AttributeError) as exc:
        raise BenchError(f"workload {name!r} could not be imported from {targets[name]} ({exc})") from None


def load_many(names) -> dict:
    """{name: class} for the given names, or every registered workload."""
    return {n: load(n) for n in (names or available())}
