"""One typed record per request, and each per-request figure defined once over it.

As vLLM's `benchmarks/serve.py` reads a list of `RequestFuncOutput`s, the serving maths reads a list
of `RequestRecord`s, made from a report's `RequestLog` (its columns, on the run's clock). Every
figure of a request is one function here; where two readers need two origins — bench counts from
the scheduled arrival (MLPerf LoadGen's rule), the vLLM export from the send (vLLM's) — the origin is
a parameter of the one function:

    ttft(r, origin)   first token - origin
    e2e(r, origin)    last token - origin
    tpot(r)           (last token - first token) / (tokens - 1), requests of 2 tokens or more: the
                      same from either origin, (e2e - TTFT) / (tokens - 1)
    itl(r)            every gap between consecutive token stamps (one stamp per streamed chunk over HTTP)
    queue(r)          joined a batch - arrival (in this process only)
    late(r)           sent - when it could be sent (its scheduled arrival; under a concurrency cap, the
                      moment a slot freed): how late the load generator sent it (not latency)
    waited(r)         sent - scheduled arrival: the time on the client's side before the send (a slot's
                      wait and the lateness: vLLM's `client_queue_time`)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Origin = Literal["arrival", "sent"]
LONGEST_OUTPUT = 4  # a request asks for at most this many times --new-tokens (drawn lengths; fixed: exactly it)


def most_tokens(params: dict) -> int | None:
    """The most tokens one request of a serving result could ask for, from its identity (--new-tokens,
    --output-len); None where it does not say."""
    mean, spec = params.get("new_tokens"), params.get("output_len") or "fixed"
    if type(mean) is not int or mean < 1 or not isinstance(spec, str):
        return None
    return mean if spec == "fixed" else LONGEST_OUTPUT * mean


@dataclass(frozen=True)
class RequestRecord:
    """What one request went through, on the run's clock (None: not known, or it did not happen)."""

    arrival_s: float  # its scheduled arrival
    first_token_s: float | None
    finish_s: float | None  # None: it did not complete (`error` says why)
    prompt_tokens: int
    new_tokens: int
    sent_s: float | None = None
    ready_s: float | None = None
    start_s: float | None = None
    token_s: tuple[float, ...] = ()
    error: str | None = None
    measured: bool = True  # in the measured window (not a warm-up or cool-down request)
    turn: int | None = None

    @property
    def done(self) -> bool:
        return self.finish_s is not None


def records(log, measured_only: bool = True) -> list[RequestRecord]:
    """The requests of a `RequestLog`, in its order (only the measured window's by default)."""
    out = []
    for i, arrival in enumerate(log.arrival_s):
        measured = log.measured is None or bool(log.measured[i])
        if measured_only and not measured:
            continue
        out.append(RequestRecord(
            arrival_s=arrival, first_token_s=log.first_token_s[i], finish_s=log.finish_s[i],
            prompt_tokens=log.prompt_tokens[i], new_tokens=log.new_tokens[i], sent_s=_at(log.sent_s, i),
            ready_s=_at(getattr(log, "ready_s", None), i),
            start_s=log.start_s[i], token_s=tuple(log.token_s[i]) if log.token_s else (),
            error=_at(log.error, i) or (None if log.finish_s[i] is not None else "unfinished"), measured=measured,
            turn=_at(log.turn, i)))
    return out


def _at(column, i: int):
    return column[i] if column is not None else None


def origin_s(r: RequestRecord, origin: Origin = "arrival") -> float:
    """When a request's latency starts: its scheduled arrival, or when it was sent (its arrival where
    the send was not recorded)."""
    if origin == "sent" and r.sent_s is not None:
        return r.sent_s
    return r.arrival_s


def ttft(r: RequestRecord, origin: Origin = "arrival") -> float | None:
    return None if r.first_token_s is None or not r.done else r.first_token_s - origin_s(r, origin)


def e2e(r: RequestRecord, origin: Origin = "arrival") -> float | None:
    return None if not r.done else r.finish_s - origin_s(r, origin)


def tpot(r: RequestRecord) -> float | None:
    """Time per output token after the first; None for a one-token or failed request."""
    if not r.done or r.first_token_s is None or r.new_tokens < 2:
        return None
    return (r.finish_s - r.first_token_s) / (r.new_tokens - 1)


def itl(r: RequestRecord) -> list[float]:
    return [b - a for a, b in zip(r.token_s, r.token_s[1:], strict=False)]


def queue(r: RequestRecord) -> float | None:
    return None if not r.done or r.start_s is None else r.start_s - r.arrival_s


def late(r: RequestRecord) -> float | None:
    return None if r.sent_s is None else r.sent_s - (r.arrival_s if r.ready_s is None else r.ready_s)


def waited(r: RequestRecord) -> float | None:
    return None if r.sent_s is None else r.sent_s - r.arrival_s
