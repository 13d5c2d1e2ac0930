"""Typed dataclasses <-> JSON, strictly, with the standard library only.

The report's shape is written once, as dataclasses with type hints (bench/model/report.py). This
module turns those hints into three things: a decoder that refuses anything the hints do not allow
(unknown keys in a closed structure, a string where a number belongs, NaN or infinity, a value
outside its enum), an encoder that runs the same checks before anything is written, and the JSON
Schema and Markdown field table that document the format. Every error names the path of the bad
field: `results[0].timing.repeats[1].step_times_s[7]: not a finite number (NaN)`.

Supported hints: bool, int, float, str, None, Literal[...], X | Y, list[X], dict[str, X] and
dataclasses whose fields use them. A dataclass may define `check(self, path)` for rules that span
fields (list lengths that must agree); it raises ModelError.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from functools import lru_cache
from typing import Any, Literal, Union, get_args, get_origin

NoneType = type(None)


class ModelError(ValueError):
    """A value that does not fit the model; `path` says where."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path or '(top level)'}: {message}")
        self.path, self.reason = path, message


def fld(doc: str, default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING,
        minimum: float | None = None, exclusive_minimum: float | None = None, maximum: float | None = None):
    """A dataclass field with its documentation and numeric bounds (applied to every number inside
    it, so `list[float]` with exclusive_minimum=0 means every item > 0)."""
    meta = {"doc": doc, "minimum": minimum, "exclusive_minimum": exclusive_minimum, "maximum": maximum}
    return dataclasses.field(default=default, default_factory=factory, metadata=meta)


@lru_cache(maxsize=None)
def hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _union_args(tp) -> tuple | None:
    if get_origin(tp) in (Union, types.UnionType):
        return get_args(tp)
    return None


