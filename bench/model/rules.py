"""Rules a record's fields keep with each other, and values whose names say what they are.

For a record's @invariant methods (bench/model/fields.py), one call per rule; each raises
ModelError naming the field and the item (`finish_s[3]: 0.5 is before first_token_s (0.9)`):

    @invariant
    def _in_order(self) -> None:
        in_order(self, "arrival_s", "start_s", "first_token_s", "finish_s", nulls_last=True)

in_order   per item of parallel lists (or once, for scalar fields), the values that are not null
           never decrease in the order named; with nulls_last, after a null only nulls follow (a
           request never served has no first token, nor a finish).
within     a list per item (per-token times) never decreases and lies within two per-item fields.
named      a value of an open map (workload figures, series, params) fits what its name says
           (NAMED, IDENTITY): `ttft_s` is a duration, never negative; `offered_qps` a rate, never
           text; `slo.met` true, false or null, never "no"; `world_size` a whole number.

To extend: a new per-request time joins the in_order chain where it falls; per-token times (one
list per request) get `within(self, "token_times_s", "first_token_s", "finish_s")`; a count is
declared with minimum=0 in its fld(); a figure whose name ends in its unit (`itl_s`, `errors`,
`goodput_rps`) is checked by that name alone — add a pattern to NAMED for a unit not yet there, and a
family of figures (`errors.<code>`) to FAMILIES.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.core.typed import shown
from bench.model.fields import ModelError


def in_order(record, *names: str, nulls_last: bool = False) -> None:
    columns = [getattr(record, n) for n in names]
    if not columns or not isinstance(columns[0], list):
        _chain(names, columns, "", nulls_last)
        return
    lengths = {n: len(c) for n, c in zip(names, columns, strict=True)}
    if len(set(lengths.values())) > 1:
        raise ModelError("", "per-item lists differ in length (" + ", ".join(f"{n} {k}" for n, k in lengths.items()) + ")")
    for i, values in enumerate(zip(*columns, strict=True)):
        _chain(names, values, f"[{i}]", nulls_last)


def _chain(names, values, at: str, nulls_last: bool) -> None:
    last = None  # (name, value) of the latest value that was not null
    for name, value in zip(names, values, strict=True):
        if value is None:
            last = (name, None) if nulls_last else last
            continue
        if last is not None and last[1] is None:
            raise ModelError(f"{name}{at}", f"{shown(value)} although {last[0]} is null (it never happened)")
        if last is not None and value < last[1]:
            raise ModelError(f"{name}{at}", f"{shown(value)} is before {last[0]} ({shown(last[1])})")
        last = (name, value)


def within(record, name: str, low: str, high: str) -> None:
    """Every item's list of `name` non-decreasing, from low[i] to high[i] (each bound where known)."""
    lists, lows, highs = getattr(record, name), getattr(record, low), getattr(record, high)
    if lists is None:
        return
    if len(lists) != len(lows):
        raise ModelError(name, f"{len(lists)} entries, and {len(lows)} in {low}")
    for i, (times, lo, hi) in enumerate(zip(lists, lows, highs, strict=True)):
        _within(name, i, times or [], lo, hi, low, high)


def _within(name: str, i: int, times: list, lo, hi, low: str, high: str) -> None:
    for k, t in enumerate(times):
        where = f"{name}[{i}][{k}]"
        if lo is not None and t < lo:
            raise ModelError(where, f"{shown(t)} is before {low} ({shown(lo)})")
        if hi is not None and t > hi:
            raise ModelError(where, f"{shown(t)} is after {high} ({shown(hi)})")
        if k and t < times[k - 1]:
            raise ModelError(where, f"{shown(t)} is before the token before it ({shown(times[k - 1])})")


# ---- values named by what they are ------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """What a value named so must be: its types and bounds (None: unbounded), in words."""

    words: str
    types: tuple = (int, float)
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None  # an exclusive minimum
    stats: bool = True  # an Interval or a Summary of such values fits too


DURATION = Kind("a duration, never negative", minimum=0)
RATE = Kind("a rate per second, never negative", minimum=0)
AMOUNT = Kind("an amount, never negative", minimum=0)
FRACTION = Kind("a fraction from 0 to 1", minimum=0, maximum=1)
COUNT = Kind("a count, a whole number, never negative", (int,), minimum=0, stats=False)
SIZE = Kind("a size, a whole number of at least 1", (int,), minimum=1, stats=False)
SEED = Kind("a seed, a whole number, never negative", (int,), minimum=0, stats=False)
FLAG = Kind("true, false or null", (bool,), stats=False)
TEXT = Kind("text", (str,), stats=False)
POSITIVE = Kind("a number above 0", above=0, stats=False)
RELATIVE = Kind("a relative difference, a number of either sign")

