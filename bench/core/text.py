"""Strings from a report or a tool, made safe for where they land: a terminal, a Markdown table, a
CSV cell. (HTML escaping is html.escape, in the HTML renderer.) Long strings are cut: a 200 MB
label must not become a 200 MB page."""

from __future__ import annotations

import re
import unicodedata

MAX_SHOWN = 500  # characters of one report string in any output

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def clip(text: str, limit: int = MAX_SHOWN, mark: str | None = None) -> str:
    """At most `limit` characters and a mark saying it was cut (by default how much was)."""
    if len(text) <= limit:
        return text
    if mark is not None:
        return text[:max(0, limit - len(mark))] + mark
    return text[:limit] + f"... ({len(text) - limit:,} more characters)"


def terminal_safe(value, limit: int = MAX_SHOWN) -> str:
    """No control sequences (ESC, CR, BEL, bidi overrides) reach the terminal: each is shown as an
    escape like \\x1b. Newlines and tabs become spaces."""
    text = clip(str(value), limit).replace("\n", " ").replace("\t", " ")
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def markdown_cell(value, limit: int = MAX_SHOWN) -> str:
    """A Markdown table cell: pipes escaped, newlines removed, raw HTML shown as text."""
    text = terminal_safe(value, limit)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("`", "\\`")


FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value):
    """A CSV cell a spreadsheet will not run: text that starts like a formula gets a leading quote.
    Numbers (also negative ones) stay numbers."""
    if not isinstance(value, str):
        return value
    text = clip(value)
    if text.lstrip(" ").startswith(FORMULA_START) and not _number(text):
        return "'" + text
    return text


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def ascii_fallback(text: str) -> str:
    """For a terminal that cannot encode it: accents dropped, dashes and other symbols simplified."""
    text = text.replace("—", "-").replace("–", "-").replace("·", "|").replace("≤", "<=").replace("≥", ">=")
    text = text.replace("×", "x").replace("…", "...").replace("°", " deg")
    return unicodedata.normalize("NFKD", text).encode("ascii", "replace").decode("ascii")
