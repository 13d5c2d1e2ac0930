"""A study's runs resolved by the declarations the flags use, and the resolved study every report carries.

A run's keys are option field names (`batch_size`, `qps`, `slo_ttft_ms`, `workload`, `preset`): each is
put where its flag would put it and `bench run`'s own build (bench/launch/config.py) checks it, so a
key is refused exactly as its flag would be — an unknown key, a bad value, a key the run would ignore —
with the file, the run and the key named. The box (`--device`, `--threads`, a device's own flags) and
the output (`--out`, `--label`) are the command line's: the same study runs on every box.

The resolved study (bench/model/report.py `Study`) holds every run's options with the defaults and the
preset filled. From a report's copy, each run's keys are the values that differ from the declarations'
defaults; they are resolved again as a file's would be, and must give the same study, byte for byte.
"""

from __future__ import annotations

import argparse
import json
import re

from bench.core.errors import ConfigError
from bench.core.prices import PriceSpec
from bench.core.text import clip
from bench.devices.options import DeviceOptions
from bench.launch import catalog
from bench.launch.config import RunConfig, build, device_groups, option_groups
from bench.launch.options import OutputOptions
from bench.model.fields import plain
from bench.model.report import Study, StudyPrice, StudyRun
from bench.study.file import RunSpec, StudyFile

BOX = "the box's, given to bench study on its command line (--device, --threads, a device's own flags)"
OUTPUT = "the command's, given to bench study on its command line (--out, --label, --quiet)"
NOT_THE_STUDYS = ("device", "device_own", "output")  # RunConfig.to_json keys the study does not hold
_FLAG = re.compile(r"--[a-z0-9][a-z0-9-]*")


def run_groups() -> dict[str, type]:
    """{field name: its group} of every option a study's run may set."""
    owners: dict[str, type] = {}
    for group in option_groups():
        if group in (DeviceOptions, OutputOptions) or group in device_groups():
            continue
        for f, _, _ in group.declared():
            if f.name in owners:
                raise ConfigError(f"two option groups declare {f.name!r} ({owners[f.name].__name__}, "
                                  f"{group.__name__}); a plug-in must choose another name")
            owners[f.name] = group
    return owners


def _refused(key: str) -> str | None:
    """Why a key is not the study's to set (None: it is)."""
    if any(key in {f.name for f, _, _ in g.declared()} for g in [DeviceOptions, *device_groups()]):
        return BOX
    if key in {f.name for f, _, _ in OutputOptions.declared()}:
        return OUTPUT
    return None


def namespace(run: RunSpec, where: str, box: argparse.Namespace) -> argparse.Namespace:
    """The run's keys where their flags would put them, over the box's and the output's flags."""
    owners = run_groups()
    ns = argparse.Namespace(**vars(box))
    for key, value in run.keys.items():
        why = _refused(key)
        if why:
            raise ConfigError(f"{where}: run {run.name!r}: {key}: is {why}")
        if key not in owners:
            raise ConfigError(f"{where}: run {run.name!r}: unknown key {clip(key, 60)!r}; a key is an option's name "
                              f"(bench run's flag without its dashes, - as _: batch_size, qps, slo_ttft_ms)")
        if isinstance(value, dict) or isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
            raise ConfigError(f"{where}: run {run.name!r}: {key}: a value or a list of values, not a table")
        setattr(ns, owners[key].dest(key), value)
    return ns


def keyed(message: str) -> str:
    """An option error in a study's words: each run option's flag named by its key (`--batch-size` ->
    `batch_size`); the box's flags stay flags."""
    owners = run_groups()
    flags = {group.flag_of(name): name for name, group in owners.items()}
    return _FLAG.sub(lambda m: flags.get(m.group(), m.group()), message)


def resolve_run(run: RunSpec, where: str, box: argparse.Namespace) -> RunConfig:
    """The run's checked configuration, built as `bench run` builds one; errors name the file, run, key."""
    try:
        return build(namespace(run, where, box))
    except ConfigError as exc:
        text = str(exc)
        if text.startswith(where):
            raise
        raise ConfigError(f"{where}: run {run.name!r}: {keyed(text)}") from None


