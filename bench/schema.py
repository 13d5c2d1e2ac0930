"""Report format: SCHEMA_VERSION, atomic dump, validated load, migrations.

History of schema_version (keep it written here when the format changes):
  1 - first format: environment, config, results (raw step times), telemetry (samples + phases).
"""

from __future__ import annotations

import json
import os
import tempfile
from importlib import resources
from pathlib import Path

from bench.errors import ReportError

SCHEMA_VERSION = 1
MIGRATIONS: dict[int, callable] = {}  # from_version -> function(report) -> report of from_version + 1


def _schema() -> dict:
    return json.loads(resources.files("bench").joinpath("report.schema.json").read_text(encoding="utf-8"))


def dump_atomic(report: dict, path: str | Path) -> Path:
    """Write JSON to a temporary file in the same directory, fsync, then rename: never half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1, allow_nan=False, default=_json_default)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _json_default(value):
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def validate_report(report, name: str = "report") -> dict:
    """Check structure and version; migrate older versions. Raises ReportError saying what is wrong."""
    import jsonschema

    if not isinstance(report, dict):
        raise ReportError(f"{name}: not a bench report (top level is {type(report).__name__}, not an object)")
    version = report.get("schema_version")
    if not isinstance(version, int):
        missing = "schema_version" not in report
        raise ReportError(f"{name}: not a bench report ({'no' if missing else 'a non-integer'} schema_version)")
    if version > SCHEMA_VERSION:
        raise ReportError(f"{name}: schema_version {version} is newer than this bench understands "
                          f"({SCHEMA_VERSION}); upgrade bench to read it")
    while version < SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise ReportError(f"{name}: schema_version {version} has no migration to {SCHEMA_VERSION}")
        report = MIGRATIONS[version](report)
        version = report["schema_version"]
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(_schema()).iter_errors(report))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ReportError(f"{name}: invalid at {where}: {error.message}")
    return report


def load_report(path: str | Path) -> dict:
    """Read and validate one report file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read ({exc})") from None
    if not text.strip():
        raise ReportError(f"{path}: empty file")
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (truncated?)" if exc.pos >= len(text.rstrip()) - 1 else ""
        raise ReportError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}{hint}") from None
    return validate_report(report, str(path))
