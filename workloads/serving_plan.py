"""What a serving session asks: output lengths, a conversation's user turns, and the capacity
search's plan (how many requests each probe gets, and how long the search can take at worst).

Output lengths (`--output-len`), drawn once per seed, the same on every device and engine; each
request is then sent for exactly its length (min = max tokens), so that every server does the same
work whatever its model would have stopped at:
    fixed     --new-tokens each
    normal:SD around --new-tokens with standard deviation SD (aiperf's --osl and --osl-stddev), rounded
    eos       EOS-like stops: after each token the reply ends with probability 1 / --new-tokens (a
              geometric length of mean --new-tokens, as an end-of-sequence token chosen at random would)
each at least 1 and at most 4 x --new-tokens (and the model's positions).

A conversation's user turns are the data's prompts cut to their last context_len / (2 x turns)
tokens, so that the dialogue — turns and replies — grows within the context before it is cut.

The capacity search gives each probe enough requests for a valid p99 verdict with none over the SLO
(LoadGen's early stopping: 459 at 99 % confidence), more if --requests asks, unless that would take a
probe longer than --max-probe-s at its rate: then it gets what fits, and its verdict is provisional.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from bench.core import tails
from bench.core.errors import ConfigError

OUTPUT_LENS = ("fixed", "normal:SD", "eos")
LONGEST = 4  # an output is at most this many times --new-tokens


def parse_output_len(text: str) -> tuple[str, float]:
    """(kind, standard deviation) of --output-len; ConfigError otherwise."""
    kind, sep, value = text.strip().partition(":")
    if kind in ("fixed", "eos") and not sep:
        return kind, 0.0
    if kind == "normal" and sep:
        try:
            sd = float(value)
        except ValueError:
            sd = math.nan
        if math.isfinite(sd) and 0 <= sd <= 1e5:
            return kind, sd
    raise ConfigError(f"--output-len: expected one of {', '.join(OUTPUT_LENS)} (SD from 0 to 100000), got {text[:60]!r}")


def longest_output(spec: str, mean: int, positions: int | None = None) -> int:
    longest = mean if parse_output_len(spec)[0] == "fixed" else LONGEST * mean
    return min(longest, positions) if positions else longest


def output_lengths(spec: str, mean: int, n: int, seed: int, cap: int) -> tuple[int, ...]:
    """n output lengths as --output-len draws them (seeded), each within [1, cap]."""
    kind, sd = parse_output_len(spec)
    if kind == "fixed":
        return (min(mean, cap),) * n
    rng = random.Random(f"bench-output-len-{seed}-{spec}")
    if kind == "normal":
        draws = [round(rng.gauss(mean, sd)) for _ in range(n)]
    else:
        stop = 1.0 / mean
        draws = [1 if stop >= 1 else 1 + int(math.log(1.0 - rng.random()) / math.log(1.0 - stop)) for _ in range(n)]
    return tuple(max(1, min(cap, k)) for k in draws)


def user_turns(prompts: list[list[int]], turns: int, context_len: int) -> list[list[int]]:
    """Each prompt cut to its last context_len / (2 x turns) tokens (at least one)."""
    keep = max(1, context_len // (2 * turns))
    return [p[-keep:] for p in prompts]


@dataclass(frozen=True)
class CapacityPlan:
    """The capacity search: its first rate, probes, each probe's request count and the worst case."""

    start_qps: float
    probes: int
    requests: int  # what a probe gets where its rate allows
    needed: int  # LoadGen's minimum for a p99 verdict with none over
    max_probe_s: float
    trimmed: int = 0  # warm-up and cool-down requests, sent but not judged

    def requests_at(self, qps: float) -> int:
        """The requests of a probe at this rate: the plan's, or what fits its longest time."""
        fits = int(qps * self.max_probe_s)
        return max(2 + self.trimmed, min(self.requests, fits))

    def provisional_at(self, qps: float) -> bool:
        return self.requests_at(qps) - self.trimmed < self.needed

    @property
    def lowest_qps(self) -> float:
        return self.start_qps / 2 ** (self.probes - 1)

    def worst_case_s(self) -> float:
        """Every probe missing, the rate halving each time: no path's i-th probe is slower (its
        rate is at least start / 2^i, and a probe's time falls as its rate rises)."""
        return sum(self.requests_at(self.start_qps / 2**i) / (self.start_qps / 2**i) for i in range(self.probes))

    def text(self) -> str:
        cut = self.provisional_at(self.lowest_qps)
        return (f"capacity search: up to {self.probes} probes from {self.start_qps:g} requests/s, {self.requests} "
                f"requests each ({self.needed} are needed for a valid p99 verdict with none over the SLO"
                f"{f', {self.trimmed} more are trimmed' if self.trimmed else ''}); "
                f"a probe is cut to {self.max_probe_s:g} s (fewer requests, a provisional verdict)"
                f"{', as the lowest rates would be' if cut else ''}; at worst about {_duration(self.worst_case_s())} "
                f"of arrivals, if every probe misses and the rate halves to {self.lowest_qps:.3g} requests/s")


def capacity_plan(options) -> CapacityPlan:
    trimmed = options.warmup_requests + options.cooldown_requests
    needed = tails.min_passing(0, 0.99)
    return CapacityPlan(options.qps[0] if options.qps else 1.0, options.max_probes,
                        max(options.requests or 0, needed + trimmed), needed, options.max_probe_s, trimmed)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
