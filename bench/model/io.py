"""Reading and writing report files: bounded, strict, atomic.

load_report(path) -> Report: a regular file of at most MAX_REPORT_BYTES, UTF-8 JSON, of a known
schema version (older ones migrated), that the model accepts. Anything else raises ReportError naming
the file, the field and the reason.

dump_report(report, path): checks the report exactly as the loader will, writes it to a temporary
file beside the target, fsyncs and renames: a reader never sees half a file, and a failed write leaves
any earlier file in place.

save_report(report, path) -> Saved: dump_report, and where that fails (disk full, a file-size limit,
a report that fails its own checks) the report goes to `bench-rescue/` in the system temporary
directory instead, and Saved says where and why: a measured run is never lost.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import ReportError
from bench.model.fields import ModelError, null_non_finite, parse, plain
from bench.model.history import MIGRATIONS
from bench.model.report import SCHEMA_VERSION, Report

MAX_REPORT_BYTES = 512 * 2**20


def read_bounded(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file no larger than limit (a FIFO or a device would block or never end)."""
    path, limit = Path(path), limit or MAX_REPORT_BYTES
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except OSError as exc:
        raise ReportError(f"{path}: cannot open ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ReportError(f"{path}: not a regular file (a directory, pipe or device); give a report file")
        if info.st_size > limit:
            raise ReportError(f"{path}: {info.st_size / 2**20:.0f} MiB is larger than the {limit / 2**20:.0f} MiB "
                              "a report may be")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise ReportError(f"{path}: grew past {limit / 2**20:.0f} MiB while being read")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise ReportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def parse_json(raw: bytes, name: str):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReportError(f"{name}: not UTF-8 text (byte {exc.start}); a report is JSON") from None
    if not text.strip():
        raise ReportError(f"{name}: empty file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (truncated?)" if exc.pos >= len(text.rstrip()) - 1 else ""
        raise ReportError(f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}{hint}") from None
    except RecursionError:
        raise ReportError(f"{name}: JSON nested too deeply to be a bench report") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ReportError(f"{name}: JSON a report cannot hold ({str(exc)[:120]})") from None


def migrate(data: dict, name: str) -> dict:
    """Carry plain report JSON of any known version to SCHEMA_VERSION."""
    if not isinstance(data, dict):
        raise ReportError(f"{name}: not a bench report (top level is {type(data).__name__}, not an object)")
    version = data.get("schema_version")
    if type(version) is not int:
        missing = "schema_version" not in data
        raise ReportError(f"{name}: not a bench report ({'no' if missing else 'a non-integer'} schema_version)")
    if version > SCHEMA_VERSION:
        raise ReportError(f"{name}: schema_version {version} is newer than this bench understands "
                          f"({SCHEMA_VERSION}); upgrade bench to read it")
    while version < SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise ReportError(f"{name}: schema_version {version} has no migration to {SCHEMA_VERSION}")
        try:
            data = MIGRATIONS[version](data)
        except Exception as exc:  # noqa: BLE001 - a migration is pure data code: whatever an old file makes it raise
            raise ReportError(f"{name}: a schema_version {version} report that cannot be migrated "
                              f"({type(exc).__name__}: {str(exc)[:200]})") from None
        version = data["schema_version"]
    return data


def report_from_data(data, name: str = "report") -> Report:
    data = migrate(data, name)
    try:
        return parse(Report, data)
    except ModelError as exc:
        raise ReportError(f"{name}: invalid at {exc.path or '(top level)'}: {exc.reason}") from None
    except RecursionError:
        raise ReportError(f"{name}: nested too deeply to be a bench report") from None


def load_report(path: str | Path) -> Report:
    """Read, migrate and check one report file."""
    return report_from_data(parse_json(read_bounded(path), str(path)), str(path))


def write_atomic(path: str | Path, text: str) -> Path:
    """Write text to a temporary file in the same directory, fsync, rename. On any failure the
    temporary file is removed and an existing file at path is left as it was. A symbolic link is
    followed (the file it names is replaced, not the link); a target that exists and is not a regular
    file (/dev/stdout, a FIFO, /dev/full) is written in place, never renamed over."""
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
        return path
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a report is meant to be shared
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def dumps_report(report: Report) -> str:
    """The report as JSON text, after the same checks a loader makes."""
    try:
        data = report.to_json()
    except ModelError as exc:
        raise ReportError(f"report not written: invalid at {exc.path or '(top level)'}: {exc.reason}") from None
    return utf8(json.dumps(data, indent=1, allow_nan=False, ensure_ascii=False))


def utf8(text: str) -> str:
    """Text that came through a C locale (argv, paths, tool output decoded with surrogateescape)
    holds lone surrogates that no UTF-8 file can store: its bytes are read as UTF-8 instead, any
    that are not UTF-8 shown as U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def dump_report(report: Report, path: str | Path) -> Path:
    return write_atomic(path, dumps_report(report))


@dataclass
class Saved:
    path: Path
    rescued: bool = False
    problem: str | None = None  # why the report is not where it was asked to be, or not checked


RESCUE_DIR = "bench-rescue"


def rescue_dir() -> Path:
    """bench-rescue/ in the temporary directory: ours, not a link someone else planted (if it is not,
    a fresh private directory beside it)."""
    base = Path(tempfile.gettempdir())
    target = base / RESCUE_DIR
    try:
        target.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(target)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
            return target
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix=RESCUE_DIR + "-", dir=base))


def save_report(report: Report, path: str | Path) -> Saved:
    """Write the report where asked; failing that, to the rescue directory (see the module doc)."""
    path = Path(path)
    try:
        text, unchecked = dumps_report(report), None
    except ReportError as exc:  # a bug let an invalid value in: keep the data, say it is unchecked
        data = plain(report)
        null_non_finite(data)
        text = utf8(json.dumps(data, indent=1, allow_nan=False, ensure_ascii=False, default=str))
        unchecked = str(exc)
    if unchecked is None:
        try:
            return Saved(write_atomic(path, text))
        except OSError as exc:
            why = f"cannot write {path} ({exc.strerror or exc})"
    else:
        why = f"{unchecked}; it would not load, so it was not written to {path}"
    try:
        with _file_size_limit_lifted():  # the limit that failed the first write applies to this one too
            rescued = write_atomic(rescue_dir() / path.name, text)
    except OSError as exc:
        raise ReportError(f"{why}, nor to the rescue directory {tempfile.gettempdir()}/{RESCUE_DIR} "
                          f"({exc.strerror or exc}): the report is lost") from None
    return Saved(rescued, rescued=True, problem=f"{why}; the report was saved to {rescued}")


@contextlib.contextmanager
def _file_size_limit_lifted():
    """A soft RLIMIT_FSIZE raised to the hard limit for the rescue write (no-op elsewhere)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    except (ImportError, OSError, ValueError):
        yield
        return
    lifted = soft != hard
    if lifted:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    try:
        yield
    finally:
        if lifted:
            with contextlib.suppress(OSError, ValueError):
                resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

