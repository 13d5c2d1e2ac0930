"""What the report model and the options share of pydantic: bounds on a field, and errors in our words.

A field's bounds (`Limits`) hold for every number inside its type — `list[float]` with minimum=0
means every item is at least 0 — and its choices for every string. A side a field leaves open is
still bounded by the magnitude no real quantity reaches (MAGNITUDE for numbers, INT_LIMIT for whole
numbers), so that no sum, product or conversion of the values read overflows. With `strict`, nothing is
coerced (no "8" for 8, no true for 1). `Annotated[T, Limits(...)]` is the whole declaration:
pydantic validates it, and its JSON Schema carries the bounds on the items. `reason(error)` says
what one of pydantic's errors means, in the words our messages use: `must be at most 65536, got
100000000`, `not a finite number (nan)`, `'int4' is not one of 'fp32', 'bf16' or 'fp16'`.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import FailFast, Strict

SEQUENCES = (list, tuple)
MAGNITUDE = 1e30  # no quantity bench measures comes near (a zettaFLOP is 1e21); products of two stay finite
INT_LIMIT = 2**63 - 1  # what numpy, pandas and other JSON readers hold as a whole number


class FirstBad(FailFast):
    """A collection stops at its first bad item: a file of a million NaN is one error, not a gigabyte
    of them. (Hashable, as members of a typing.Union must be.)"""

    __hash__ = object.__hash__


@dataclass(frozen=True)
class Limits:
    """Bounds for the numbers and choices for the strings inside one field's type."""

    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    choices: tuple | None = None
    strict: bool = True

    def __get_pydantic_core_schema__(self, source, handler):
        return handler.generate_schema(self.applied(source))

    def applied(self, tp):
        """tp with every number bounded, every string limited to the choices, each list failing fast."""
        origin, args = get_origin(tp), get_args(tp)
        if tp in (int, float, bool, str):
            return self._leaf(tp)
        if origin in (Union, types.UnionType):
            return Union[tuple(self.applied(a) for a in args)]
        if origin in (*SEQUENCES, dict):
            inner = origin[tuple(a if a is Ellipsis else self.applied(a) for a in args)]
            # pydantic applies fail_fast to lists and tuples only; on a dict, 2.13 raises at class
            # definition ("Unable to apply constraint 'fail_fast'") where 2.14 ignores it
            return Annotated[inner, FIRST_BAD] if origin in SEQUENCES else inner
        return tp  # a record, Literal, Any, None

    def _leaf(self, tp):
        if tp is str and self.choices is not None:
            return Literal[self.choices]
        marks: list[Any] = [Strict()] if self.strict else []
        if tp in (int, float):
            limit = INT_LIMIT if tp is int else MAGNITUDE
            low = -limit if self.minimum is None and self.exclusive_minimum is None else self.minimum
            high = limit if self.maximum is None else self.maximum
            marks.append(annotated_types.Interval(ge=low, gt=self.exclusive_minimum, le=high))
        return Annotated[tuple([tp, *marks])] if marks else tp

    @property
    def bounded(self) -> bool:
        return any(x is not None for x in (self.minimum, self.exclusive_minimum, self.maximum))

    def text(self) -> str:
        """The bounds in words, for --help: `at least 1, at most 65536`."""
        parts = [f"{word} {number(x)}" for word, x in (("at least", self.minimum), ("more than", self.exclusive_minimum),
                                                       ("at most", self.maximum)) if x is not None]
        return ", ".join(parts)


STRICT = Limits()
FIRST_BAD = FirstBad()


def number(x) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:g}" if isinstance(x, float) else str(x)


def shown(value, quote: bool = True, limit: int = 60) -> str:
    """A value as an error message quotes it, cut short (text unquoted where it stands for a number)."""
    if type(value) is int and abs(value) >= 10**limit:
        return f"an integer of {value.bit_length() * 3 // 10}+ digits"  # repr fails past 4,300 digits
    text = value if isinstance(value, str) and not quote else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


BOUND_WORDS = {"greater_than_equal": ("at least", "ge"), "greater_than": ("more than", "gt"),
               "less_than_equal": ("at most", "le")}
EXPECTED = {"int_type": "a whole number", "int_parsing": "a whole number", "int_from_float": "a whole number",
            "int_parsing_size": "a whole number",
            "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
            "bool_parsing": "true or false", "string_type": "a string", "list_type": "a list",
            "tuple_type": "a list", "dict_type": "an object", "dataclass_type": "an object",
            "dataclass_exact_type": "an object", "none_required": "null"}
FIXED = {"missing": "missing (required)", "missing_argument": "missing (required)",
         "unexpected_keyword_argument": "unknown field", "extra_forbidden": "unknown field"}


def reason(error: dict) -> str:
    """One pydantic error (an item of ValidationError.errors()) in our words, without its place."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind in BOUND_WORDS:
        words, key = BOUND_WORDS[kind]
        return f"must be {words} {number(ctx[key])}, got {shown(value, quote=False)}"
    if kind == "finite_number":  # typed text says what was typed; a file's value says what it held
        return f"must be a finite number, got {shown(value)}" if isinstance(value, str) else \
            f"not a finite number ({value})"
    if kind == "literal_error":
        return f"{shown(value)} is not one of {ctx.get('expected')}"
    if kind in EXPECTED:
        return f"expected {EXPECTED[kind]}, got {shown(value)}"
    if kind == "value_error" and "error" in ctx:  # a rule's own words (ModelError keeps them apart from its path)
        return getattr(ctx["error"], "reason", None) or str(ctx["error"])
    return FIXED.get(kind) or error["msg"]
