"""The server's connections, bounded apart from its requests (the engine's queue bounds those: 429).

uvicorn's HTTP/1.1 protocol over h11 (uvicorn 0.55, protocols/http/h11_impl.py `H11Protocol`, passed
as `uvicorn.Config(http=...)`), with what it lacks: it waits for a request's headers without end (its
keep-alive timer starts only after a response), and its `limit_concurrency` counts connections against
the request queue (a full count answers every request, /health included, with a plain-text 503).
Here:
  read deadline  a request's headers and body arrive within `client_timeout_s` of its first byte (of the
                 connection's opening, for its first request), however slowly they drip: past it, a
                 connection still sending headers is answered 408 and closed, one still sending its
                 body is closed (the app sees its client gone)
  write stall    a client that stops reading its answer (the transport's buffer full: writing paused)
                 for `client_timeout_s` is cut; the app sees it gone, and its request is cancelled
  idle           a connection between requests is closed after `keep_alive_s` (uvicorn's own timer)
  count          at most `max_connections` open: a new one past it takes the place of the connection
                 that has waited longest without a request being served on it; where every one is
                 serving a request, the new one may still ask /health, /metrics or /v1/models, and any
                 other request on it is answered 503 (`too_many_connections`); past SPARE more, it is
                 closed at once
Every refusal is OpenAI-shaped JSON.
"""

from __future__ import annotations

import json

SPARE = 64  # connections past the limit that still get an answer (their status paths, or a 503)
STATUS_PATHS = ("/health", "/metrics", "/v1/models")
WRITE_BUFFER = 16 << 10  # bytes held for a client before writing pauses (asyncio's default: 64 KiB)


def _error(status: int, message: str, code: str) -> dict:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _raw(status: int, reason: str, message: str, code: str) -> bytes:
    """A whole response written past h11 (no request was read), closing the connection."""
    body = json.dumps(_error(status, message, code)).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n")
    return head.encode() + body


def too_many(app, max_connections: int):
    """An ASGI app for a connection past the limit: the status paths as `app` answers them, the rest 503."""
    from starlette.responses import JSONResponse

    body = _error(503, f"the server holds its limit of {max_connections:,} connections, each serving a request; "
                       "retry later", "too_many_connections")

    async def refuse(scope, receive, send):
        if scope["type"] == "http" and scope["path"] in STATUS_PATHS:
            return await app(scope, receive, send)
        await JSONResponse(body, status_code=503, headers={"connection": "close"})(scope, receive, send)

    return refuse


def protocol_class(max_connections: int, client_timeout_s: float):
    """uvicorn's H11Protocol with the bounds of the module's docstring."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return type("BoundedH11Protocol", (Bounded, H11Protocol),
                {"max_connections": max_connections, "client_timeout_s": client_timeout_s})


class Bounded:
    """What connections.protocol_class adds to uvicorn's H11Protocol (it comes after this in the MRO)."""

    max_connections: int
    client_timeout_s: float
    read_timer = write_timer = None
    active_at = 0.0
    heard = False  # bytes of the request under way have arrived

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        transport.set_write_buffer_limits(WRITE_BUFFER)
        self.active_at = self.loop.time()
        self._arm()
        open_now = sum(1 for c in self.connections if not c.transport.is_closing())
        if open_now > self.max_connections and not self._evict_one():
            if open_now > self.max_connections + SPARE:
                transport.close()
            else:
                self.app = too_many(self.app, self.max_connections)

    def data_received(self, data: bytes) -> None:
        self.active_at = self.loop.time()
        if self._between_requests():
            self.heard = True
            if self.read_timer is None:
                self._arm()
        super().data_received(data)
        if not self._between_requests() and not self.cycle.more_body:  # the whole request is in
            self._disarm()
            self.heard = False

    def connection_lost(self, exc) -> None:
        self._disarm()
        self._write_moves()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.write_timer is None:
            self.write_timer = self.loop.call_later(self.client_timeout_s, self.transport.abort)

    def resume_writing(self) -> None:
        self._write_moves()
        super().resume_writing()

    def _write_moves(self) -> None:
        if self.write_timer is not None:
            self.write_timer.cancel()
            self.write_timer = None

    def on_response_complete(self) -> None:
        self.active_at = self.loop.time()
        super().on_response_complete()

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self.read_timer = self.loop.call_later(self.client_timeout_s, self._read_timed_out)

    def _disarm(self) -> None:
        if self.read_timer is not None:
            self.read_timer.cancel()
            self.read_timer = None

    def _read_timed_out(self) -> None:
        self.read_timer = None
        if self.transport.is_closing():
            return
        if self._between_requests() and self.heard:
            self.transport.write(_raw(408, "Request Timeout", f"the request did not arrive within "
                                      f"{self.client_timeout_s:g} s", "request_timeout"))
        self.transport.close()  # a body still arriving: the app sees its client gone

    def _evict_one(self) -> bool:
        """Close the connection that has waited longest without a request being served on it."""
        idle = [c for c in self.connections if c is not self and c._between_requests() and not c.transport.is_closing()]
        if not idle:
            return False
        min(idle, key=lambda c: c.active_at).transport.close()
        return True