def study_config(cfg: RunConfig) -> dict:
    """What the study holds of a run's configuration: all but the box and the output."""
    return {k: v for k, v in cfg.to_json().items() if k not in NOT_THE_STUDYS}


def resolve(spec: StudyFile, box: argparse.Namespace) -> tuple[Study, list[RunConfig]]:
    """The resolved study and each run's configuration (for the box the command line names)."""
    cfgs = [resolve_run(run, spec.where, box) for run in spec.runs]
    prices = [StudyPrice(p.match, p.usd_per_hour, p.devices, p.source) for p in spec.prices]
    study = Study(spec.name, spec.question, spec.budget_s, spec.epoch_samples, prices,
                  [StudyRun(run.name, study_config(c)) for run, c in zip(spec.runs, cfgs, strict=True)])
    return study, cfgs


def canonical(study: Study) -> bytes:
    """The resolved study's bytes: what must be the same when it is resolved again."""
    return json.dumps(plain(study), sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


# ---- back from a report -----------------------------------------------------------------------------

def groups_of(config: dict) -> dict[str, type]:
    """{config key: its option group} of a run's configuration, as RunConfig.to_json writes it."""
    from bench.launch.options import LaunchOptions
    from bench.measure.options import MeasureOptions
    from workloads.common import CommonOptions

    out = {"common": CommonOptions, "measure": MeasureOptions, "launch": LaunchOptions}
    for name in config.get("workloads") or []:
        if name not in catalog.available():
            raise ConfigError(f"workload {clip(str(name), 60)!r} is not registered here")
        out[f"workload:{name}"] = catalog.load(name).Options
    return out


def keys_of(config: dict) -> dict:
    """The keys that resolve to this configuration: the preset, the workloads, and every option whose
    value is not its declaration's default."""
    keys = {"preset": config.get("preset"), "workload": list(config.get("workloads") or [])}
    for key, group in groups_of(config).items():
        values = config.get(key)
        if not isinstance(values, dict):
            raise ConfigError(f"its {key!r} options are missing")
        defaults = {f.name: f.default for f, _, _ in group.declared()}
        for name, value in values.items():
            if name not in defaults:
                raise ConfigError(f"{key}: {clip(name, 60)!r} is not an option of this bench")
            if value != (list(defaults[name]) if isinstance(defaults[name], tuple) else defaults[name]):
                keys[name] = value
    return keys


def from_report(study: Study, where: str) -> StudyFile:
    """The study a report carries, as a file would give it."""
    runs = []
    for run in study.runs:
        try:
            runs.append(RunSpec(run.name, keys_of(run.config)))
        except ConfigError as exc:
            raise ConfigError(f"{where}: its study's run {run.name!r}: {exc}") from None
    prices = tuple(PriceSpec(p.match, p.usd_per_hour, p.devices, p.source) for p in study.prices)
    return StudyFile(where, study.name, study.question, study.budget_s, study.epoch_samples, prices, tuple(runs))


def check_same(again: Study, carried: Study, where: str) -> None:
    """A study resolved again from a report must be the one the report carries (else bench's defaults
    changed since, and the runs would not be the same)."""
    if canonical(again) == canonical(carried):
        return
    for a, b in zip(again.runs, carried.runs, strict=False):
        for group in sorted(set(a.config) | set(b.config)):
            if a.config.get(group) != b.config.get(group):
                mine, theirs = a.config.get(group) or {}, b.config.get(group) or {}
                name = next((k for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)), group)
                raise ConfigError(f"{where}: its study resolves differently with this bench: run {a.name!r}, "
                                  f"{name}: {clip(repr(theirs.get(name)), 60)} in the report, "
                                  f"{clip(repr(mine.get(name)), 60)} now; run it with the bench that wrote it")
    raise ConfigError(f"{where}: its study resolves differently with this bench; run it with the bench that wrote it")
