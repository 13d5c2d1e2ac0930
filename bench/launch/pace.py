"""How fast each workload of a run goes on this box, before it runs: what its plan's estimates are made of.

A pace (bench/measure/scenario.py `Pace`) is a repeat's fixed part — the worker's start, set-up,
warm-up and checks — and one measured step (a serving request's time in a full batch). It comes from
the newest report in the run's --out directory that ran the same workload with the same options on
this host and device (`measured`), else from bench's stated defaults (`default`): the times of the
presets on a busy 2-core CPU box, where a repeat's fixed part is mostly Python and torch starting.
On another device a default is a guess — the plan says so — and the run's own repeats show the real
pace (the ETA follows them; a study's budget is checked against them before each repeat).
"""

from __future__ import annotations

import json
import socket
import statistics
from pathlib import Path

from bench.measure.scenario import Pace
from bench.model.report import variant_label

WORKER_START_S = 12.0  # a worker's Python, torch and transformers imports, once per process (a busy 2-core box)
# (workload, preset) -> (set-up, warm-up and checks of one repeat in a worker that has its imports; one measured
# step, or a serving request's end-to-end time), seconds: runs of bench on a 2-core CPU box with another job's
# load on it (torch 2.13, 1 thread). A capacity probe's set-up is a serving repeat's.
DEFAULTS = {
    ("blender-finetune", "tiny"): (1.5, 0.04), ("blender-finetune", "seed"): (85.0, 12.0),
    ("blender-generate", "tiny"): (2.0, 0.07), ("blender-generate", "seed"): (25.0, 2.0),
    ("retrieval-encode", "tiny"): (1.0, 0.04), ("retrieval-encode", "seed"): (40.0, 3.0),
    ("retrieve-refine", "tiny"): (1.3, 0.07), ("retrieve-refine", "seed"): (40.0, 2.5),
    ("blender-serve", "tiny"): (1.0, 0.03), ("blender-serve", "seed"): (30.0, 2.0),
}
UNKNOWN = (60.0, 1.0)  # a plug-in workload, or a preset the table does not hold
SCAN_FILES = 12  # newest reports looked at in --out
SCAN_BYTES = 16 * 2**20  # a larger report (long telemetry) is skipped: the plan must not wait on it


def default_pace(workload: str, preset: str, start_s: float) -> Pace:
    """bench's stated default for a workload and preset, each repeat paying `start_s` of process start."""
    fixed, step = DEFAULTS.get((workload, preset), UNKNOWN)
    return Pace(fixed + start_s, step, "default")


def paces(cfg) -> dict[str, Pace]:
    """Each workload's pace for this run: measured here before, else the default (a fresh worker per
    repeat starts Python and torch each time; --in-process starts them once, for the first workload)."""
    earlier = _earlier(cfg)
    out = {}
    for i, name in enumerate(cfg.workloads):
        start = WORKER_START_S if not cfg.launch.in_process or i == 0 else 0.0
        out[name] = earlier.get(name) or default_pace(name, cfg.preset, start)
    return out


def _earlier(cfg) -> dict[str, Pace]:
    """Paces read from the newest reports in --out that ran a workload like this run's, here."""
    found: dict[str, Pace] = {}
    for path in _newest(Path(cfg.output.out)):
        data = _read(path)
        if data is None or not _same_box(data, cfg):
            continue
        for result in data.get("results") or []:
            name = result.get("workload") if isinstance(result, dict) else None
            if name in cfg.workloads and name not in found and _same_options(data, cfg, name):
                pace = _pace_of(result, data)
                if pace is not None:
                    found[name] = pace
    return found


def _newest(folder: Path) -> list[Path]:
    try:
        files = [p for p in folder.glob("*.json") if p.is_file() and p.stat().st_size <= SCAN_BYTES]
    except OSError:
        return []
    return sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)[:SCAN_FILES]


def _read(path: Path) -> dict | None:
    """A report's JSON, or None for anything that is not one (a file read here is only a hint)."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and data.get("status") in ("ok", "failed") else None


def _same_box(data: dict, cfg) -> bool:
    env = data.get("environment") if isinstance(data.get("environment"), dict) else {}
    device, host = env.get("device") or {}, env.get("host") or {}
    return isinstance(device, dict) and isinstance(host, dict) and device.get("backend") == cfg.device.device and \
        host.get("hostname") == socket.gethostname()


# options a budget sizes or a search varies, which change how many requests a session holds, not how fast
# each goes: a run that differs only in them ran at the same pace
SIZED = ("qps", "requests", "find_capacity", "max_probes", "max_probe_s")


def _same_options(data: dict, cfg, name: str) -> bool:
    """The same preset, shared options, workload options (but those a budget sizes) and process isolation."""
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    mine = cfg.to_json()
    launch = config.get("launch") if isinstance(config.get("launch"), dict) else {}
    return config.get("preset") == cfg.preset and config.get("common") == mine["common"] and \
        _unsized(config.get(f"workload:{name}")) == _unsized(mine.get(f"workload:{name}")) and \
        launch.get("in_process") == cfg.launch.in_process


def _unsized(options) -> dict | None:
    return {k: v for k, v in options.items() if k not in SIZED} if isinstance(options, dict) else None


def _number(value) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e9
    return float(value) if ok else None


def _pace_of(result: dict, data: dict) -> Pace | None:
    """A repeat's fixed part (its share of the result's wall time less its measured phase) and a step: a
    measured step's median, or a serving request's median end-to-end time."""
    stopping = result.get("stopping") if isinstance(result.get("stopping"), dict) else {}
    seconds, ran = _number(stopping.get("seconds")), _number(stopping.get("ran"))
    measure = _measure_phases(data, result)
    step = _step_s(result)
    if not seconds or not ran or not measure or step is None:
        return None
    fixed = seconds / ran - statistics.median(measure)
    return Pace(fixed, step, "measured") if fixed >= 0 else None


def _step_s(result: dict) -> float | None:
    wm = result.get("workload_metrics") if isinstance(result.get("workload_metrics"), dict) else {}
    if "offered_qps" in wm:
        e2e = wm.get("e2e_s") if isinstance(wm.get("e2e_s"), dict) else {}
        return _number(e2e.get("median"))
    repeats = (result.get("timing") or {}).get("repeats") if isinstance(result.get("timing"), dict) else None
    steps = [t for rep in repeats or [] if isinstance(rep, dict) for t in rep.get("step_times_s") or []
             if _number(t) is not None]
    return statistics.median(steps) if steps else None


def _measure_phases(data: dict, result: dict) -> list[float]:
    """The measured phases of the result's repeats (its variant's, for one of several results)."""
    telemetry = data.get("telemetry") if isinstance(data.get("telemetry"), dict) else {}
    variant = result.get("variant") if isinstance(result.get("variant"), dict) else {}
    try:
        label = variant_label(variant)
    except (TypeError, ValueError):
        return []
    return [p["end_s"] - p["start_s"] for p in telemetry.get("phases") or [] if isinstance(p, dict) and
            p.get("workload") == result.get("workload") and p.get("variant") == label and
            p.get("phase") == "measure" and _number(p.get("start_s")) is not None and
            _number(p.get("end_s")) is not None and p["end_s"] >= p["start_s"]]
