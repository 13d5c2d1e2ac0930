"""The report's records: standard dataclasses that pydantic checks, writes and describes.

A record is declared as any dataclass, with `@dataclass` from here and `fld()` fields:

    @dataclass
    class Phase:
        start_s: float = fld("seconds since the run started", minimum=0)
        end_s: float = fld("seconds since the run started")

        @invariant
        def _ends_after_it_starts(self):
            if self.end_s < self.start_s:
                raise ModelError("", f"ends ({self.end_s}) before it starts ({self.start_s})")

It stays a plain dataclass (positional construction, `dataclasses.fields`, `replace`, equality, no
checks when code builds one); pydantic does the rest. `parse(cls, data)` checks plain JSON data
strictly — no unknown keys, no "8" where a number belongs, no true for 1, no NaN or infinity, the
enums, every bound of `fld()` on every number inside the field, then each `@invariant` — and builds
the records; `plain(obj)` is the inverse (numpy and torch scalars become numbers). The JSON Schema
comes from the same declarations (bench/model/schema.py). Every error is a ModelError naming the
path of the bad field: `results[0].timing.repeats[1].step_times_s[7]: not a finite number (nan)`.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from functools import lru_cache
from typing import Annotated, Any

from pydantic import ConfigDict, TypeAdapter, ValidationError, model_validator

from bench.core.typed import STRICT, Limits, reason, shown

MISSING = dataclasses.MISSING
CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False, ser_json_inf_nan="constants")


class ModelError(ValueError):
    """A value that does not fit the model; `path` says where. An @invariant raises it with the path
    below its record ("" for the record itself)."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path or '(top level)'}: {message}")
        self.path, self.reason = path, message


def fld(doc: str, default: Any = MISSING, *, factory: Any = MISSING, minimum: float | None = None,
        exclusive_minimum: float | None = None, maximum: float | None = None):
    """A record's field with its documentation and numeric bounds (applied to every number inside
    it, so `list[float]` with exclusive_minimum=0 means every item > 0)."""
    limits = Limits(minimum, exclusive_minimum, maximum)
    return dataclasses.field(default=default, default_factory=factory, metadata={"description": doc, "limits": limits})


def dataclass(cls=None, /, **options):
    """`dataclasses.dataclass` (same options), with each field's type made strict and bounded for pydantic."""
    if cls is None:
        return lambda c: dataclass(c, **options)
    if "check" in cls.__dict__:
        raise TypeError(f"{cls.__name__}.check: a rule across fields is an @invariant method (bench/model/fields.py)")
    notes = cls.__dict__.get("__annotations__", {})
    for name, hint in notes.items():
        if isinstance(hint, str) and hint.startswith(("ClassVar", "typing.ClassVar")):
            continue
        field = cls.__dict__.get(name)
        limits = field.metadata.get("limits", STRICT) if isinstance(field, dataclasses.Field) else STRICT
        notes[name] = Annotated[hint, limits]
    cls.__pydantic_config__ = CONFIG
    return dataclasses.dataclass(cls, **options)


def invariant(rule):
    """A rule across a record's fields, checked after them whenever data is parsed (loading, and the
    check before writing): `rule(self)` raises ModelError(path below the record, why)."""

    def checked(self):
        rule(self)
        return self

    checked.__name__ = checked.__qualname__ = rule.__name__
    return model_validator(mode="after")(checked)


@lru_cache(maxsize=None)
def adapter(cls) -> TypeAdapter:
    return TypeAdapter(cls)


def parse(cls, data):
    """Plain JSON data -> the record (or any type built of records), checked; ModelError if it does not fit."""
    try:
        return adapter(cls).validate_python(data)
    except ValidationError as exc:
        path, why = problem(exc, data)
        raise ModelError(path, why) from None


def plain(obj, cls=None):
    """A record -> plain JSON data (lists, maps, numbers, strings; a NaN stays a float for the check to
    name). A value of a type JSON has no place for raises TypeError."""
    return adapter(cls or type(obj)).dump_python(obj, mode="json", warnings=False, fallback=_scalar)


