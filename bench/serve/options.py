"""The serving scenario's options, declared once: the engine's (`bench serve` and `bench run
--workload blender-serve` both take them), the load's, its SLOs and who serves (blender-serve), and
the HTTP server's own (`bench serve`)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from bench.core.errors import ConfigError
from bench.core.options import Options, opt
from bench.serve.arrivals import MAX_REQUESTS, MAX_SPAN_S, parse_load
from bench.serve.endpoint import base_url, bearer_token
from bench.serve.plan import parse_output_len
from bench.serve.prompts import parse_input_len

# what `bench serve` has no use for: a request says what it wants, the engine runs eager, no FLOPs counted
SERVE_UNUSED = ("batch_size", "label_len", "new_tokens", "beams", "data", "encoder", "pool_size", "compile",
                "peak_tflops")
_UUID = re.compile(r"^(?:GPU|MIG)-[0-9A-Fa-f-]{8,80}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MS = 3_600_000  # an SLO is at most an hour


@dataclass(frozen=True)
class EngineOptions(Options):
    """How the serving engine batches (`bench serve` takes this group; blender-serve adds its load)."""

    title = "serving engine"

    batching: str = opt("continuous", "continuous: requests join the running batch at every decode step and leave "
                                      "when done; static: a batch runs to completion before the next starts",
                        choices=("continuous", "static"))
    max_batch: int = opt(8, "requests decoded together at most", minimum=1, maximum=1024)
    max_tokens_in_flight: int | None = opt(None, "admission budget: prompt + max new tokens summed over the running "
                                                 "requests (default: only --max-batch bounds them)", minimum=2,
                                           maximum=1 << 24)
    batch_wait_ms: float = opt(10.0, "static batching: how long the oldest waiting request holds a batch open for "
                                     "more", minimum=0, maximum=60_000)

    def check_given(self, given: frozenset[str]) -> None:
        if self.batching != "static":
            self.ignored(given, "batch_wait_ms", "only applies with --batching static (continuous batching admits "
                                                 "requests at every step)")


@dataclass(frozen=True)
class ServeOptions(EngineOptions):
    title = "blender-serve"
    description = "serving under load: requests arrive on their own schedule, queue, and are served by the engine"
    presets = {"tiny": {"qps": (20.0,), "requests": 480, "slo_ttft_ms": 250.0},
               "seed": {"qps": (1.0,), "requests": 480, "slo_ttft_ms": 1000.0}}

    qps: tuple[float, ...] | None = opt(None, "offered rates, requests per second (conversations: conversations per "
                                              "second); each rate is a result of its own", exclusive_minimum=0,
                                        maximum=100_000, preset=True, metavar="R,R,...")
    load: str = opt("poisson", "poisson; gamma:B (gamma gaps of shape B, vLLM's burstiness: below 1 burstier, 1 "
                               "Poisson); constant (evenly spaced); burst (every request at the start: vLLM's "
                               "--request-rate inf; --qps unused); concurrency:N (closed loop: N in flight, the next "
                               "sent as one is answered; --qps unused)",
                    metavar="poisson|gamma:B|constant|burst|concurrency:N")
    ramp_up_s: float = opt(0.0, "raise the offered rate linearly from 0 over the first S seconds (concurrency: start "
                                "the N requests spread over S)", minimum=0, maximum=86_400, metavar="S")
    arrivals_as_drawn: bool = opt(False, "keep drawn gaps as drawn (by default they are rescaled so that the last of N "
                                         "requests arrives at N / rate, as vLLM does: the realised rate is the offered)")
    arrivals: str | None = opt(None, "replay arrivals from a file instead: lines of `seconds_since_start "
                                     "prompt_tokens`, non-decreasing, # comments; or a vLLM result JSON (`vllm bench "
                                     "serve --save-result --save-detailed`: its start_times less its queue_times, "
                                     "its input_lens)", metavar="FILE")
    requests: int | None = opt(None, "requests per session (per rate and repeat); a valid p99 verdict needs 459 or more",
                               minimum=2, maximum=1_000_000, preset=True)
    conversations: int | None = opt(None, "multi-turn: this many conversations of --turns requests each, started at "
                                          "--qps; each next turn carries the dialogue so far (instead of --requests)",
                                    minimum=1, maximum=100_000)
    turns: int = opt(3, "turns per conversation", minimum=1, maximum=1000)
    think_time_s: float = opt(0.0, "from an answer to its conversation's next turn", minimum=0, maximum=3600,
                              metavar="S")
    temperature: float = opt(0.0, "sampling temperature sent with every request (0: greedy, the default)", minimum=0,
                             maximum=2)
    top_p: float = opt(1.0, "top-p sent with every request (with --temperature above 0)", exclusive_minimum=0,
                       maximum=1)
    sampling_seed: int | None = opt(None, "request i is sent the seed S + i (with --temperature above 0): the same "
                                          "tokens on every run; without it each server draws its own",
                                    minimum=0, maximum=2**62, metavar="S")
    data_file: str | None = opt(None, "prompts from a JSON Lines file instead of --data: one {\"prompt\": TEXT} a line "
                                      "(vLLM's custom dataset; `text` as aiperf's), sent as text", metavar="FILE")
    data_tokenizer: str | None = opt(None, "--endpoint: the tokenizer (a local directory) of the model the server "
                                           "serves: --data-file's prompts are counted with it, and --data synthetic "
                                           "makes text of its words, --input-len of its tokens long", metavar="DIR")
    input_len: str = opt("uniform", "--data synthetic: prompt lengths: uniform (a quarter of --context-len to "
                                    "--context-len), fixed:N, normal:MEAN:SD (aiperf's --isl, --isl-stddev); each "
                                    "within --context-len", metavar="uniform|fixed:N|normal:MEAN:SD")
    max_concurrency: int | None = opt(None, "at most N requests in flight (vLLM's --max-concurrency), with any "
                                            "open load: a request that arrives with N in flight waits for one to "
                                            "end; its TTFT counts from its arrival, the wait included",
                                      minimum=1, maximum=100_000, metavar="N")
    output_len: str = opt("fixed", "output lengths: fixed (--new-tokens each); normal:SD (around --new-tokens, aiperf's "
                                   "--osl-stddev); eos (EOS-like stops: each token ends the reply with probability "
                                   "1 / --new-tokens); at most 4x --new-tokens; each request asks for exactly its own",
                          metavar="fixed|normal:SD|eos")
    warmup_requests: int = opt(0, "the first N requests by arrival are served but left out of the figures", minimum=0,
                               maximum=1_000_000)
    cooldown_requests: int = opt(0, "the last N requests by arrival are served but left out of the figures",
                                 minimum=0, maximum=1_000_000)
    slo_ttft_ms: float | None = opt(None, "service-level objective on time to first token (queueing included)",
                                    exclusive_minimum=0, maximum=MS, preset=True)
    slo_tpot_ms: float | None = opt(None, "service-level objective on time per output token, (e2e - TTFT) / "
                                          "(tokens - 1)", exclusive_minimum=0, maximum=MS)
    slo_e2e_ms: float | None = opt(None, "service-level objective on end-to-end latency", exclusive_minimum=0,
                                   maximum=MS)
    find_capacity: bool = opt(False, "probe rates for the highest whose p99s meet the SLOs, starting from the first "
                                     "--qps (doubling, then bisecting to within 15 %); prints its plan first")
    max_probes: int = opt(8, "rates --find-capacity may try", minimum=2, maximum=32)
    max_probe_s: float = opt(600.0, "--find-capacity: the longest a probe's arrivals may last; a slower rate gets fewer "
                                    "requests and a provisional verdict", minimum=1, maximum=86_400, metavar="S")
    engine: str = opt("in-process", "who serves: in-process (bench's engine in the worker); http (`bench serve` "
                                    "started on a free local port, loaded over HTTP)", choices=("in-process", "http"))
    endpoint: str | None = opt(None, "load the OpenAI-compatible server at this base URL instead (bench serve, vLLM, "
                                     "TGI, ...)", metavar="URL")
    api: str = opt("completions", "over HTTP: completions (prompts as token ids: the in-process prompts) or chat "
                                  "(messages as text; needs --data shipped)", choices=("completions", "chat"))
    endpoint_model: str | None = opt(None, "over HTTP: the model to ask for (default: the first of /v1/models)",
                                     metavar="NAME")
    endpoint_serves: str | None = opt(None, "--endpoint at a server that is not bench's: the model it serves as bench "
                                            "names it (tiny, blenderbot-90m or a checkpoint directory), so that its "
                                            "results compare with bench's engine on that model (bench serve says "
                                            "it itself); without it they compare only with the same endpoint model's",
                                      metavar="MODEL")
    endpoint_device: str | None = opt(None, "--endpoint on this machine: the accelerator its server uses, for the run's "
                                            "telemetry, where the server's process cannot be looked at here (another "
                                            "user's, another container's): index:N (its HLML or NVML index), module:M "
                                            "(a Gaudi module ID) or uuid:U (a GPU's UUID); by default the device the "
                                            "process listening on the endpoint's port holds",
                                      metavar="index:N|module:M|uuid:U")
    api_key_env: str | None = opt(None, "over HTTP: the environment variable holding the API key (sent as a bearer "
                                        "token, never written anywhere)", metavar="VAR")
    request_timeout_s: float = opt(600.0, "over HTTP: a request not answered within this is counted as a timeout",
                                   exclusive_minimum=0, maximum=86_400, metavar="S")

    @property
    def http(self) -> bool:
        return self.engine == "http" or self.endpoint is not None

    def check(self) -> None:
        load = parse_load(self.load)
        parse_output_len(self.output_len)
        parse_input_len(self.input_len)
        self._check_load(load)
        self._check_size(load)
        self._check_http()

    def _check_size(self, load) -> None:
        """A session's plan bounded before it is built: its requests, and how long its arrivals span."""
        if self.conversations and self.conversations * self.turns > MAX_REQUESTS:
            raise ConfigError(f"--conversations {self.conversations} x --turns {self.turns}: "
                              f"{self.conversations * self.turns:,} requests; a session has at most {MAX_REQUESTS:,}")
        if self.find_capacity and self.qps and len(self.qps) > 1:
            raise ConfigError(f"--qps: --find-capacity starts from one rate and chooses the others; give one, not "
                              f"{len(self.qps)}")
        first = self.conversations or self.requests
        if self.find_capacity or not load.open or self.arrivals is not None or not self.qps or not first:
            return
        think = (self.turns - 1) * self.think_time_s if self.conversations else 0.0
        for q in self.qps:
            span = first / q + self.ramp_up_s / 2 + think
            if span > MAX_SPAN_S:
                raise ConfigError(f"--qps {q:g}: {first:,} {'conversations' if self.conversations else 'requests'} at "
                                  f"that rate would arrive over {_duration(span)}; a session's arrivals span at most a "
                                  f"day ({MAX_SPAN_S:,} s): raise the rate or ask for fewer")

    def check_given(self, given: frozenset[str]) -> None:
        """Flags this configuration would not use are refused, naming what they need."""
        super().check_given(given)
        load, ignored = parse_load(self.load), self.ignored
        if not self.conversations:
            for name in ("turns", "think_time_s"):
                ignored(given, name, "only applies with --conversations")
        if not self.find_capacity:
            for name in ("max_probes", "max_probe_s"):
                ignored(given, name, "only applies with --find-capacity")
        if not load.rated or self.arrivals is not None:
            ignored(given, "qps", "unused: " + ("--arrivals gives the times" if self.arrivals is not None else
                                               "--load burst sends every request at the start" if load.kind == "burst"
                                               else "a closed loop (--load concurrency:N) offers no rate"))
        if self.arrivals is not None or load.kind in ("constant", "burst", "concurrency"):
            ignored(given, "arrivals_as_drawn", "only applies to drawn arrivals (--load poisson or gamma:B)")
        if load.kind == "burst":
            ignored(given, "ramp_up_s", "--load burst sends every request at the start: there is no rate to raise")
        self._check_given_requests(given, load)
        self._check_given_http(given)

    def _check_given_requests(self, given: frozenset[str], load) -> None:
        ignored = self.ignored
        if self.temperature == 0:
            for name in ("top_p", "sampling_seed"):
                ignored(given, name, "only applies with --temperature above 0 (0 is greedy: nothing is drawn)")
        if not load.open:
            ignored(given, "max_concurrency", "--load concurrency:N keeps N requests in flight already (the next "
                                              "arriving as one is answered)")
        if self.data_file is not None or self.arrivals is not None:
            ignored(given, "input_len", "--data-file's prompts have their own lengths" if self.data_file is not None
                    else "--arrivals gives each prompt's length")
        if self.endpoint is None:
            ignored(given, "data_tokenizer", "only with --endpoint (bench's own engine and bench serve count with "
                                             "the model's own tokenizer)")

    def _check_given_http(self, given: frozenset[str]) -> None:
        ignored = self.ignored
        if not self.http:
            for name in ("request_timeout_s", "api_key_env", "endpoint_model", "endpoint_serves", "endpoint_device"):
                ignored(given, name, "only applies over HTTP (--endpoint URL, or --engine http)")
        elif self.endpoint is None:
            ignored(given, "api_key_env", "the bench serve that --engine http starts takes no key; only with --endpoint")
            ignored(given, "endpoint_serves", "--engine http serves the run's own model (--preset, --model); only with "
                                              "--endpoint")
            ignored(given, "endpoint_model", "--engine http serves the run's own model (--preset, --model); only with "
                                             "--endpoint")
            ignored(given, "endpoint_device", "the bench serve that --engine http starts says which device it holds; "
                                              "only with --endpoint")
        else:
            for name in ("batching", "max_tokens_in_flight", "batch_wait_ms"):
                ignored(given, name, "bench's engine does not run with --endpoint: the server there batches as it "
                                     "was set up")

    def _check_load(self, load) -> None:
        if self.arrivals is not None and str(load) != "poisson":
            raise ConfigError("--load: an --arrivals file gives the arrival times itself")
        if self.find_capacity and (self.arrivals is not None or not load.rated or self.conversations):
            raise ConfigError("--find-capacity: probes offered rates of single requests; it cannot replay --arrivals, "
                              "nor drive a closed loop or conversations")
        if self.find_capacity and not any((self.slo_ttft_ms, self.slo_tpot_ms, self.slo_e2e_ms)):
            raise ConfigError("--find-capacity: needs an SLO (--slo-ttft-ms, --slo-tpot-ms or --slo-e2e-ms)")
        if self.conversations and (not load.open or self.arrivals is not None):
            raise ConfigError("--conversations: their first turns arrive as --load draws them; not with "
                              "concurrency:N or --arrivals")
        if self.data_tokenizer is not None and self.conversations:  # completions would send the last turn alone
            raise ConfigError("--data-tokenizer: its text prompts are single requests; not with --conversations (whose "
                              "dialogue goes as messages: --api chat with the shipped data)")
        if self.data_file is not None and (self.conversations or self.arrivals is not None):
            raise ConfigError("--data-file: its prompts are single requests of their own lengths; not with "
                              + ("--conversations" if self.conversations else "--arrivals (which gives each length)"))
        n = self.conversations * self.turns if self.conversations else self.requests
        if n is not None and self.warmup_requests + self.cooldown_requests >= n:
            raise ConfigError(f"--warmup-requests + --cooldown-requests: must leave some of the {n} requests measured")

    def _check_http(self) -> None:
        if self.engine == "http" and self.endpoint is not None:
            raise ConfigError("--engine http starts bench serve itself; --endpoint names a server already running: "
                              "give one of them")
        if self.api == "chat" and not self.http:
            raise ConfigError("--api chat: the in-process engine takes token ids; chat is for --endpoint or --engine http")
        if self.api_key_env is not None and not _ENV_NAME.match(self.api_key_env):
            raise ConfigError("--api-key-env: the name of an environment variable (letters, digits, _)")
        if self.endpoint is not None:
            base_url(self.endpoint)
        self.device_identity()

    def device_identity(self) -> dict | None:
        """--endpoint-device as the collectors take a device: {"index": N}, {"module_id": M} or {"uuid": U}."""
        if self.endpoint_device is None:
            return None
        kind, _, value = self.endpoint_device.partition(":")
        key = {"index": "index", "module": "module_id", "uuid": "uuid"}.get(kind.strip().lower())
        value = value.strip()
        if key in ("index", "module_id") and value.isascii() and value.isdigit() and len(value) <= 6:
            return {key: int(value)}
        if key == "uuid" and _UUID.match(value):
            return {key: value}
        raise ConfigError(f"--endpoint-device {self.endpoint_device[:60]!r}: give index:N, module:M or uuid:U (a GPU's "
                          "UUID as nvidia-smi -L shows it)")

    def api_key(self) -> str | None:
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ConfigError(f"--api-key-env {self.api_key_env}: that environment variable is not set")
        return bearer_token(key, self.api_key_env)


