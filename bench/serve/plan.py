"""What a serving session asks: its plan (`ServingPlan`: when each request arrives, its prompt and
its output length), output lengths and a conversation's user turns (the arrivals are arrivals.py's).

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
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from bench.core.errors import ConfigError
from bench.serve.maths.records import LONGEST_OUTPUT
from bench.serve.protocol import Sampling


@dataclass(frozen=True)
class ServingPlan:
    """One session's requests (bench/serve/session.py sends them). Open loop: one arrival per request,
    or per conversation whose first turn it is (`turns` > 1: a conversation's next turn arrives
    `think_s` after its previous answer, and carries the dialogue so far, cut to its last
    `context_len` tokens). Closed loop (`concurrency`): no arrivals; that many requests are in flight,
    the first ones spread over `ramp_s`, and the next is sent when one is answered. `max_concurrency`
    caps an open loop's requests in flight: one that arrives at the cap waits for one to end. Every
    request is sent with `sampling` (request i with the seed `sampling.seed + i`, where there is one);
    `as_text`: its prompt came as text, and goes to a server as text (its `texts`)."""

    arrivals: tuple[float, ...]  # seconds from the session's start, non-decreasing
    prompts: tuple[tuple[int, ...], ...]  # each request's prompt (a conversation's: each user turn), token ids
    new_tokens: tuple[int, ...]  # each request's output length, exactly
    texts: tuple[str, ...] | None = None  # each prompt's text, for an API that takes messages
    turns: int = 1
    think_s: float = 0.0
    concurrency: int | None = None
    ramp_s: float = 0.0
    context_len: int | None = None
    sampling: Sampling = Sampling()
    max_concurrency: int | None = None
    as_text: bool = False

    def __post_init__(self):
        if len(self.prompts) != len(self.new_tokens) or (self.texts is not None and len(self.texts) != len(self.prompts)):
            raise ValueError("a serving plan needs one prompt, one output length (and one text) per request")
        if self.concurrency is None and len(self.arrivals) * self.turns != len(self.prompts):
            raise ValueError("an open-loop plan needs one arrival per request (or per conversation of `turns`)")
        if self.concurrency is not None and (self.arrivals or self.turns != 1 or self.concurrency < 1):
            raise ValueError("a closed-loop plan has no arrivals, single turns and a concurrency of at least 1")
        if self.as_text and self.texts is None:
            raise ValueError("a plan of text prompts needs their texts")

    def sampling_of(self, i: int) -> Sampling:
        """Request i's sampling: the plan's, its seed the plan's + i."""
        s = self.sampling
        return s if s.seed is None else Sampling(s.temperature, s.top_p, s.seed + i)

    @property
    def prompt_tokens(self) -> list[int]:
        return [len(p) for p in self.prompts]


OUTPUT_LENS = ("fixed", "normal:SD", "eos")
LONGEST = LONGEST_OUTPUT  # an output is at most this many times --new-tokens


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
