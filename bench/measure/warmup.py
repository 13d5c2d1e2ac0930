"""Warm up until steady: step until successive windows of steps agree, within bounds.

A fixed warm-up count is too short for one workload and wasted on another (pyperf calibrates its
warm-ups for the same reason). After the first step (compile, allocation: recorded on its own),
steps run in windows of WINDOW; warm-up ends when the median step of a window is within TOLERANCE of
the window before it. It is bounded — MAX_STEPS steps or MAX_S seconds, whichever comes first — and
a warm-up that reached its bound says so in the report (`Repeat.warmup_steady` false). `--warmup N`
runs exactly N steps instead, and so does a group of ranks (GROUP_STEPS, below).

The time bound counts the steps after the first: the first step holds the compile, which takes 30 s
and more in Gaudi's lazy mode without a recipe cache or under any torch.compile, and a bound that
counted it ended the warm-up after one step. Step 2 is often another new graph (AdamW creates its
state inside the first `step()`, torch/optim/adam.py `_init_group`, so in lazy mode step 2 is a new
graph). So where the device counts its compiles (`compiles`, bench/measure/compiles.py) the warm-up is
steady only once a whole window compiled nothing, and its time bound does not end it while the last
window still compiled (up to MAX_COMPILING_S): what compiles must compile here, not in the measured steps.

TOLERANCE is tighter than the 10 % by which `not_steady` (bench/core/stats.py steady_state_start)
judges the measured steps: a warm-up that ends only when its windows agree to 5 % leaves the
measured steps nothing that the check would call warming up. The check itself is unchanged.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW = 3
TOLERANCE = 0.05
MAX_STEPS = 60
MAX_S = 30.0
MAX_COMPILING_S = 600.0  # the time bound gives way to a compiling window only this long
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
                 max_steps: int = MAX_STEPS, max_s: float = MAX_S,
                 compiles: Callable[[], int | None] | None = None) -> Warmup:
    """Run warm-up steps (`step()` returns one step's seconds): `fixed` of them, or until steady.
    The time bound is the steps' own time after the first (no clock read of its own: every clock read of
    the runner follows a device sync). compiles: the device's cumulative graph count (None: not counted)."""
    out, counts = Warmup(), []
    while True:
        if fixed is not None and len(out.times) >= fixed:
            return out
        if fixed is None and _steady(out.times) and _quiet(counts):
            out.steady = True
            return out
        if fixed is None and out.times and _bound(len(out.times), sum(out.times[1:]), _quiet(counts), max_steps,
                                                  max_s):
            out.steady = False
            return out
        out.times.append(step())
        counts.append(compiles() if compiles is not None and fixed is None else None)
        if on_step is not None:
            on_step(len(out.times))


def _bound(steps: int, elapsed: float, quiet: bool, max_steps: int, max_s: float) -> bool:
    """Past the step bound; or past the time bound with a last window that compiled nothing (a compiling
    one may run on to MAX_COMPILING_S)."""
    return steps >= max_steps or (elapsed >= max_s and (quiet or elapsed >= MAX_COMPILING_S))


def _quiet(counts: list[int | None]) -> bool:
    """The last whole window after the first step compiled nothing (true where nothing counts)."""
    if not counts or counts[-1] is None:
        return True
    if len(counts) < 1 + WINDOW or counts[-1 - WINDOW] is None:
        return False
    return counts[-1] == counts[-1 - WINDOW]


def _steady(times: list[float]) -> bool:
    """After the first step, the last two whole windows agree (checked at each window's end)."""
    body = times[1:]
    if len(body) < 2 * WINDOW or len(body) % WINDOW:
        return False
    return agree(body[-2 * WINDOW:-WINDOW], body[-WINDOW:])
