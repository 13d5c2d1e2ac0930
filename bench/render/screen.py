"""The terminal's one door: everything bench prints goes through a Screen, and a Screen prints only
Shown text (bench/render/format.py) and tables and groups whose every string is Shown.

Shown text is made by `shown(value)` (a report's, a tool's or a user's string: control sequences
neutralised, markup escaped, cut short), `markup("[red]error:[/] {}", value)` (a template written in
the code around escaped values) or `shown_path(path)`. A plain str handed to a Screen — as an
argument, a table's title, header or cell — raises TypeError: a report string printed raw is a bug
the first test to reach it fails on, not an escape that reaches a terminal. tests/test_screen.py
reads render/ and cli.py to check that nothing else prints and that every template is a literal.

A Screen also owns the width: COLUMNS is used when it is a width a table can be laid out in (20 to
10,000 columns); otherwise it is ignored (`ignored_columns` says what it was) and the terminal's
width, or 80, is used. Standard output that cannot be written (a full disk, a file-size limit behind a
redirection) is an OutputError naming it, not a traceback; standard error that cannot is dropped and
said by the exit code.
"""

from __future__ import annotations

import io
import json
import os
from contextlib import contextmanager

from rich.console import Console, Group
from rich.table import Table

from bench.core.errors import BenchError
from bench.render.format import Shown

WIDTHS = (20, 10_000)  # what --width takes, and what COLUMNS must be to be used


class OutputError(BenchError):
    """Standard output or standard error cannot take what bench prints."""


def usable_columns(environ=None) -> tuple[dict, str | None]:
    """(the environment rich should read, the COLUMNS value left out because it is no width)."""
    env = dict(os.environ if environ is None else environ)
    value = env.get("COLUMNS")
    if value is None:
        return env, None
    try:
        ok = WIDTHS[0] <= int(value.strip()) <= WIDTHS[1]
    except ValueError:
        ok = False
    if ok:
        return env, None
    del env["COLUMNS"]
    return env, value


def checked(obj) -> None:
    """TypeError unless obj is Shown text, or a Table or Group of nothing but Shown text."""
    if obj is None or isinstance(obj, Shown):
        return
    if isinstance(obj, str):
        raise TypeError(f"text printed without shown() or markup(): {obj[:80]!r}")
    if isinstance(obj, Table):
        for part in (obj.title, obj.caption):
            checked(part)
        for col in obj.columns:
            for part in (col.header, col.footer, *col._cells):
                checked(part if part != "" else None)
        return
    if isinstance(obj, Group):
        for part in obj.renderables:
            checked(part)
        return
    raise TypeError(f"a {type(obj).__name__} cannot be printed by a Screen (only Shown text, tables and groups)")


class Screen:
    """bench's standard output or standard error."""

    def __init__(self, stderr: bool = False, environ=None, **console):
        """console: rich Console options (a file, a width: tests, other uses)."""
        env, self.ignored_columns = usable_columns(environ)
        self.name = "standard error" if stderr else "standard output"
        self.stderr = stderr
        self.lost: str | None = None  # standard error that failed: why (what follows is dropped)
        self.console = Console(stderr=stderr, highlight=False, soft_wrap=stderr, _environ=env, **console)

    @property
    def width(self) -> int:
        return self.console.width

    @width.setter
    def width(self, value: int) -> None:
        self.console.width = value

    @property
    def is_terminal(self) -> bool:
        return self.console.is_terminal

    def print(self, *objects, **kw) -> None:
        for obj in objects:
            checked(obj)
        self._written(lambda: self.console.print(*objects, **kw))

    def print_json(self, data) -> None:
        """Data as highlighted JSON, every string escaped by JSON itself (ASCII only)."""
        self._written(lambda: self.console.print_json(json.dumps(data, ensure_ascii=True, default=str)))

    def write_text(self, text: str) -> None:
        """Text that is already safe for a terminal (JSON from bench/core/text.py json_text, a capture)."""
        self._written(lambda: (self.console.file.write(text), self.console.file.flush()))

    @contextmanager
    def captured(self):
        """Print into a list instead: what was printed, rendered exactly as it would be here (the
        same width, colours and terminal-ness), is its one item when the block ends (write it with
        write_text). Nothing reaches the stream meanwhile."""
        c, got = self.console, []
        saved = c._file, c._force_terminal, c._width
        terminal, width = c.is_terminal, c.width
        c._file, c._force_terminal, c._width = io.StringIO(), terminal, width
        try:
            yield got
        finally:
            got.append(c._file.getvalue())
            c._file, c._force_terminal, c._width = saved

    def _written(self, write) -> None:
        """Standard output that fails is an OutputError (what it was for is lost); standard error
        that fails is dropped from then on, `lost` saying why, so the work and its output go on."""
        if self.lost is not None:
            return
        try:
            write()
        except OSError as exc:
            if not self.stderr:
                raise OutputError(f"cannot write to {self.name}: {exc.strerror or exc}") from None
            self.lost = exc.strerror or str(exc)
