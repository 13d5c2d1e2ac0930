"""A study file: TOML (tomllib; tomli on Python 3.10), read and checked for its shape. Its options are
checked later, by the declarations the flags use (resolve.py).

    name = "helpline"                 # the study's name (default: the file's)
    question = "..."                  # what it answers, in words
    budget = "20m"                    # device time it may take: seconds, or with s, m or h
    epoch_samples = 27018             # samples one fine-tune epoch means (prices an epoch)
    [prices]                          # per instance-hour, as `bench compare --price` takes them
    cpu = 0.10                        #   USD an hour for one device, or "13.11/8", or "dl1.24xlarge"
    [defaults]                        # options every run takes unless it says otherwise
    preset = "seed"
    [[runs]]                          # each run: a name, then options by their names
    name = "finetune"                 #   (an option's field name: batch_size, qps, slo_ttft_ms, ...)
    workload = ["blender-finetune"]
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from bench.core.durations import parse_duration
from bench.core.errors import ConfigError
from bench.core.prices import PriceSpec, parse_price
from bench.core.text import clip, shell_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (pyproject: tomli there)
    import tomli as tomllib

MAX_BYTES = 1 << 20
MAX_RUNS = 64
TOP_KEYS = ("name", "question", "budget", "epoch_samples", "prices", "defaults", "runs")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
BUILT_IN = ("smoke", "helpline")


@dataclass(frozen=True)
class RunSpec:
    name: str
    keys: dict  # option field name -> value, as the file gives it ([defaults] merged under it)


@dataclass(frozen=True)
class StudyFile:
    """A study as its file says it: where it came from, its question, budget, prices and runs."""

    where: str  # how errors name it: the file's path, `built-in study smoke`, or a report
    name: str
    question: str | None = None
    budget_s: float | None = None
    epoch_samples: int | None = None
    prices: tuple[PriceSpec, ...] = ()
    runs: tuple[RunSpec, ...] = field(default_factory=tuple)


def load(name_or_path: str) -> StudyFile:
    """A built-in study by name, else the file at the path."""
    if name_or_path in BUILT_IN:
        text = resources.files("bench.study").joinpath(f"{name_or_path}.toml").read_text(encoding="utf-8")
        return parse(text, f"built-in study {name_or_path}", name_or_path)
    path = Path(name_or_path)
    where = shell_path(clip(str(path), 200))
    if not path.suffix and not path.exists():
        raise ConfigError(f"study {where}: neither a built-in study ({', '.join(BUILT_IN)}) nor a file")
    return parse(_read(path, where), where, path.stem)


def _read(path: Path, where: str) -> str:
    try:
        if not path.is_file():
            raise ConfigError(f"{where}: not a file (a study is a TOML file)")
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError(f"{where}: larger than {MAX_BYTES >> 20} MiB; a study is a short TOML file")
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it ({exc.strerror or exc})") from None


def parse(text: str, where: str, default_name: str) -> StudyFile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({clip(str(exc), 200)})") from None
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key {clip(unknown[0], 60)!r}; a study has {', '.join(TOP_KEYS)}")
    return StudyFile(where, _name(data.get("name", default_name), where, "name"), _text(data, where),
                     _budget(data, where), _samples(data, where), _prices(data.get("prices", {}), where),
                     _runs(data, where))


def _name(value, where: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ConfigError(f"{where}: {what}: 1-64 letters, digits and . _ - (starting with a letter or digit), got "
                          f"{clip(repr(value), 60)}")
    return value


def _text(data: dict, where: str) -> str | None:
    value = data.get("question")
    if value is not None and (not isinstance(value, str) or len(value) > 1000):
        raise ConfigError(f"{where}: question: text of at most 1000 characters")
    return value


def _budget(data: dict, where: str) -> float | None:
    return None if "budget" not in data else parse_duration(data["budget"], f"{where}: budget")


def _samples(data: dict, where: str) -> int | None:
    value = data.get("epoch_samples")
    if value is None:
        return None
    if type(value) is not int or not 1 <= value <= 10**12:
        raise ConfigError(f"{where}: epoch_samples: a whole number of samples from 1 to 10^12, got "
                          f"{clip(repr(value), 60)}")
    return value


def _prices(table, where: str) -> tuple[PriceSpec, ...]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: prices: a table of DEVICE_OR_LABEL = USD_PER_HOUR[/DEVICES]")
    out = []
    for match, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"{where}: prices: {clip(match, 60)!r}: a number of USD an hour or text like 13.11/8")
        out.append(parse_price(f"{match}={value}", f"{where}: prices"))
    return tuple(out)


def _runs(data: dict, where: str) -> tuple[RunSpec, ...]:
    runs, defaults = data.get("runs"), data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{where}: defaults: a table of options every run takes")
    if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) for r in runs):
        raise ConfigError(f"{where}: runs: give at least one [[runs]] table, each with a name and its options")
    if len(runs) > MAX_RUNS:
        raise ConfigError(f"{where}: runs: at most {MAX_RUNS}, got {len(runs)}")
    out, seen = [], set()
    for i, table in enumerate(runs):
        name = _name(table.get("name"), where, f"runs[{i}].name")
        if name in seen:
            raise ConfigError(f"{where}: run {name!r} is named twice; give each run its own name")
        seen.add(name)
        out.append(RunSpec(name, {**defaults, **{k: v for k, v in table.items() if k != "name"}}))
    return tuple(out)
