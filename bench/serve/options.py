"""The HTTP server's own options (`bench serve` also takes the device, model and engine groups)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bench.core.errors import ConfigError
from bench.core.options import Options, opt

_HOST = re.compile(r"^[A-Za-z0-9.:\-\[\]]{1,253}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,127}$")


@dataclass(frozen=True)
class ServerOptions(Options):
    title = "HTTP server"
    description = "An OpenAI-compatible API (completions, chat completions, models, health, Prometheus metrics)."

    host: str = opt("127.0.0.1", "address to listen on (0.0.0.0: every interface; the API has no authentication)")
    port: int = opt(8000, "port to listen on (0: a free one, printed)", minimum=0, maximum=65535)
    served_model_name: str | None = opt(None, "the model's name in the API (default: the preset's model, or the "
                                              "checkpoint directory's name)", metavar="NAME")
    max_waiting: int = opt(256, "requests that may wait for a row; the next one is answered 429", minimum=1,
                           maximum=1_000_000)
    drain_s: float = opt(30.0, "on SIGTERM or Ctrl-C, how long requests in flight may take to finish before they are "
                               "cut off", minimum=0, maximum=3600, metavar="SECONDS")
    report: bool = opt(False, "when the server stops, write a report of its session to --out: telemetry, every "
                              "request's times and tokens, graph compiles")
    record_limit: int = opt(100_000, "with --report: requests recorded at most (those after are counted, not kept)",
                            minimum=1, maximum=10_000_000)

    def check(self) -> None:
        if not _HOST.match(self.host):
            raise ConfigError(f"--host: {self.host[:60]!r} is not an address or host name")
        if self.served_model_name is not None and not _NAME.match(self.served_model_name):
            raise ConfigError("--served-model-name: 1-128 letters, digits and . _ : / - (starting with a letter or "
                              "digit)")
