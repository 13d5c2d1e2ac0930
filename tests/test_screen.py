"""The terminal's one door (bench/render/screen.py): a Screen prints Shown text only, and nothing in
render/ or cli.py prints any other way. Report strings cannot reach a terminal unescaped: code that
tried would fail here (statically) or at its first print (at run time)."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import pytest
from rich.console import Group
from rich.table import Table
from rich.text import Text

from bench.render.format import Shown, markup, shown, shown_path
from bench.render.screen import OutputError, Screen, checked, usable_columns

ROOT = Path(__file__).resolve().parent.parent
PRINTING = sorted((ROOT / "bench" / "render").glob("*.py")) + [ROOT / "bench" / "cli.py"]
DOOR = ROOT / "bench" / "render" / "screen.py"


def screen(width=100):
    return Screen(file=io.StringIO(), width=width)


@pytest.mark.parametrize("build", [
    lambda: "\x1b[31mraw\x1b[0m",
    lambda: f"[bold]{shown('x')}[/]",  # an f-string around shown text is a plain str again
    lambda: Text("\x1b]0;title\x07"),
    lambda: _table(cell="raw"),
    lambda: _table(title="raw title"),
    lambda: _table(header="raw header"),
    lambda: Group(shown("fine"), "raw"),
    lambda: Group(_table(cell="raw")),
    lambda: 42,
])
def test_a_screen_refuses_anything_not_made_by_the_escaping_path(build):
    s = screen()
    with pytest.raises(TypeError):
        s.print(build())
    assert s.console.file.getvalue() == ""


def _table(cell=None, title=None, header=None):
    t = Table(title=title if title is not None else shown("t"))
    t.add_column(header if header is not None else shown("h"))
    t.add_row(cell if cell is not None else shown("c"))
    return t


def test_shown_text_tables_and_groups_print():
    s = screen()
    s.print(markup("[bold]{}[/]", "\x1b[31mred [b]"), Group(_table(), shown("after")))
    text = s.console.file.getvalue()
    assert "\\x1b[31mred [b]" in text and "\x1b" not in text and "after" in text
    checked(None)
    assert shown(shown("[x]")) == shown("[x]")  # escaped once, not twice


def test_a_stream_that_cannot_take_the_output_is_an_output_error(tmp_path):
    s = Screen(file=open("/dev/full", "w"), width=80)
    with pytest.raises(OutputError, match="No space left on device"):
        s.print(shown("x" * 100_000))


@pytest.mark.parametrize("value,used", [("0", False), ("-3", False), ("abc", False), ("19", False), ("", False),
                                        ("99999999", False), ("20", True), ("120", True), (" 80 ", True)])
def test_columns_is_used_only_when_it_is_a_width(value, used):
    env, ignored = usable_columns({"COLUMNS": value, "HOME": "/h"})
    assert ("COLUMNS" in env) is used and (ignored is None) is used and env["HOME"] == "/h"


@pytest.mark.parametrize("path", ["/tmp/plain dir/a.json", "/tmp/new\nline/a.json", "/tmp/\x1b[31m/a", "/tmp/tab\there",
                                  "/tmp/quote'back\\slash\n", "/tmp/caf\u00e9\n", "/tmp/bad\udcffbyte\n"])
def test_a_path_is_printed_so_that_a_shell_reads_it_back(path, tmp_path):
    """A printable path as it is (what `$(bench run --quiet ...)` reads); any other in $'...' quoting."""
    import os
    import shutil
    import subprocess

    from bench.core.text import shell_path

    text = shell_path(path)
    assert "\n" not in text and "\x1b" not in text and "\t" not in text
    if path.isprintable():
        assert text == path
    elif shutil.which("bash"):
        back = subprocess.run(["bash", "-c", f"printf %s {text}"], capture_output=True, timeout=900).stdout
        assert back == os.fsencode(path)
    assert isinstance(shown_path(path), Shown)


# ---- statically: render/ and cli.py print only through a Screen ---------------------------------------

def _calls(tree):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def _name(func) -> str:
    return ast.unparse(func)


@pytest.mark.parametrize("path", PRINTING, ids=lambda p: p.name)
def test_nothing_in_render_or_cli_prints_but_through_a_screen(path):
    tree = ast.parse(path.read_text())
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "rich.console" and path != DOOR:
            problems += [f"imports rich.console.{a.name}" for a in node.names if a.name != "Group"]
        if isinstance(node, ast.ImportFrom) and node.module == "rich.text":
            problems.append("imports rich.text (a Text holds raw strings; print Shown text)")
    for call in _calls(tree):
        name = _name(call.func)
        if name == "print" or name.endswith(("stdout.write", "stderr.write", "file.write")) and path != DOOR:
            problems.append(f"line {call.lineno}: {name}(...)")
        if name == "Shown" and path.name != "format.py":
            problems.append(f"line {call.lineno}: Shown(...) made outside format.py")
        if name.endswith("markup") and name != "Text.from_markup":
            first = call.args[0] if call.args else None
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                problems.append(f"line {call.lineno}: markup() with a template that is not a literal")
    assert problems == [], f"{path.relative_to(ROOT)}: {problems}"
