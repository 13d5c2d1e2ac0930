"""Warm up until steady: step until successive windows of steps agree, within bounds.

A fixed warm-up count is too short for one workload and wasted on another (pyperf calibrates its
warm-ups for the same reason). After the first step (compile, allocation: recorded on its own),
steps run in windows of WINDOW; warm-up ends when the median step of a window is within TOLERANCE of
the window before it. It is bounded — MAX_STEPS steps or MAX_S seconds, whichever comes first — and
a warm-up that reached its bound says so in the report (`Repeat.warmup_steady` false). `--warmup N`
runs exactly N steps instead, and so does a group of ranks (GROUP_STEPS, below).

TOLERANCE is tighter than the 10 % by which `not_steady` (bench/core/stats.py steady_state_start)
judges the measured steps: a warm-up that ends only when its windows agree to 5 % leaves the
measured steps nothing that the check would call warming up. The check itself is unchanged.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW = 3
TOLERANCE = 0.05
MAX_STEPS = 60
MAX_S = 30.0
# Ranks of a group step together (every training step is an all-reduce): each deciding on its own
# windows when to stop would leave one waiting in a collective the others never join. A group warms
# up a fixed count instead: the first step and two windows, the least the steady rule runs.
GROUP_STEPS = 1 + 2 * WINDOW


@dataclass
class Warmup:
    times: list[float] = field(default_factory=list)  # every warm-up step's seconds, the first included
    steady: bool | None = None  # None: a fixed count; True: windows agreed; False: stopped at a bound


def agree(a: list[float], b: list[float], tolerance: float = TOLERANCE) -> bool:
    """Whether two windows' median steps are within `tolerance` of each other."""
    ma, mb = statistics.median(a), statistics.median(b)
    return ma > 0 and mb > 0 and max(ma, mb) / min(ma, mb) <= 1 + tolerance


def until_steady(step: Callable[[], float], fixed: int | None = None, on_step: Callable[[int], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, max_steps: int = MAX_STEPS,
                 max_s: float = MAX_S) -> Warmup:
    """Run warm-up steps (`step()` returns one step's seconds): `fixed` of them, or until steady."""
    out = Warmup()
    t0 = clock()
    while True:
        if fixed is not None and len(out.times) >= fixed:
            return out
        if fixed is None and _steady(out.times):
            out.steady = True
            return out
        if fixed is None and len(out.times) >= 1 and (len(out.times) >= max_steps or clock() - t0 >= max_s):
            out.steady = False
            return out
        out.times.append(step())
        if on_step is not None:
            on_step(len(out.times))


def _steady(times: list[float]) -> bool:
    """After the first step, the last two whole windows agree (checked at each window's end)."""
    body = times[1:]
    if len(body) < 2 * WINDOW or len(body) % WINDOW:
        return False
    return agree(body[-2 * WINDOW:-WINDOW], body[-WINDOW:])
