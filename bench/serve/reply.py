"""A reply as the API gives it: the engine's events of one request turned into text pieces, each with
its token, the finish reason on the last token's piece, and the stop strings applied to the text.

Stop strings (`stop`): once the reply has `min_tokens` tokens (vLLM's StopChecker checks none before),
the text is searched for each; at the first found the reply ends there, with finish reason `stop`,
the stop string and what follows it left out (as vLLM does without `include_stop_str_in_output`). While
the end of the text could still be the start of a stop string, that end is held back, and sent with
the next piece (or the last). A reply ended by a stop string tells the engine (`stopped`): its row is
freed at the next step.

A finish the engine reports with the last token (end of sequence, or the length asked for) is put on
that token's piece: vLLM sends it on the last token's chunk, and its client counts any further chunk
with a choice as one more token.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.serve.api import ApiError
from bench.serve.text import Detokenizer


@dataclass
class Piece:
    """One token's part of the reply: its text (possibly empty), its id, the finish where it is the last."""

    text: str
    token: int | None
    finish: str | None = None


def failure(event) -> ApiError | None:
    """The error a request's finish event is (it failed, or the server stopped), or None (it completed)."""
    if event.reason == "error":
        return ApiError(500, f"generation failed: {event.detail}", "server_error", code="generation_failed")
    if event.reason == "stopped":
        return ApiError(503, "the server stopped before this request finished", "server_error", code="server_stopped")
    return None


class Reply:
    def __init__(self, codec, stops: tuple[str, ...] = (), min_tokens: int = 0):
        self.detok, self.stops, self.min_tokens = Detokenizer(codec), stops, min_tokens
        self.held = ""  # text not sent yet: it may be the start of a stop string
        self.tokens = 0
        self.finish: str | None = None  # why it ended, once it did
        self.error: ApiError | None = None
        self.stopped = False  # ended by a stop string: the engine has not finished it
        self.text = ""  # everything sent so far

    @property
    def engine_done(self) -> bool:
        return self.finish is not None and not self.stopped

    def take(self, events) -> list[Piece]:
        """The pieces of one step's events of this request (none once it ended)."""
        out: list[Piece] = []
        for e in events:
            if self.finish is not None:
                break
            if e.kind == "token":
                out.append(self._token(e.token))
            elif e.kind == "finish":
                self._finish(e, out)
        self.text += "".join(p.text for p in out)
        return out

    def _token(self, token: int) -> Piece:
        self.tokens += 1
        text = self.held + self.detok.piece(token)
        if not self.stops:
            return Piece(text, token)
        if self.tokens >= self.min_tokens:
            found = [i for i in (text.find(s) for s in self.stops) if i >= 0]
            if found:
                self.held, self.finish, self.stopped = "", "stop", True
                return Piece(text[: min(found)], token, "stop")
        keep = self._pending(text)
        self.held = text[len(text) - keep:] if keep else ""
        return Piece(text[: len(text) - keep], token)

    def _pending(self, text: str) -> int:
        """How many characters at the end of the text could begin a stop string (at most its length - 1)."""
        longest = max(len(s) for s in self.stops) - 1
        for k in range(min(longest, len(text)), 0, -1):
            if any(s.startswith(text[-k:]) for s in self.stops):
                return k
        return 0

    def _finish(self, event, out: list[Piece]) -> None:
        self.finish, self.error = event.reason, failure(event)
        if self.error is not None:
            return
        if out and out[-1].token is not None:
            out[-1].text += self.held
            out[-1].finish = event.reason
        else:  # a finish with no token in its step (the engine always sends one with it): its own piece
            out.append(Piece(self.held, None, event.reason))
        self.held = ""
