"""Built-ins registered in code plus plug-ins from an entry-point group: the one discovery rule the
workload and device registries share."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from bench.core.errors import BenchError


def discover(group: str, builtins: dict[str, str], kind: str) -> dict[str, str]:
    """{name: "module:attr"}: the built-ins, then plug-ins by name. A plug-in that takes a built-in's
    name is refused, never silently preferred."""
    found = dict(builtins)
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        if ep.name in builtins:
            if ep.value != builtins[ep.name]:
                raise BenchError(f"the plug-in entry point {ep.name} = {ep.value} takes the name of a built-in "
                                 f"{kind}; give the plug-in another name")
            continue
        found[ep.name] = ep.value
    return found


def load_target(target: str):
    """The object a "module:attr" string names."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
