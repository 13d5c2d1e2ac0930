"""Options declared once, by their owner, as fields of a frozen dataclass.

A group of options is a frozen dataclass derived from `Options` whose fields are made with `opt()`:

    @dataclass(frozen=True)
    class FinetuneOptions(Options):
        title = "blender-finetune"
        optimizer: str = opt("adamw", "adamax is what ParlAI used", choices=("adamw", "adamax"))
        lr: float | None = opt(None, "learning rate", exclusive_minimum=0, maximum=10, preset=True)
        presets = {"tiny": {"lr": 1e-3}, "seed": {"lr": 1e-5}}

From the declarations come the command line (`add_arguments`), the checks every value gets before
anything runs (type, finite, bounds, choices: `build`), the preset fill, and the JSON form of the
resolved configuration (`to_json` / `from_json`). A group's own `check()` adds rules that span its
fields. Errors are ConfigError naming the flag.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, get_args, get_origin

from bench.core.errors import ConfigError

NoneType = type(None)
MISSING = dataclasses.MISSING


@dataclass(frozen=True)
class Opt:
    """How one option is spelled and checked (kept in the field's metadata)."""

    help: str
    flag: str | None = None
    choices: tuple | None = None
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    metavar: str | None = None
    preset: bool = False  # None means: take it from the preset
    short: str | None = None


def shown_value(value) -> str:
    """A default as the command line takes it: `20` for 20.0, `2,4` for a tuple, never a Python repr."""
    if isinstance(value, tuple | list):
        return ",".join(shown_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def opt(default: Any, help: str, **kw):
    """A dataclass field declaring an option. Lists and tuples are given as tuples (frozen)."""
    return dataclasses.field(default=default, metadata={"option": Opt(help, **kw)})


def _inner(tp):
    """(base type, is_optional, is_sequence) of a hint: int | None -> (int, True, False)."""
    args = get_args(tp)
    optional = NoneType in args
    if args and get_origin(tp) in (typing.Union, __import__("types").UnionType):
        tp = next(a for a in args if a is not NoneType)
    if get_origin(tp) in (tuple, list):
        return get_args(tp)[0], optional, True
    return tp, optional, False


class Options:
    """Base of a frozen dataclass group of options."""

    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    # -- declarations ------------------------------------------------------------------------------
    @classmethod
    def declared(cls) -> list[tuple[dataclasses.Field, Opt, Any]]:
        hints = typing.get_type_hints(cls)
        return [(f, f.metadata["option"], hints[f.name]) for f in dataclasses.fields(cls) if "option" in f.metadata]

    @classmethod
    def flag_of(cls, name: str) -> str:
        for f, o, _ in cls.declared():
            if f.name == name:
                return o.flag or "--" + name.replace("_", "-")
        raise KeyError(name)

    @classmethod
    def dest(cls, name: str) -> str:
        """The argparse destination: unique across groups."""
        return f"{cls.__name__}.{name}"

    # -- the command line --------------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, taken: dict[str, str]) -> None:
        """Add this group's flags; a flag another group already declared is an error."""
        group = parser.add_argument_group(cls.title, cls.description or None)
        for f, o, tp in cls.declared():
            flag = o.flag or "--" + f.name.replace("_", "-")
            if flag in taken:
                raise ConfigError(f"{flag} is declared twice: by {taken[flag]} and by {cls.title or cls.__name__}; "
                                  "a plug-in must choose another name")
            taken[flag] = cls.title or cls.__name__
            base, _, seq = _inner(tp)
            kw: dict[str, Any] = {"dest": cls.dest(f.name), "help": cls._help(f, o).replace("%", "%%"),
                                  "default": argparse.SUPPRESS}
            if base is bool and not seq:
                kw["action"] = "store_true"
            else:
                kw["metavar"] = o.metavar or (",".join(map(str, o.choices)) if o.choices and not seq else None) \
                    or {int: "N", float: "X", str: "TEXT"}.get(base, "VALUE")
                kw["type"] = str  # parsed and checked in build(), which names the flag on any error
                if seq and o.choices is None and base is not str:
                    kw["metavar"] = "N,N,..."
                if seq and base is str:
                    kw["action"] = "append"
            group.add_argument(*([o.short] if o.short else []), flag, **kw)

    @classmethod
    def _help(cls, f: dataclasses.Field, o: Opt) -> str:
        text = o.help
        if o.preset and cls.presets:
            values = ", ".join(f"{p}={shown_value(v[f.name])}" for p, v in cls.presets.items() if f.name in v)
            return f"{text} (default: by --preset: {values})" if values else text
        default = f.default if f.default is not MISSING else None
        if not (default is None or default is False or default == ()) and "default" not in text:
            text += f" (default: {shown_value(default)})"
        return text

    # -- building and checking ---------------------------------------------------------------------
    @classmethod
    def build(cls, given: dict[str, Any], preset: str | None = None):
        """An instance from {field: raw value} (strings from the command line, or typed values),
        preset-driven fields filled, every value checked. Raises ConfigError naming the flag."""
        values = {}
        fill = cls.presets.get(preset or "", {})
        for f, o, tp in cls.declared():
            flag = o.flag or "--" + f.name.replace("_", "-")
            if f.name in given and given[f.name] is not None:
                values[f.name] = _convert(flag, given[f.name], tp, o)
            elif o.preset and f.name in fill:
                values[f.name] = _convert(flag, fill[f.name], tp, o)
        obj = cls(**values)
        obj.check()
        return obj

    def check(self) -> None:
        """Rules that span this group's fields (override)."""

    # -- JSON ----------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {f.name: (list(v) if isinstance(v, tuple) else v)
                for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}

    @classmethod
    def from_json(cls, data: dict):
        """The resolved group back from its JSON form (values were checked when it was built)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known})

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def _convert(flag: str, raw: Any, tp, o: Opt):
    base, _, seq = _inner(tp)
    if seq:
        # a repeated text flag arrives as a list (each item as given); otherwise N,N,... text
        items = list(raw) if isinstance(raw, list | tuple) else [x for x in str(raw).split(",") if x.strip()]
        if not items:
            raise ConfigError(f"{flag}: expected a comma-separated list, got {raw!r}")
        return tuple(_scalar(flag, x, base, o) for x in items)
    return _scalar(flag, raw, base, o)


def _scalar(flag: str, raw: Any, base, o: Opt):
    text = raw.strip() if isinstance(raw, str) else raw
    if base is bool:
        value = raw if isinstance(raw, bool) else str(text).lower() in ("1", "true", "yes", "on")
    elif base is int:
        value = _int(flag, text)
    elif base is float:
        value = _float(flag, text)
    else:
        value = str(raw)
        if "\x00" in value:
            raise ConfigError(f"{flag}: contains a NUL character")
    if o.choices is not None and value not in o.choices:
        raise ConfigError(f"{flag}: {value!r} is not one of {', '.join(map(str, o.choices))}")
    _bounds(flag, value, o)
    return value


def _int(flag: str, text) -> int:
    if isinstance(text, bool):
        raise ConfigError(f"{flag}: expected a whole number, got {text!r}")
    if isinstance(text, int):
        return text
    if isinstance(text, float) and text.is_integer():
        return int(text)
    try:
        if isinstance(text, str) and len(text) > 40:
            raise ValueError
        return int(str(text), 10)
    except ValueError:
        raise ConfigError(f"{flag}: expected a whole number, got {str(text)[:40]!r}") from None


def _float(flag: str, text) -> float:
    if isinstance(text, bool):
        raise ConfigError(f"{flag}: expected a number, got {text!r}")
    try:
        if isinstance(text, str) and len(text) > 40:
            raise ValueError
        value = float(text)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{flag}: expected a number, got {str(text)[:40]!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{flag}: must be a finite number, got {text!r}")
    return value


def _bounds(flag: str, value, o: Opt) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    if o.minimum is not None and value < o.minimum:
        raise ConfigError(f"{flag}: must be at least {_fmt(o.minimum)}, got {_fmt(value)}")
    if o.exclusive_minimum is not None and value <= o.exclusive_minimum:
        need = "more than 0" if o.exclusive_minimum == 0 else f"more than {_fmt(o.exclusive_minimum)}"
        raise ConfigError(f"{flag}: must be {need}, got {_fmt(value)}")
    if o.maximum is not None and value > o.maximum:
        raise ConfigError(f"{flag}: must be at most {_fmt(o.maximum)}, got {_fmt(value)}")


def _fmt(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def namespace_values(ns: argparse.Namespace, cls) -> dict[str, Any]:
    """The flags of group cls that were given on the command line, as {field: raw value}."""
    out = {}
    for f, _, _ in cls.declared():
        key = cls.dest(f.name)
        if hasattr(ns, key):
            out[f.name] = getattr(ns, key)
    return out
