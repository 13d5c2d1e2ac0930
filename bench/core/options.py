"""Options declared once, by their owner, as fields of a frozen dataclass.

A group of options is a frozen dataclass derived from `Options` whose fields are made with `opt()`:

    @dataclass(frozen=True)
    class FinetuneOptions(Options):
        title = "blender-finetune"
        optimizer: str = opt("adamw", "adamax is what ParlAI used", choices=("adamw", "adamax"))
        lr: float | None = opt(None, "learning rate", exclusive_minimum=0, maximum=10, preset=True)
        presets = {"tiny": {"lr": 1e-3}, "seed": {"lr": 1e-5}}

From the declarations come the command line (`add_arguments`: flag, metavar from the type and the
choices, help with the bounds and the default), the checks every value gets before anything runs
(`build`: pydantic validates the field's type with its bounds and choices — whole numbers, finite
numbers, lists — the same `Limits` the report model uses), the preset fill, and the JSON form of
the resolved configuration (`to_json` / `from_json`). A group's own `check()` adds rules that span
its fields. Errors are ConfigError naming the flag: `--batch-size: must be at most 65536, got 100000000`.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, ClassVar, get_args, get_origin

from pydantic import ConfigDict, TypeAdapter, ValidationError

from bench.core.errors import ConfigError
from bench.core.typed import Limits, reason

NoneType = type(None)
MISSING = dataclasses.MISSING
MAX_ITEMS = 64  # values one list option takes unless it declares another bound


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
    max_items: int = MAX_ITEMS  # list options: how many values, however they are given
    repeats: bool = False  # list options: whether a value may be given twice (by default it may not)

    @property
    def limits(self) -> Limits:
        """Text from a command line is parsed (not strict); bounds and choices hold for every item."""
        choices = tuple(self.choices) if self.choices is not None else None
        return Limits(self.minimum, self.exclusive_minimum, self.maximum, choices, strict=False)


def shown_value(value) -> str:
    """A default as the command line takes it: `20` for 20.0, `2,4` for a tuple, never a Python repr."""
    if isinstance(value, tuple | list):
        return ",".join(shown_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def opt(default: Any, help: str, **kw):
    """A dataclass field declaring an option. Lists and tuples are given as tuples (frozen); a list
    takes at most `max_items` values (MAX_ITEMS unless declared), each once unless `repeats=True`."""
    return dataclasses.field(default=default, metadata={"option": Opt(help, **kw)})


def _inner(tp):
    """(base type, is_optional, is_sequence) of a hint: int | None -> (int, True, False)."""
    args = get_args(tp)
    optional = NoneType in args
    if args and get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(a for a in args if a is not NoneType)
    if get_origin(tp) in (tuple, list):
        return get_args(tp)[0], optional, True
    return tp, optional, False


class Once(argparse.Action):
    """A flag that holds one value. Given again with another, the last one counts — a wrapper or an
    alias can set a default that a later flag overrides — and `overridden(namespace)` says so."""

    def __call__(self, parser, namespace, values, option_string=None):
        old = getattr(namespace, self.dest, None)
        if old is not None and old != values:
            namespace.__dict__.setdefault(OVERRIDDEN, []).append((option_string or self.dest, old, values))
        setattr(namespace, self.dest, values)


OVERRIDDEN = "bench.overridden"


def overridden(ns: argparse.Namespace) -> list[tuple[str, str, str]]:
    """(flag, earlier value, the later value that counts) of each flag given more than once."""
    return list(getattr(ns, OVERRIDDEN, []))


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
    def add_arguments(cls, parser: argparse.ArgumentParser, taken: dict[str, str], skip: tuple[str, ...] = (),
                      hidden: bool = False) -> None:
        """Add this group's flags (but those of the fields in `skip`: a command they mean nothing to);
        a flag another group already declared is an error. `hidden`: taken, but not shown by --help."""
        group = parser.add_argument_group(cls.title, cls.description or None)
        for f, o, tp in cls.declared():
            if f.name in skip:
                continue
            flag = o.flag or "--" + f.name.replace("_", "-")
            if flag in taken:
                raise ConfigError(f"{flag} is declared twice: by {taken[flag]} and by {cls.title or cls.__name__}; "
                                  "a plug-in must choose another name")
            taken[flag] = cls.title or cls.__name__
            base, _, seq = _inner(tp)
            kw: dict[str, Any] = {"dest": cls.dest(f.name), "default": argparse.SUPPRESS,
                                  "help": argparse.SUPPRESS if hidden else cls._help(f, o).replace("%", "%%")}
            if base is bool and not seq:
                kw["action"] = "store_true"
            else:
                kw["metavar"] = o.metavar or (",".join(map(str, o.choices)) if o.choices and not seq else None) \
                    or {int: "N", float: "X", str: "TEXT"}.get(base, "VALUE")
                kw["type"] = str  # parsed and checked in build(), which names the flag on any error
                if seq and o.choices is None and base is not str:
                    kw["metavar"] = "N,N,..."
                kw["action"] = "append" if seq and base is str else Once
            group.add_argument(*([o.short] if o.short else []), flag, **kw)

    @classmethod
    def _help(cls, f: dataclasses.Field, o: Opt) -> str:
        bounds = o.limits.text()
        if _inner(typing.get_type_hints(cls)[f.name])[2]:
            bounds = "; ".join(x for x in (bounds, f"at most {o.max_items} values" + ("" if o.repeats else ", each once"))
                               if x)
        text = f"{o.help} ({bounds})" if bounds else o.help
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
            raw = given.get(f.name)
            if raw is None and o.preset:
                raw = fill.get(f.name)
            if raw is not None:
                values[f.name] = _checked(o.flag or "--" + f.name.replace("_", "-"), raw, tp, o)
        obj = cls(**values)
        obj.check()
        obj.check_given(frozenset(k for k, v in given.items() if v is not None))
        return obj

    def check(self) -> None:
        """Rules that span this group's fields (override)."""

    def check_given(self, given: frozenset[str]) -> None:
        """Rules on what was given, not only what the values are (override): a flag that this
        configuration would ignore is refused, never dropped silently."""

    def ignored(self, given: frozenset[str], name: str, why: str) -> None:
        if name in given:
            raise ConfigError(f"{self.flag_of(name)}: {why}")

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

    def argv(self, skip: tuple[str, ...] = ()) -> list[str]:
        """The flags that rebuild this group's values where they differ from its defaults."""
        out: list[str] = []
        for f, _, _ in self.declared():
            value = getattr(self, f.name)
            if f.name in skip or value is None or value == f.default:
                continue
            flag = self.flag_of(f.name)
            if value is True:
                out.append(flag)
            elif value is not False:
                out += [flag, ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
        return out


OPTION_CONFIG = ConfigDict(allow_inf_nan=False)


@lru_cache(maxsize=None)
def _adapter(tp, limits: Limits) -> TypeAdapter:
    """The validator of one option: its type, with its bounds and choices on every item."""
    return TypeAdapter(Annotated[tp, limits], config=OPTION_CONFIG)


def _checked(flag: str, raw: Any, tp, o: Opt):
    """One option's value from its raw form, checked: command-line text is parsed ("8" is 8), a typed
    value (a preset's, a caller's) taken as it is (True is not 1); a list's count and repeats too."""
    sequence = _inner(tp)[2]
    items = _items(flag, raw, sequence, _inner(tp)[0] is str and o.choices is None)
    if sequence and len(items) > o.max_items:
        raise ConfigError(f"{flag}: at most {o.max_items} values, got {len(items)}")
    text = all(isinstance(x, str) for x in items)
    try:
        value = _adapter(tp, o.limits).validate_python(items if sequence else items[0], strict=not text)
    except ValidationError as exc:
        raise ConfigError(f"{flag}: {reason(exc.errors(include_url=False)[0])}") from None
    if sequence and not o.repeats:
        _once(flag, value)
    return value


def _once(flag: str, values) -> None:
    """Each value of a list once: a repeated rate or world size would be run twice and counted as two."""
    seen = set()
    for v in values:
        if v in seen:
            raise ConfigError(f"{flag}: {v!r} is given twice; give each value once")
        seen.add(v)


def _items(flag: str, raw: Any, sequence: bool, text: bool = False) -> tuple:
    """The raw value's items as the validator takes them: N,N,... split (a repeated flag arrives as a
    list already), one item where the option is not a list; spaces around a number or a choice
    stripped, never those of free text (a path whose name ends in a space or a newline is that path)."""
    if not sequence:
        items = (raw.strip() if isinstance(raw, str) and not text else raw,)
    elif isinstance(raw, list | tuple):
        items = tuple(raw)
    else:
        items = tuple(x.strip() for x in str(raw).split(","))
        if any(items) and not all(items):  # "1,,2" or "1,": an item left out is a typo, not a choice
            raise ConfigError(f"{flag}: an empty item in the list {str(raw)[:80]!r}")
        items = tuple(x for x in items if x)
    if not items:
        raise ConfigError(f"{flag}: expected a comma-separated list, got {raw!r}")
    if any(isinstance(x, str) and "\x00" in x for x in items):
        raise ConfigError(f"{flag}: contains a NUL character")
    return items


def namespace_values(ns: argparse.Namespace, cls) -> dict[str, Any]:
    """The flags of group cls that were given on the command line, as {field: raw value}."""
    out = {}
    for f, _, _ in cls.declared():
        key = cls.dest(f.name)
        if hasattr(ns, key):
            out[f.name] = getattr(ns, key)
    return out
