"""When serving requests arrive: a seeded Poisson process, or a file of recorded arrivals.

Offsets are seconds from the start of a serving session. A Poisson process at rate q has independent
exponential gaps of mean 1/q (MLPerf LoadGen's Server scenario draws its query arrivals the same
way); the same seed gives the same arrivals on every device, so two devices face the same load.

An arrivals file has one request per line, `seconds_since_start prompt_tokens`, whitespace-separated,
the seconds non-decreasing; `#` starts a comment; blank lines are skipped.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from bench.core.errors import ConfigError
from bench.core.text import read_lines


@dataclass(frozen=True)
class ServingPlan:
    """One open-loop session's requests (bench/serve/session.py sends them)."""

    arrivals: tuple[float, ...]  # seconds from the session's start, non-decreasing
    prompts: tuple[tuple[int, ...], ...]  # each request's prompt, token ids
    new_tokens: tuple[int, ...]  # each request's output length, exactly

    def __post_init__(self):
        if not len(self.arrivals) == len(self.prompts) == len(self.new_tokens):
            raise ValueError("a serving plan needs one prompt and one output length per arrival")

    @property
    def prompt_tokens(self) -> list[int]:
        return [len(p) for p in self.prompts]


MAX_FILE_BYTES = 16 * 2**20
MAX_REQUESTS = 1_000_000


def poisson_arrivals(qps: float, n: int, seed: int) -> list[float]:
    """n arrival offsets of a Poisson process at qps requests per second (the first after one gap).
    One seed gives one pattern at every rate, stretched or squeezed: the points of a latency curve
    differ by their rate only, not by the luck of their own draw (common random numbers)."""
    if not (math.isfinite(qps) and qps > 0) or n < 0:
        raise ValueError(f"need a positive rate and a count, got {qps}, {n}")
    rng = random.Random(f"bench-arrivals-{seed}")
    t, out = 0.0, []
    for _ in range(n):
        t += rng.expovariate(1.0)
        out.append(t / qps)
    return out


def read_arrivals(path: str, flag: str = "--arrivals") -> tuple[list[float], list[int]]:
    """(offsets, prompt tokens) from an arrivals file; ConfigError naming the line on anything else."""
    offsets: list[float] = []
    tokens: list[int] = []
    for number, line in read_lines(path, flag, MAX_FILE_BYTES):
        fields = line.split()
        if len(fields) != 2:
            raise ConfigError(f"{flag} {path}:{number}: expected `seconds prompt_tokens`, got {line[:60]!r}")
        try:
            t, k = float(fields[0]), int(fields[1])
        except ValueError:
            raise ConfigError(f"{flag} {path}:{number}: not numbers: {line[:60]!r}") from None
        if not math.isfinite(t) or t < 0:
            raise ConfigError(f"{flag} {path}:{number}: the time must be a finite number of seconds >= 0")
        if offsets and t < offsets[-1]:
            raise ConfigError(f"{flag} {path}:{number}: {t:g} s comes before the line above ({offsets[-1]:g} s); "
                              "times must not decrease")
        if k < 1:
            raise ConfigError(f"{flag} {path}:{number}: a request needs at least 1 prompt token")
        offsets.append(t)
        tokens.append(k)
        if len(offsets) > MAX_REQUESTS:
            raise ConfigError(f"{flag} {path}: more than {MAX_REQUESTS:,} requests")
    if not offsets:
        raise ConfigError(f"{flag} {path}: no requests in it")
    return offsets, tokens
