"""When serving requests arrive: a seeded Poisson or gamma process, evenly spaced, or a file of
recorded arrivals.

Offsets are seconds from the start of a serving session. A Poisson process at rate q has independent
exponential gaps of mean 1/q (MLPerf LoadGen's Server scenario draws its query arrivals the same
way); the same seed gives the same arrivals on every device, so two devices face the same load.

`--load gamma:B` draws gamma gaps of shape B and mean 1/q, vLLM's `--burstiness` (vllm/benchmarks/
serve.py `get_request`: shape B, scale 1 / (q B)): B = 1 is Poisson, B < 1 burstier, B > 1 more
even; `constant` spaces them exactly 1/q apart. Drawn gaps are then rescaled so that the last of n
requests arrives at n / q, as vLLM does, and the realised rate is the offered one (`rescale`;
`--arrivals-as-drawn` keeps the draw). A ramp-up of S seconds raises the rate linearly from 0 to q
over S (`ramp`: the pattern's time changed so that its intensity is q t / S until S); vLLM's own
ramp-up goes from one rate to another by request index, and it does not rescale a ramped pattern.

An arrivals file has one request per line, `seconds_since_start prompt_tokens`, whitespace-separated,
the seconds non-decreasing; `#` starts a comment; blank lines are skipped. It may instead be a vLLM
result (`vllm bench serve --save-result --save-detailed`, one JSON object): each request's arrival is
its `start_times` entry (when vLLM's client sent it, perf_counter seconds) less its `queue_times` entry
(the wait for a `--max-concurrency` slot), counted from the first; its length is its `input_lens` entry
(vllm/benchmarks/serve.py, 0.32: `limited_request_func`, `client_queue_time = start_time -
request_arrival_time`). Replayed so, two tools offer the same load, not two draws of one rate.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass

from bench.core.errors import ConfigError
from bench.core.text import clip, read_small, text_lines, utf8_text

MAX_FILE_BYTES = 16 * 2**20
MAX_REQUESTS = 1_000_000  # requests of one session, however they are asked for
MAX_SPAN_S = 86_400  # a session's planned arrivals span at most a day
MAX_PROMPT_TOKENS = 1 << 20  # a prompt length beyond any model's context (a request cuts it to --context-len)


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


def gamma_arrivals(qps: float, n: int, seed: int, burstiness: float) -> list[float]:
    """n offsets with gamma gaps of shape `burstiness` and mean 1/qps (1: the Poisson process above,
    draw for draw); one pattern per seed and shape, stretched or squeezed by the rate."""
    if burstiness == 1.0:
        return poisson_arrivals(qps, n, seed)
    if not (math.isfinite(qps) and qps > 0 and math.isfinite(burstiness) and burstiness > 0) or n < 0:
        raise ValueError(f"need a positive rate, shape and a count, got {qps}, {burstiness}, {n}")
    rng = random.Random(f"bench-arrivals-{seed}-gamma-{burstiness!r}")
    t, out = 0.0, []
    for _ in range(n):
        t += rng.gammavariate(burstiness, 1.0 / burstiness)
        out.append(t / qps)
    return out


def constant_arrivals(qps: float, n: int) -> list[float]:
    """n offsets exactly 1/qps apart, the first after one gap."""
    return [(i + 1) / qps for i in range(n)]


def rescale(offsets: list[float], qps: float) -> list[float]:
    """The offsets scaled so that the last of n lands at n / qps (vLLM's normalisation)."""
    if not offsets or offsets[-1] <= 0:
        return list(offsets)
    factor = len(offsets) / qps / offsets[-1]
    return [t * factor for t in offsets]


def ramp(offsets: list[float], ramp_s: float) -> list[float]:
    """A pattern at rate q, time-changed so that its rate rises linearly from 0 to q over ramp_s
    seconds: an offset t (q t arrivals expected by then) moves to sqrt(2 ramp_s t) while t <= ramp_s / 2,
    and to t + ramp_s / 2 after."""
    if ramp_s <= 0:
        return list(offsets)
    return [math.sqrt(2 * ramp_s * t) if t <= ramp_s / 2 else t + ramp_s / 2 for t in offsets]


@dataclass(frozen=True)
class Load:
    """How requests are offered: `poisson`, `gamma` (shape `value`), `constant`, `burst` (every request at
    the start, vLLM's `--request-rate inf`), or `concurrency` (closed loop: `value` requests in flight, the
    next sent when one is answered)."""

    kind: str
    value: float | None = None

    @property
    def open(self) -> bool:
        """The load does not wait for the server (every kind but the closed loop)."""
        return self.kind != "concurrency"

    @property
    def rated(self) -> bool:
        """It offers a rate (--qps)."""
        return self.kind in ("poisson", "gamma", "constant")

    def __str__(self) -> str:
        return self.kind if self.value is None else f"{self.kind}:{self.value:g}"


LOADS = ("poisson", "gamma:B", "constant", "burst", "concurrency:N")


def parse_load(text: str, flag: str = "--load") -> Load:
    """`poisson`, `gamma:B` (B > 0), `constant`, `burst` or `concurrency:N` (N >= 1); ConfigError otherwise."""
    kind, sep, value = text.strip().partition(":")
    if kind in ("poisson", "constant", "burst") and not sep:
        return Load(kind)
    if kind in ("gamma", "concurrency") and sep:
        try:
            v = float(value)
        except ValueError:
            v = math.nan
        if kind == "gamma" and math.isfinite(v) and 0.01 <= v <= 100:
            return Load(kind, 1.0 if v == 1 else v)
        if kind == "concurrency" and v.is_integer() and 1 <= v <= 100_000:
            return Load(kind, v)
    raise ConfigError(f"{flag}: expected one of {', '.join(LOADS)} (gamma's shape B from 0.01 to 100, "
                      f"concurrency's N from 1 to 100000), got {text[:60]!r}")


def open_arrivals(load: Load, qps: float | None, n: int, seed: int, as_drawn: bool = False, ramp_s: float = 0.0):
    """The offsets of an open-loop load: drawn, rescaled (unless as_drawn), ramped; a burst's all at 0."""
    if load.kind == "burst":
        return [0.0] * n
    if load.kind == "constant":
        offsets = constant_arrivals(qps, n)
    else:
        offsets = gamma_arrivals(qps, n, seed, load.value if load.kind == "gamma" else 1.0)
        if not as_drawn:
            offsets = rescale(offsets, qps)
    return ramp(offsets, ramp_s)


def read_arrivals(path: str, flag: str = "--arrivals") -> tuple[list[float], list[int]]:
    """(offsets, prompt tokens) from an arrivals file; ConfigError naming the line on anything else
    (and never quoting it: a file given by mistake may hold secrets)."""
    offsets: list[float] = []
    tokens: list[int] = []
    where = f"{flag} {clip(str(path), 200)}"
    data = read_small(path, flag, MAX_FILE_BYTES)  # read once: a FIFO or /proc file reads differently twice
    if data.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] == b"{":
        return vllm_arrivals(utf8_text(data, where), where)
    for number, line in text_lines(data, where):
        t, k = _arrival(line, f"{where}:{number}")
        if offsets and t < offsets[-1]:
            raise ConfigError(f"{where}:{number}: {t:g} s comes before the line above ({offsets[-1]:g} s); "
                              "times must not decrease")
        offsets.append(t)
        tokens.append(k)
        if len(offsets) > MAX_REQUESTS:
            raise ConfigError(f"{where}: more than {MAX_REQUESTS:,} requests")
    if not offsets:
        raise ConfigError(f"{where}: no requests in it")
    return offsets, tokens


