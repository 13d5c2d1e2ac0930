"""Strings from a report or a tool, made safe for where they land: a terminal, a Markdown table, a
CSV cell. (HTML escaping is html.escape, in the HTML renderer.) Long strings are cut: a 200 MB
label must not become a 200 MB page."""

from __future__ import annotations

import json
import os
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


def json_text(data, indent: int | None = 1) -> str:
    """JSON whose every character a terminal would act on (controls, bidi overrides, zero-width
    marks) is a \\u escape: the same data, safe to print. NaN and infinity are refused."""
    text = redact_urls(json.dumps(data, indent=indent, allow_nan=False, ensure_ascii=False, default=str))
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def terminal_safe(value, limit: int = MAX_SHOWN) -> str:
    """No control sequences (ESC, CR, BEL, bidi overrides) reach the terminal: each is shown as an
    escape like \\x1b. Newlines and tabs become spaces. Credentials in a URL are shown as ***."""
    text = clip(redact_urls(str(value)), limit).replace("\n", " ").replace("\t", " ")
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


_MARKDOWN = re.compile(r"([\\`*_\[\]()|!~#])")


def markdown_cell(value, limit: int = MAX_SHOWN) -> str:
    """Markdown text (a table cell, a heading): newlines removed, raw HTML and entities shown as
    text, and every character that makes Markdown syntax — links and images (`[x](javascript:...)`),
    emphasis, code, strike-through, pipes — backslash-escaped (CommonMark 0.31 section 2.4: any ASCII
    punctuation may be backslash-escaped, and then stands for itself; GFM tables take `\\|` in a cell)."""
    text = terminal_safe(value, limit)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN.sub(r"\\\1", text)


_PLAIN_PATH = re.compile(r"[^\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]*")


def shell_path(path) -> str:
    """A path printed so that it can be used: as it is where every character is printable, else in
    the shell's $'...' quoting (bash, zsh, ksh), in which a newline, an escape or a byte that is not
    UTF-8 is written as \\n, \\x1b, \\xff, and which reads back as the very same path."""
    text = str(path)
    if _PLAIN_PATH.fullmatch(text):
        return text
    out = []
    for byte in os.fsencode(text):
        c = chr(byte)
        if c in "\\'":
            out.append("\\" + c)
        elif 0x20 <= byte < 0x7f:
            out.append(c)
        else:
            out.append({0x0a: "\\n", 0x09: "\\t", 0x0d: "\\r", 0x1b: "\\e"}.get(byte, f"\\x{byte:02x}"))
    return "$'" + "".join(out) + "'"


FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value):
    """A CSV cell a spreadsheet will not run, nor a terminal that prints the file: control characters
    shown as escapes, text that starts like a formula given a leading quote. Numbers (also negative
    ones) stay numbers."""
    if not isinstance(value, str):
        return value
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], clip(redact_urls(value)))
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


def read_small(path: str, flag: str, limit: int) -> bytes:
    """The bytes of a small regular file the user names, read up to `limit` (its size as stat says
    it is not trusted: /proc files say 0); ConfigError naming the flag for a directory, a FIFO, a
    device, a file too large or unreadable. Nothing of its content is ever quoted."""
    import stat as st

    from bench.core.errors import ConfigError

    shown = clip(str(path), 200)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ConfigError(f"{flag} {shown}: cannot read it ({exc.strerror or exc})") from None
    try:
        if not st.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"{flag} {shown}: not a file")
        data = _read_up_to(fd, limit + 1)
    except OSError as exc:
        raise ConfigError(f"{flag} {shown}: cannot read it ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ConfigError(f"{flag} {shown}: larger than {limit / 2**20:g} MiB")
    return data


def _read_up_to(fd: int, n: int) -> bytes:
    chunks, total = [], 0
    while total < n:
        chunk = os.read(fd, min(1 << 20, n - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def read_lines(path: str, flag: str, limit: int) -> list[tuple[int, str]]:
    """(line number, text) of a small UTF-8 text file the user names, `#` comments and blank lines
    left out; ConfigError naming the flag for anything that is not such a file (a directory, a FIFO,
    too large, binary, not UTF-8). An error about a file names its line and what was expected,
    never what the line holds: a file given by mistake (/proc/self/environ, a .env) may hold secrets."""
    return text_lines(read_small(path, flag, limit), f"{flag} {clip(str(path), 200)}")


def text_lines(data: bytes, where: str) -> list[tuple[int, str]]:
    """read_lines of a file's bytes already read."""
    from bench.core.errors import ConfigError

    if b"\x00" in data:
        raise ConfigError(f"{where}: a binary file (it holds NUL bytes), not text")
    out = []
    text = utf8_text(data, where)
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if line:
            out.append((number, line))
    return out


def utf8_text(data: bytes, where: str) -> str:
    """A file's bytes as text: UTF-8, a byte order mark (Windows editors write one) not part of its first line;
    ConfigError saying where it is not."""
    from bench.core.errors import ConfigError

    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text (byte {exc.start})") from None


_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{0,31}://)[^/?#@\s\"'<>\\]*@")


def redact_urls(text: str) -> str:
    """Credentials in URLs (`scheme://user:key@host`) replaced by `***@`: a report written elsewhere,
    or edited, may hold them, and no output shows them."""
    return _URL_CREDENTIALS.sub(lambda m: m.group(1) + "***@", text) if "@" in text else text


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every secret given (an API key) replaced by `***`, and URL credentials too."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return redact_urls(text)