def _duration(seconds: float) -> str:
    days = seconds / 86_400
    if days >= 1e6:  # --qps 1e-300 read out as a 300-digit figure
        return f"{days:.2g} days"
    return f"{days:,.1f} days" if seconds >= 2 * 86_400 else f"{seconds / 3600:,.1f} h"


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
    max_connections: int | None = opt(None, "open connections at most, apart from the requests (default: --max-waiting "
                                            "+ 1024): past it a new connection takes the place of the one idle the "
                                            "longest, or (none idle) may only ask /health, /metrics and /v1/models "
                                            "(anything else: 503)", minimum=2, maximum=1_000_000)
    client_timeout_s: float = opt(30.0, "a client must send a request's headers and body within this from its first "
                                        "byte (or from the connection's opening), and take an answer's bytes without "
                                        "stalling longer than this; a slower one is cut (answered 408 where it was "
                                        "still sending its headers)", exclusive_minimum=0, maximum=3600,
                                  metavar="SECONDS")
    keep_alive_s: float = opt(75.0, "an idle connection between requests is closed after this", exclusive_minimum=0,
                              maximum=3600, metavar="SECONDS")
    drain_s: float = opt(30.0, "on SIGTERM, Ctrl-C or another draining signal (docs/serving.md), how long requests in "
                               "flight may take to finish before they are cut off", minimum=0, maximum=3600,
                         metavar="SECONDS")
    report: bool = opt(False, "when the server stops, write a report of its session to --out: telemetry, every "
                              "request's times and tokens, graph compiles")
    record_limit: int = opt(100_000, "with --report: requests recorded at most (those after are counted, not kept)",
                            minimum=1, maximum=10_000_000)

    def check_given(self, given: frozenset[str]) -> None:
        if not self.report:
            self.ignored(given, "record_limit", "only applies with --report (without it nothing is recorded)")

    def check(self) -> None:
        self._check_connections()
        if not _HOST.match(self.host):
            raise ConfigError(f"--host: {self.host[:60]!r} is not an address or host name")
        if self.served_model_name is not None and not _NAME.match(self.served_model_name):
            raise ConfigError("--served-model-name: 1-128 letters, digits and . _ : / - (starting with a letter or "
                              "digit)")

    @property
    def connection_limit(self) -> int:
        """--max-connections, or by default --max-waiting + 1024 within what the process may open."""
        if self.max_connections is not None:
            return self.max_connections
        return max(self.max_waiting + 1, min(self.max_waiting + 1024, _open_files() - FILES_BESIDE))

    def _check_connections(self) -> None:
        if self.max_connections is not None and self.max_connections <= self.max_waiting:
            raise ConfigError(f"--max-connections {self.max_connections}: must be more than --max-waiting "
                              f"({self.max_waiting}): each waiting request holds a connection, and /health needs one")
        need, hard = self.connection_limit + FILES_BESIDE, _open_files()
        if hard < need:
            raise ConfigError(f"--max-connections {self.connection_limit}: needs {need:,} open files; this process may "
                              f"open {hard:,} (ulimit -Hn): lower it (or --max-waiting)")


FILES_BESIDE = 256  # open files `bench serve` needs besides its connections (the model, logs, telemetry)


def _open_files() -> int:
    """The most files this process may open (its hard limit; a large number where there is none)."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 30 if hard == resource.RLIM_INFINITY else hard