def _arrival(line: str, where: str) -> tuple[float, int]:
    """One line's (seconds, prompt tokens), each within its bound."""
    fields = line.split()
    if len(fields) != 2:
        raise ConfigError(f"{where}: expected two fields, `seconds_since_start prompt_tokens`, got {len(fields)}")
    try:
        t = float(fields[0])
    except ValueError:
        raise ConfigError(f"{where}: the first field is not a number of seconds") from None
    if not (math.isfinite(t) and 0 <= t <= MAX_SPAN_S):
        raise ConfigError(f"{where}: the time must be from 0 to {MAX_SPAN_S:,} s (a day: a session's arrivals "
                          "span at most that)")
    if not fields[1].isascii() or not fields[1].isdigit():
        raise ConfigError(f"{where}: the second field is not a whole number of prompt tokens")
    if len(fields[1]) > 9 or not 1 <= int(fields[1]) <= MAX_PROMPT_TOKENS:
        raise ConfigError(f"{where}: a prompt has 1 to {MAX_PROMPT_TOKENS:,} tokens")
    return t, int(fields[1])


def vllm_arrivals(data: str | bytes, where: str) -> tuple[list[float], list[int]]:
    """(offsets, prompt tokens) of a vLLM result, in arrival order (see the module's docstring)."""
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        more = " (several results, as --append-result writes them: keep one)" if "Extra data" in str(exc) else ""
        raise ConfigError(f"{where}: not a vLLM result: not one JSON object{more}") from None
    starts = _column(obj, "start_times", where)
    lens = _column(obj, "input_lens", where, len(starts))
    queued = _column(obj, "queue_times", where, len(starts)) if obj.get("queue_times") is not None else [0.0] * len(starts)
    if not starts or len(starts) > MAX_REQUESTS:
        raise ConfigError(f"{where}: a vLLM result of 1 to {MAX_REQUESTS:,} requests (start_times), got {len(starts):,}")
    if any(type(k) is not int or not 1 <= k <= MAX_PROMPT_TOKENS for k in lens):
        raise ConfigError(f"{where}: input_lens: each a whole number of 1 to {MAX_PROMPT_TOKENS:,} prompt tokens")
    if any(q < 0 for q in queued):
        raise ConfigError(f"{where}: queue_times: each a wait of 0 s or more")
    arrivals = [s - q for s, q in zip(starts, queued, strict=True)]
    order = sorted(range(len(arrivals)), key=arrivals.__getitem__)
    first = arrivals[order[0]]
    offsets = [arrivals[i] - first for i in order]
    if offsets[-1] > MAX_SPAN_S:
        raise ConfigError(f"{where}: its arrivals span {offsets[-1]:,.4g} s; a session's span at most a day")
    return offsets, [lens[i] for i in order]


def _column(obj, key: str, where: str, length: int | None = None) -> list:
    """A list of finite numbers of a vLLM result (`length` of them where given)."""
    values = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(values, list) or any(type(v) not in (int, float) or not math.isfinite(v) for v in values):
        raise ConfigError(f"{where}: not a vLLM result with per-request details: `{key}` must be a list of numbers "
                          "(vllm bench serve --save-result --save-detailed)")
    if length is not None and len(values) != length:
        raise ConfigError(f"{where}: `{key}` has {len(values):,} entries for {length:,} start_times")
    return values
