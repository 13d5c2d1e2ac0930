"""The import graph of bench and workloads: layers that point one way, and no cycle.

Every import counts, module-level and inside functions. `import a.b.c` is an edge to a.b.c and to the
packages above it whose __init__ runs (a.b, a); `from a.b import c` is an edge to a.b (and a.b.c where c
is a module). The registries' built-in targets ("module:attr" strings) count as edges too. The root
package `bench` is the one exception: every module runs its __init__, so edges to it are not drawn;
instead the test asserts that it imports nothing when it loads (its `load_reports` facade imports the
analysis and render layers only when called, and no module of bench calls it).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# layer -> the layers it may import (itself included); cli may import everything. The order:
# core -> model -> devices | workloads -> measure -> serve -> launch -> analysis -> render -> cli
ALLOWED = {
    "core": {"core"},
    "model": {"model", "core"},
    "devices": {"devices", "model", "core"},
    "workloads": {"workloads", "model", "core"},
    "measure": {"measure", "devices", "model", "core"},
    "serve": {"serve", "measure", "devices", "workloads", "model", "core"},
    "launch": {"launch", "serve", "measure", "devices", "workloads", "model", "core"},
    "analysis": {"analysis", "model", "core"},
    "render": {"render", "analysis", "model", "core"},
    "cli": {"cli", "render", "analysis", "launch", "serve", "measure", "devices", "workloads", "model", "core"},
    "root": {"analysis", "render"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(mod: str) -> str:
    if mod == "bench":
        return "root"
    if mod in ("bench.cli", "bench.__main__", "bench.entry"):
        return "cli"
    if mod == "workloads" or mod.startswith("workloads."):
        return "workloads"
    return mod.split(".")[1]


def modules() -> dict[str, Path]:
    files = sorted((ROOT / "bench").rglob("*.py")) + sorted((ROOT / "workloads").rglob("*.py"))
    return {module_name(p): p for p in files}


def ours(name: str) -> bool:
    return name == "bench" or name.startswith("bench.") or name == "workloads" or name.startswith("workloads.")


def with_parents(name: str, known: dict) -> list[str]:
    parts = name.split(".")
    out = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return [m for m in out if m in known and m != "bench"]


def imports(path: Path, mod: str, known: dict) -> list[tuple[str, int, bool]]:
    """(target module, line, module-level?) for every import of ours in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = mod.split(".")[: len(mod.split(".")) - node.level + (1 if path.name == "__init__.py" else 0)]
                base = ".".join(pkg + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "BUILTINS" for t in node.targets):
            targets = [v.value.split(":")[0] for v in getattr(node.value, "values", [])
                       if isinstance(v, ast.Constant) and isinstance(v.value, str)]
        for t in targets:
            if ours(t):
                out += [(m, node.lineno, id(node) in top) for m in with_parents(t, known)]
    return out


def graph():
    known = modules()
    return known, {mod: imports(path, mod, known) for mod, path in known.items()}


def test_no_upward_arrow():
    _, edges = graph()
    bad = [f"{mod}:{line} ({layer(mod)}) imports {target} ({layer(target)})"
           for mod, targets in edges.items() for target, line, _ in targets
           if layer(target) not in ALLOWED[layer(mod)]]
    assert bad == [], "imports that point up the layers:\n" + "\n".join(bad)


def test_no_cycle():
    _, edges = graph()
    adj = {m: sorted({t for t, _, _ in ts if t != m}) for m, ts in edges.items()}
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in adj.get(m, []):
            if state.get(t) == "open":
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in adj:
        if m not in state:
            visit(m)
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_package_inits_import_nothing_when_they_load():
    known, edges = graph()
    for mod, path in known.items():
        if path.name == "__init__.py":
            module_level = [t for t, _, top in edges[mod] if top]
            assert module_level == [], f"{path} imports {module_level} at load time"
    root = ast.parse((ROOT / "bench" / "__init__.py").read_text())
    assert not [n for n in root.body if isinstance(n, ast.Import | ast.ImportFrom)]


def test_nothing_calls_the_root_facade():
    known, _ = graph()
    callers = [m for m, p in known.items() if m != "bench" and "bench.load_reports" in p.read_text(encoding="utf-8")]
    assert callers == []


def test_the_graph_sees_function_level_imports_and_registry_targets():
    # the checks above are only as good as the graph: it must hold the edges that matter
    _, edges = graph()
    cli = {t for t, _, top in edges["bench.cli"] if not top}
    assert "bench.launch.launcher" in cli  # imported inside cmd_run
    assert "bench.serve.scenario" in {t for t, _, _ in edges["bench.launch.worker"]}  # serving is its own scenario
    assert "bench.devices.cpu.spec" in {t for t, _, _ in edges["bench.devices.registry"]}
    assert "workloads.blender_finetune" in {t for t, _, _ in edges["workloads.registry"]}
    assert "bench.devices" in {t for t, _, _ in edges["bench.devices.registry"]} or \
        "bench.devices.spec" in {t for t, _, _ in edges["bench.devices.cpu.spec"]}