def _describe(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return f"not a finite number ({value})"
    text = repr(value)
    return f"got {type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


# ---- decoding ------------------------------------------------------------------------------------

class _Bounds:
    __slots__ = ("minimum", "exclusive_minimum", "maximum")

    def __init__(self, meta=None):
        meta = meta or {}
        self.minimum, self.exclusive_minimum = meta.get("minimum"), meta.get("exclusive_minimum")
        self.maximum = meta.get("maximum")

    def check(self, value, path: str) -> None:
        if self.minimum is not None and value < self.minimum:
            raise ModelError(path, f"must be >= {self.minimum}, got {value}")
        if self.exclusive_minimum is not None and value <= self.exclusive_minimum:
            raise ModelError(path, f"must be > {self.exclusive_minimum}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise ModelError(path, f"must be <= {self.maximum}, got {value}")


NO_BOUNDS = _Bounds()


def _number(value, path: str, bounds: _Bounds):
    if type(value) is int:
        bounds.check(value, path)
        return value
    if type(value) is float and math.isfinite(value):
        bounds.check(value, path)
        return value
    if isinstance(value, float):
        raise ModelError(path, _describe(value))
    raise ModelError(path, f"expected a number, {_describe(value)}")


def _float_list(value, path: str, bounds: _Bounds) -> list:
    """Fast path for the long lists (step times): one pass, then a slow pass only to name the item."""
    if all((type(v) is int or (type(v) is float and math.isfinite(v))) for v in value):
        if bounds.minimum is None and bounds.exclusive_minimum is None and bounds.maximum is None:
            return list(value)
    return [_number(v, f"{path}[{i}]", bounds) for i, v in enumerate(value)]


def decode(tp, value, path: str = "", bounds: _Bounds = NO_BOUNDS):
    """Check `value` (parsed JSON) against the hint `tp`; return the typed value."""
    if tp is Any:
        return value
    if tp is NoneType:
        if value is not None:
            raise ModelError(path, f"expected null, {_describe(value)}")
        return None
    if tp is bool:
        if type(value) is not bool:
            raise ModelError(path, f"expected true or false, {_describe(value)}")
        return value
    if tp is int:
        if type(value) is not int:
            raise ModelError(path, f"expected an integer, {_describe(value)}")
        bounds.check(value, path)
        return value
    if tp is float:
        return _number(value, path, bounds)
    if tp is str:
        if type(value) is not str:
            raise ModelError(path, f"expected a string, {_describe(value)}")
        return value
    args = _union_args(tp)
    if args is not None:
        return _decode_union(args, value, path, bounds)
    origin = get_origin(tp)
    if origin is Literal:
        if value not in get_args(tp) or type(value) is bool:
            raise ModelError(path, f"expected one of {', '.join(map(repr, get_args(tp)))}, {_describe(value)}")
        return value
    if origin is list:
        if type(value) is not list:
            raise ModelError(path, f"expected a list, {_describe(value)}")
        (item,) = get_args(tp)
        if item is float:
            return _float_list(value, path, bounds)
        return [decode(item, v, f"{path}[{i}]", bounds) for i, v in enumerate(value)]
    if origin is dict:
        if type(value) is not dict:
            raise ModelError(path, f"expected an object, {_describe(value)}")
        _, item = get_args(tp)
        return {k: decode(item, v, f"{path}.{k}" if path else k, bounds) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, value, path)
    raise TypeError(f"unsupported type hint {tp!r} at {path}")


def _decode_union(args, value, path: str, bounds: _Bounds):
    if value is None:
        if NoneType in args:
            return None
        raise ModelError(path, "must not be null")
    if isinstance(value, float) and not math.isfinite(value):
        raise ModelError(path, _describe(value))
    errors = []
    for alt in args:
        if alt is NoneType:
            continue
        try:
            return decode(alt, value, path, bounds)
        except ModelError as exc:
            errors.append(exc)
    deepest = max(errors, key=lambda e: len(e.path))
    if deepest.path != path:
        raise deepest  # the value had the right shape; something inside it is wrong
    raise ModelError(path, f"expected {type_name(typing.Union[args])}, {_describe(value)}")


def _decode_dataclass(cls, value, path: str):
    if type(value) is not dict:
        raise ModelError(path, f"expected an object ({cls.__name__}), {_describe(value)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in value if k not in fields]
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise ModelError(where, f"unknown field in {cls.__name__} (known: {', '.join(fields)})")
    kwargs = {}
    types_ = hints(cls)
    for name, f in fields.items():
        sub = f"{path}.{name}" if path else name
        if name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ModelError(sub, f"missing (required in {cls.__name__})")
            continue
        kwargs[name] = decode(types_[name], value[name], sub, _Bounds(f.metadata))
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None:
        check(path)
    return obj


# ---- encoding ------------------------------------------------------------------------------------

def _unicode(text: str) -> str:
    """Text that came through a C locale (argv, paths, tool output decoded with surrogateescape)
    holds lone surrogates that no UTF-8 file can store: its bytes are read as UTF-8 instead, any
    that are not UTF-8 shown as U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def encode(value):
    """Typed value -> plain JSON data (numpy and torch scalars become Python numbers)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if type(value) is str:
        return _unicode(value)
    if value is None or type(value) in (bool, int, float):
        return value
    for plain in (bool, int, float, str):  # subclasses: numpy.float64, torch's TorchVersion, IntEnum
        if isinstance(value, plain):
            return plain(value)
    if hasattr(value, "item"):  # numpy / torch scalar
        return value.item()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


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


def round_trip(cls, obj):
    """Encode obj and decode it again: the write-time check that what is written will load."""
    return decode(cls, encode(obj))


# ---- schema and docs -----------------------------------------------------------------------------

ALIASES: dict = {}  # union hint -> the name the docs give it ("scalar")


def alias(name: str, tp):
    """Name a union for the docs; returns the hint unchanged."""
    ALIASES[tp] = name
    return tp


def type_name(tp) -> str:
    """A short human name for a hint: 'number > 0', 'list of number', 'Interval or null'."""
    if tp in ALIASES:
        return ALIASES[tp]
    if tp is NoneType:
        return "null"
    simple = {bool: "bool", int: "integer", float: "number", str: "string", Any: "any"}
    if tp in simple:
        return simple[tp]
    args = _union_args(tp)
    if args is not None:
        return " or ".join(type_name(a) for a in args)
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(f"`{a}`" for a in get_args(tp))
    if origin is list:
        return f"list of {type_name(get_args(tp)[0])}"
    if origin is dict:
        return f"map of {type_name(get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return tp.__name__
    return repr(tp)


def _bounded(schema: dict, meta) -> dict:
    for key, name in (("minimum", "minimum"), ("exclusive_minimum", "exclusiveMinimum"), ("maximum", "maximum")):
        if meta and meta.get(key) is not None:
            schema[name] = meta[key]
    return schema


def schema_of(tp, defs: dict, meta=None) -> dict:
    if tp is NoneType:
        return {"type": "null"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return _bounded({"type": "integer"}, meta)
    if tp is float:
        return _bounded({"type": "number"}, meta)
    if tp is str:
        return {"type": "string"}
    if tp is Any:
        return {}
    args = _union_args(tp)
    if args is not None:
        parts = [schema_of(a, defs, meta) for a in args]
        if all(set(p) <= {"type"} for p in parts):
            return {"type": [p["type"] for p in parts]}
        return {"anyOf": parts}
    origin = get_origin(tp)
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin is list:
        return {"type": "array", "items": schema_of(get_args(tp)[0], defs, meta)}
    if origin is dict:
        return {"type": "object", "additionalProperties": schema_of(get_args(tp)[1], defs, meta)}
    if dataclasses.is_dataclass(tp):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # placeholder: recursive types refer to themselves
            types_ = hints(tp)
            props, required = {}, []
            for f in dataclasses.fields(tp):
                prop = schema_of(types_[f.name], defs, f.metadata)
                prop["description"] = f.metadata.get("doc", "")
                props[f.name] = prop
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    required.append(f.name)
            defs[name] = {"type": "object", "description": (tp.__doc__ or "").strip().split("\n\n")[0],
                          "additionalProperties": False, "required": required, "properties": props}
        return {"$ref": f"#/$defs/{name}"}
    raise TypeError(f"unsupported type hint {tp!r}")


def dataclasses_reachable(root) -> list:
    """Every dataclass reachable from root's fields, in first-seen order."""
    seen: list = []

    def visit(tp):
        if dataclasses.is_dataclass(tp):
            if tp in seen:
                return
            seen.append(tp)
            for f in dataclasses.fields(tp):
                visit(hints(tp)[f.name])
            return
        for a in get_args(tp):
            visit(a)

    visit(root)
    return seen


def field_rows(cls) -> list[tuple[str, str, str]]:
    """(name, type, meaning) rows of a dataclass, for the docs table."""
    rows = []
    for f in dataclasses.fields(cls):
        tp = type_name(hints(cls)[f.name])
        bounds = [f"{sym} {f.metadata[k]}" for k, sym in (("minimum", "≥"), ("exclusive_minimum", ">"),
                                                         ("maximum", "≤")) if f.metadata.get(k) is not None]
        if bounds:
            tp += f" ({', '.join(bounds)})"
        optional = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        rows.append((f"`{f.name}`" + ("" if optional else " *"), tp, f.metadata.get("doc", "")))
    return rows