def _scalar(value):
    """numpy and torch scalars (not subclasses of Python's numbers) as Python numbers."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


# ---- where an error is ---------------------------------------------------------------------------

def problem(exc: ValidationError, data) -> tuple[str, str]:
    """(path, reason) of the first thing wrong. pydantic's locations also name a union's alternatives
    (`Interval`, `int`): the parts that do not index the data are those. Where a value fits none of
    a union's alternatives, the one that got deepest into it speaks; if none got inside the value,
    one whose type fitted (a NaN, a number out of bounds), else the list of what would have fitted."""
    errors = exc.errors(include_url=False)
    error = errors[0]
    while True:
        parts, alt, node = _walk(error, data)
        if alt is None:
            return _path(parts, _below(error)), reason(error)
        prefix = error["loc"][:alt]
        tries = [_without(e, alt) for e in errors if e["loc"][:alt] == prefix and len(e["loc"]) > alt]
        count = Counter(e["alternative"] for e in tries)  # of two as deep, the one with fewer errors fits better
        deepest = max(tries, key=lambda e: (len(_walk(e, data)[0]), -count[e["alternative"]]))
        if len(_walk(deepest, data)[0]) == len(parts):
            near = [e for e in tries if not e["type"].endswith(("_type", "_parsing"))]  # the type fits: NaN, a bound
            if near:
                return _path(parts), reason(near[0])
            return _path(parts), f"expected {_either([_kind(a) for a in count])}, got {shown(node)}"
        errors = [e for e in tries if e["alternative"] == deepest["alternative"]]
        error = deepest


def _walk(error: dict, data) -> tuple[list, int | None, Any]:
    """(the parts of the error's location that index the data, the position of the first that does
    not (a union's alternative) or None, the value the indexing parts lead to)."""
    node, parts, loc = data, [], error["loc"]
    for i, key in enumerate(loc):
        if isinstance(node, dict) and key in node or \
                isinstance(node, list) and type(key) is int and 0 <= key < len(node):
            node = node[key]
            parts.append(key)
        elif i == len(loc) - 1 and error["type"] in ("missing", "missing_argument"):
            parts.append(key)
        else:
            return parts, i, node
    return parts, None, node


def _without(error: dict, at: int) -> dict:
    """The error with the union alternative at `at` taken out of its location (and kept aside)."""
    loc = error["loc"]
    return {**error, "loc": loc[:at] + loc[at + 1:], "alternative": loc[at]}


KINDS = {"bool": "bool", "int": "integer", "float": "number", "str": "string", "none": "null",
         "constrained-int": "integer", "constrained-float": "number"}  # bounded numbers name themselves so


def _kind(alternative) -> str:
    name = str(alternative)
    return KINDS.get(name) or ("list" if name.startswith("list[") else "map" if name.startswith("dict[") else name)


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _below(error: dict) -> str:
    """The path an @invariant gave, below its record."""
    cause = (error.get("ctx") or {}).get("error")
    return cause.path if isinstance(cause, ModelError) else ""


def _path(parts: list, below: str = "") -> str:
    text = "".join(f"[{p}]" if type(p) is int else f".{p}" for p in parts).lstrip(".")
    if below:
        text += below if below.startswith("[") or not text else "." + below
    return text


def null_non_finite(value, path: str = "") -> list[str]:
    """Replace, in place, every NaN or infinite float inside dataclasses, lists and dicts with None;
    return the paths it replaced (a diverging loss or a tool's `nan` must not cost the whole report)."""
    found: list[str] = []

    def bad(v) -> bool:
        return isinstance(v, float) and not math.isfinite(v)

    def walk(obj, where: str) -> None:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            for f in dataclasses.fields(obj):
                v, here = getattr(obj, f.name), f"{where}.{f.name}" if where else f.name
                if bad(v):
                    setattr(obj, f.name, None)
                    found.append(here)
                else:
                    walk(v, here)
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                if bad(v):
                    obj[i] = None
                    found.append(f"{where}[{i}]")
                else:
                    walk(v, f"{where}[{i}]")
        elif isinstance(obj, dict):
            for k, v in obj.items():
                if bad(v):
                    obj[k] = None
                    found.append(f"{where}.{k}")
                else:
                    walk(v, f"{where}.{k}")

    walk(value, path)
    return found
