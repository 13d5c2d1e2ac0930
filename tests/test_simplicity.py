"""The code stays small enough to read: few long functions (complexity is ruff's C90, in .ci/run)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES, MAX_LONG = 40, 3


def long_functions() -> list[str]:
    """Functions over MAX_LINES lines, decorators to last line, in bench/, workloads/ and benchmarks/."""
    out = []
    for folder in ("bench", "workloads", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                    if node.end_lineno - start + 1 > MAX_LINES:
                        out.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} "
                                   f"({node.end_lineno - start + 1} lines)")
    return out


def test_at_most_three_functions_run_over_forty_lines():
    found = long_functions()
    assert len(found) <= MAX_LONG, "split one of these:\n" + "\n".join(found)


def test_the_count_sees_a_long_function(tmp_path, monkeypatch):
    pkg = tmp_path / "bench"
    pkg.mkdir()
    (pkg / "long.py").write_text("@staticmethod\ndef f():\n" + "    x = 1\n" * 40)
    for other in ("workloads", "benchmarks"):
        (tmp_path / other).mkdir()
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert long_functions() == ["bench/long.py:2 f (42 lines)"]
