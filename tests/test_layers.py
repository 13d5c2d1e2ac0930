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
# core -> model -> serve.maths -> devices | workloads -> measure -> serve -> launch -> study -> analysis -> render -> cli
# The serving scenario has one home, bench/serve/; its pure maths (bench/serve/maths/: the typed request
# records, the figures, LoadGen's tails, the capacity search and bracket, the vLLM export) imports only
# core and model and no heavy library (PURE_FORBIDDEN), so that analysis and render may read it: compare
# recomputes serving figures with the very functions the run used. Nothing else of serve is theirs.
ALLOWED = {
    "core": {"core"},
    "model": {"model", "core"},
    "serve.maths": {"serve.maths", "model", "core"},
    "devices": {"devices", "model", "core"},
    "workloads": {"workloads", "model", "core"},
    "measure": {"measure", "devices", "model", "core"},
    "serve": {"serve", "serve.maths", "measure", "devices", "workloads", "model", "core"},
    "launch": {"launch", "serve", "serve.maths", "measure", "devices", "workloads", "model", "core"},
    # a study drives launch: its file, its runs resolved by the flags' declarations, its plan; analysis and
    # render read the study a report carries from the model, never from here
    "study": {"study", "launch", "serve", "serve.maths", "measure", "devices", "workloads", "model", "core"},
    "analysis": {"analysis", "serve.maths", "model", "core"},
    "render": {"render", "analysis", "serve.maths", "model", "core"},
    "cli": {"cli", "render", "analysis", "study", "launch", "serve", "serve.maths", "measure", "devices", "workloads", "model",
            "core"},
    "root": {"analysis", "render"},
}
# what the pure serving maths may not import, at any level: it runs where compare runs
PURE_FORBIDDEN = ("torch", "transformers", "fastapi", "starlette", "uvicorn", "aiohttp", "prometheus_client",
                  "tokenizers", "safetensors")
REGISTRY_TABLES = ("BUILTINS", "SCENARIOS")  # "module:attr" strings: edges to what they name


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
    if mod == "bench.serve.maths" or mod.startswith("bench.serve.maths."):
        return "serve.maths"
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
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") in REGISTRY_TABLES for t in node.targets):
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
    # an edge to a package's __init__ alone is not an arrow: every __init__ imports nothing when it loads
    # (test_package_inits_import_nothing_when_they_load), so importing bench.serve.maths.x runs no serving code
    known, edges = graph()
    bad = [f"{mod}:{line} ({layer(mod)}) imports {target} ({layer(target)})"
           for mod, targets in edges.items() for target, line, _ in targets
           if layer(target) not in ALLOWED[layer(mod)] and known[target].name != "__init__.py"]
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
    assert "bench.launch.catalog" in {t for t, _, _ in edges["bench.launch.worker"]}  # the worker's scenario table
    assert "bench.serve.scenario" in {t for t, _, _ in edges["bench.launch.catalog"]}  # serving is its own scenario
    assert "bench.devices.cpu.spec" in {t for t, _, _ in edges["bench.devices.registry"]}
    assert "workloads.blender_finetune" in {t for t, _, _ in edges["workloads.registry"]}
    assert "bench.devices" in {t for t, _, _ in edges["bench.devices.registry"]} or \
        "bench.devices.spec" in {t for t, _, _ in edges["bench.devices.cpu.spec"]}


def third_party(path: Path) -> set[str]:
    """The top-level packages a file imports that are not ours, at any level of the file."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return {m for m in out if m not in ("bench", "workloads")}


def test_the_serving_maths_is_pure_so_that_compare_may_read_it():
    known, _ = graph()
    pure = {m: p for m, p in known.items() if layer(m) == "serve.maths"}
    assert {"bench.serve.maths.records", "bench.serve.maths.metrics", "bench.serve.maths.vllm"} <= set(pure)
    heavy = {m: sorted(third_party(p) & set(PURE_FORBIDDEN)) for m, p in pure.items()}
    assert {m: h for m, h in heavy.items() if h} == {}


def test_no_serving_hook_is_left_outside_the_serving_package():
    """Workloads offer their model (a `servable`), launch picks a scenario from its table, and neither
    they nor measure know what serving needs: its hooks live in bench/serve/."""
    import re

    hook = re.compile(r"\.serves\b|serves: ClassVar|serving_plan|variant_count|plan_text")
    found = [f"{p.relative_to(ROOT)}:{i}" for folder in ("workloads", "bench/launch", "bench/measure")
             for p in sorted((ROOT / folder).rglob("*.py"))
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if hook.search(line)]
    assert found == []