# Open maps of every report (workload_metrics, series, a repeat's figures): (names ending so, names
# whose last dotted part is so, what they are).
NAMED = [
    (("_s", "_ms"), (), DURATION),
    (("_per_s", "_qps", "_rps"), ("qps",), RATE),
    (("_bytes", "_j", "_w", "_percent", "_flops"), ("bytes",), AMOUNT),
    ((), ("overhead_share",), RELATIVE),  # measured over a baseline: (with - without) / without, any sign
    (("_attainment", "_share", "_fraction"), (), FRACTION),
    ((), ("met",), FLAG),
    (("_count", "_total"), ("requests", "errors", "inter_token_gaps"), COUNT),
]
# A measured report's identity (params): what bench's workloads record, by name (published reports
# transcribe their source's own words, so they may hold text here).
IDENTITY = {
    **dict.fromkeys(("batch_size", "context_len", "label_len", "candidate_len", "retrieved_len", "new_tokens",
                     "beams", "world_size", "pool_size", "top_k", "poly_codes", "max_batch", "requests",
                     "parameters", "conversations", "turns", "max_tokens_in_flight", "reply_vocab",
                     "max_concurrency"), SIZE),
    **dict.fromkeys(("model", "model_type", "config_hash", "precision", "data", "optimizer", "optimizer_impl",
                     "scoring", "retriever", "arrivals", "load", "output_len", "window", "batching", "data_file",
                     "data_tokenizer", "input_len"), TEXT),
    "static_shapes": FLAG, "kv_cache": FLAG, "rescaled": FLAG, "arrival_seed": SEED, "lr": POSITIVE, "qps": POSITIVE,
    "temperature": POSITIVE, "top_p": POSITIVE, "sampling_seed": SEED,
    "batch_wait_ms": DURATION,
}


# Families of figures named `family.member` (`errors.timeout`: the failed requests of one cause).
FAMILIES = {"errors": COUNT}


def kind_of(name: str, exact: dict | None = None) -> Kind | None:
    if exact and name in exact:
        return exact[name]
    family, _, last = name.rpartition(".")
    if family in FAMILIES:
        return FAMILIES[family]
    return next((k for ends, names, k in NAMED if name.endswith(ends) or last in names), None)


def named(values: dict, where: str, exact: dict | None = None) -> None:
    """Each value of an open map fits what its name says (null always does); a list, item by item."""
    for name, value in values.items():
        kind = kind_of(name, exact)
        if kind is None:
            continue
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            why = misfit(item, kind)
            if why:
                at = f"{where}.{name}" + (f"[{i}]" if isinstance(value, list) else "")
                raise ModelError(at, f"{why}: {name} is {kind.words}")


def misfit(value, kind: Kind) -> str | None:
    """Why value is not of the kind (None: it is)."""
    if value is None:
        return None
    if kind.stats and hasattr(value, "__dataclass_fields__"):
        parts = {k: getattr(value, k) for k in STATS if hasattr(value, k)}
        return next((f"its {k} {why}" for k, v in parts.items() if (why := misfit(v, kind))), None)
    if type(value) not in kind.types and not (float in kind.types and type(value) is int) and not _whole(value, kind):
        return f"{shown(value)} is a {type(value).__name__}"
    return _out_of_bounds(value, kind) if isinstance(value, int | float) and type(value) is not bool else None


def _whole(value, kind: Kind) -> bool:
    """A whole-valued float where a whole number is asked: JSON writers and older reports write 3840.0."""
    return int in kind.types and type(value) is float and math.isfinite(value) and value.is_integer()


STATS = ("value", "ci_low", "ci_high", "mean", "median", "p90", "p99", "min", "max")  # of an Interval or a Summary


def _out_of_bounds(value, kind: Kind) -> str | None:
    if not math.isfinite(value):
        return f"{value} is not a finite number"
    if kind.minimum is not None and value < kind.minimum:
        return f"{shown(value)} is below {kind.minimum:g}"
    if kind.above is not None and value <= kind.above:
        return f"{shown(value)} is not above {kind.above:g}"
    if kind.maximum is not None and value > kind.maximum:
        return f"{shown(value)} is above {kind.maximum:g}"
    return None
