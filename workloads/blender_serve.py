"""blender-serve: BlenderBot answering a support line's requests as they arrive.

The load (`--load`): a seeded Poisson process at --qps (the default), bursty gamma arrivals
(`gamma:B`, vLLM's burstiness), evenly spaced ones (`constant`), the times an --arrivals file gives,
or a closed loop of N requests in flight (`concurrency:N`); `--ramp-up-s` raises the rate from 0.
Drawn gaps are rescaled so that the realised rate is the offered one (`--arrivals-as-drawn` keeps
them). `--conversations N --turns K`: N conversations start at --qps, each next turn arriving
--think-time-s after the previous answer with the dialogue so far as its prompt. Output lengths are
--new-tokens each, or drawn (`--output-len`, with EOS-like stops); every request asks for exactly
its length. The first --warmup-requests and last --cooldown-requests are served, not measured.

Who serves (`--engine`, `--endpoint`): bench's engine in the worker (bench/serve/: continuous
batching by default, `--batching static` for whole batches), `bench serve` started by the run on a
free local port and loaded over HTTP, or any OpenAI-compatible server at --endpoint. Every
request's arrival, send, token times and finish are recorded on the run's clock; workloads/serving.py
turns them into TTFT, ITL, TPOT and end-to-end percentiles, the achieved rate, SLO attainment,
goodput and each SLO's verdict with its validity (LoadGen's early stopping).

Each offered rate is a result of its own (`--qps 1,2,4,8`); `--find-capacity` searches for the
highest rate whose p99s meet the SLOs, each probe given enough requests for a valid verdict.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

from bench.core.arrivals import ServingPlan, open_arrivals, parse_load, read_arrivals
from bench.core.endpoint import base_url
from bench.core.errors import ConfigError
from bench.core.options import Options, opt
from bench.model.report import FigureSpec
from workloads.base import Workload
from workloads.data import request_prompts, shipped_tokenizer
from workloads.models import build_blender, check_positions, model_config, model_identity
from workloads.serving import capacity_search, serving_metrics
from workloads.serving_plan import capacity_plan, longest_output, output_lengths, parse_output_len, user_turns

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
                                                 "requests (default: only --max-batch bounds them)", minimum=1,
                                           maximum=1 << 24)
    batch_wait_ms: float = opt(10.0, "static batching: how long the oldest waiting request holds a batch open for "
                                     "more", minimum=0, maximum=60_000)


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
                               "Poisson); constant (evenly spaced); concurrency:N (closed loop: N in flight, the next "
                               "sent as one is answered; --qps unused)", metavar="poisson|gamma:B|constant|concurrency:N")
    ramp_up_s: float = opt(0.0, "raise the offered rate linearly from 0 over the first S seconds (concurrency: start "
                                "the N requests spread over S)", minimum=0, maximum=86_400, metavar="S")
    arrivals_as_drawn: bool = opt(False, "keep drawn gaps as drawn (by default they are rescaled so that the last of N "
                                         "requests arrives at N / rate, as vLLM does: the realised rate is the offered)")
    arrivals: str | None = opt(None, "replay arrivals from a file instead: lines of `seconds_since_start "
                                     "prompt_tokens`, non-decreasing, # comments", metavar="FILE")
    requests: int | None = opt(None, "requests per session (per rate and repeat); a valid p99 verdict needs 459 or more",
                               minimum=2, maximum=1_000_000, preset=True)
    conversations: int | None = opt(None, "multi-turn: this many conversations of --turns requests each, started at "
                                          "--qps; each next turn carries the dialogue so far (instead of --requests)",
                                    minimum=1, maximum=100_000)
    turns: int = opt(3, "turns per conversation", minimum=1, maximum=1000)
    think_time_s: float = opt(0.0, "from an answer to its conversation's next turn", minimum=0, maximum=3600,
                              metavar="S")
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
        self._check_load(load)
        self._check_http()

    def _check_load(self, load) -> None:
        if self.arrivals is not None and str(load) != "poisson":
            raise ConfigError("--load: an --arrivals file gives the arrival times itself")
        if self.find_capacity and (self.arrivals is not None or not load.open or self.conversations):
            raise ConfigError("--find-capacity: probes offered rates of single requests; it cannot replay --arrivals, "
                              "nor drive a closed loop or conversations")
        if self.find_capacity and not any((self.slo_ttft_ms, self.slo_tpot_ms, self.slo_e2e_ms)):
            raise ConfigError("--find-capacity: needs an SLO (--slo-ttft-ms, --slo-tpot-ms or --slo-e2e-ms)")
        if self.conversations and (not load.open or self.arrivals is not None):
            raise ConfigError("--conversations: their first turns arrive as --load draws them; not with "
                              "concurrency:N or --arrivals")
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

    def api_key(self) -> str | None:
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ConfigError(f"--api-key-env {self.api_key_env}: that environment variable is not set")
        return key


class BlenderServe(Workload):
    name = "blender-serve"
    description = "Serving under load: open or closed loop, conversations, in-process or over HTTP; latency, capacity"
    tokens_are = "new tokens"
    main_metric = "samples_per_s"
    serves = True
    generates = True
    memory_flags = ("--max-batch", "--context-len", "--new-tokens")
    Options = ServeOptions
    figures = (FigureSpec("metrics.samples_per_s", "requests/s busy", "requests/s", "higher", lead=True),
               FigureSpec("workload_metrics.offered_qps", "offered", "requests/s", "none"),
               FigureSpec("workload_metrics.offered_conversations_per_s", "conversations offered", "conversations/s",
                          "none"),
               FigureSpec("workload_metrics.achieved_qps", "achieved", "requests/s", "higher"),
               *(FigureSpec(f"workload_metrics.{key}_s.{stat}", f"{label} {name}", "s", "lower")
                 for key, label in (("ttft", "TTFT"), ("itl", "ITL"), ("tpot", "TPOT"))
                 for stat, name in (("median", "p50"), ("p90", "p90"), ("p99", "p99"))),
               FigureSpec("workload_metrics.e2e_s.median", "e2e p50", "s", "lower"),
               FigureSpec("workload_metrics.e2e_s.p99", "e2e p99", "s", "lower"),
               FigureSpec("workload_metrics.queue_s.p99", "queue p99", "s", "lower"),
               FigureSpec("workload_metrics.late_s.p99", "sent late p99", "s", "lower"),
               FigureSpec("workload_metrics.new_tokens_per_s", "new tokens/s", "tokens/s", "higher"),
               FigureSpec("workload_metrics.slo_attainment", "SLO met", "fraction", "higher"),
               FigureSpec("workload_metrics.goodput_rps", "goodput", "requests/s", "higher"),
               FigureSpec("workload_metrics.errors", "errors", "", "lower"))

    @classmethod
    def variants(cls, options):
        if options.find_capacity:
            plan = capacity_plan(options)
            yield from capacity_search(plan.start_qps, options.max_probes, plan.requests_at)
        elif options.arrivals is not None or not options.qps or not parse_load(options.load).open:
            yield {}
        else:
            for q in options.qps:
                yield {"qps": (q,)}

    @classmethod
    def variant_count(cls, options) -> int | None:
        if options.find_capacity:
            return None
        return len(options.qps) if options.arrivals is None and options.qps else 1

    @classmethod
    def plan_text(cls, options) -> str | None:
        """What a capacity search will do, and how long it can take, said before it starts."""
        return capacity_plan(options).text() if options.find_capacity else None

    @classmethod
    def check_model(cls, common, new_tokens: int | None = None) -> None:
        """The engine runs BlenderBot-small models, prompts and outputs within its positions."""
        cfg = model_config(common.model)
        if cfg.get("model_type") != "blenderbot-small":
            raise ConfigError(f"--model {common.model}: the serving engine runs BlenderBot-small models "
                              f"(model_type blenderbot-small), not {str(cfg.get('model_type'))[:40]!r}")
        check_positions(common.model, cfg, **{"--context-len": common.context_len, "--new-tokens": new_tokens})

    @classmethod
    def check(cls, common, options, device) -> None:
        if options.endpoint is None:
            cls.check_model(common, common.new_tokens)
        if options.arrivals is not None:
            read_arrivals(options.arrivals)
        elif not options.qps and parse_load(options.load).open:
            raise ConfigError("--qps: blender-serve needs an offered rate (or --arrivals FILE, or --load concurrency:N)")
        if common.beams != 1:
            raise ConfigError("--beams: blender-serve generates greedily (beam search is not a serving setting)")
        if options.api == "chat" and common.data != "shipped":
            raise ConfigError("--api chat: messages are text; the synthetic data has none (use --data shipped)")
        options.api_key()

    # -- set-up --------------------------------------------------------------------------------------
    def setup(self) -> None:
        """The model (in-process: to serve; `--engine http`: only its identity), a full batch of
        warm-up prompts, and the session's plan where there is one (`bench serve` has none)."""
        import torch

        c, o = self.common, self.options
        torch.manual_seed(c.seed)
        self.config = None
        self.model = None
        self.identity = {"model": f"endpoint:{o.endpoint_model or '?'}", "model_type": None, "parameters": None,
                         "config_hash": None}
        if o.endpoint is None:
            model = build_blender(c.model).eval()
            self.identity, self.config = model_identity(model, c.model), model.config
            self.model = model.to(self.backend.device) if not o.http else None
        vocab = self.vocab = self.config.vocab_size if self.config is not None else model_config(c.model)["vocab_size"]
        self.warm_prompts = request_prompts(c.data, o.max_batch, c.context_len, vocab, self.data_seed + 1)
        self.plan, self.arrivals_hash = self._plan(vocab), None
        if o.arrivals is not None:
            with open(o.arrivals, "rb") as fh:
                self.arrivals_hash = hashlib.sha256(fh.read()).hexdigest()[:12]

    def _plan(self, vocab: int) -> ServingPlan | None:
        c, o = self.common, self.options
        load, lengths, offsets = parse_load(o.load), None, ()
        if o.arrivals is not None:
            offsets, lengths = read_arrivals(o.arrivals)
        elif o.qps and load.open:
            count = o.conversations or o.requests
            offsets = open_arrivals(load, o.qps[0], count, self.data_seed, o.arrivals_as_drawn, o.ramp_up_s)
        elif load.open:
            return None
        n = len(offsets) * (o.turns if o.conversations else 1) if load.open else o.requests
        prompts = request_prompts(c.data, n, c.context_len, vocab, self.data_seed, lengths)
        if o.conversations:
            prompts = user_turns(prompts, o.turns, c.context_len)
        texts = self._texts(prompts, vocab) if o.api == "chat" else None
        new = output_lengths(o.output_len, c.new_tokens, n, self.data_seed, self.max_output())
        return ServingPlan(tuple(offsets), tuple(tuple(p) for p in prompts), new, texts,
                           o.turns if o.conversations else 1, o.think_time_s,
                           None if load.open else int(load.value), o.ramp_up_s if not load.open else 0.0,
                           c.context_len)

    def encode_text(self, text: str) -> list[int]:
        """A reply's text as ids (the shipped tokenizer), where a server returned no ids."""
        return shipped_tokenizer(min(self.vocab, 1000)).encode(text).ids

    def _texts(self, prompts, vocab: int) -> tuple[str, ...]:
        tok = shipped_tokenizer(min(vocab, 1000))
        return tuple(tok.decode(list(p)) or "hello" for p in prompts)

    def max_output(self) -> int:
        """The longest output a request of this session can ask for."""
        positions = self.config.max_position_embeddings if self.config is not None else None
        return longest_output(self.options.output_len, self.common.new_tokens, positions)

    def params(self) -> dict:
        c, o = self.common, self.options
        load = parse_load(o.load)
        return {**self.identity, "qps": o.qps[0] if o.qps and o.arrivals is None and load.open else None,
                "load": str(load), "ramp_up_s": o.ramp_up_s or None,
                "rescaled": None if o.arrivals is not None or load.kind in ("constant", "concurrency")
                else not o.arrivals_as_drawn,
                "arrivals": self.arrivals_hash, "arrival_seed": self.data_seed,
                "requests": len(self.plan.prompts) if self.plan else None,
                "conversations": o.conversations, "turns": o.turns if o.conversations else None,
                "think_time_s": o.think_time_s if o.conversations else None, "output_len": o.output_len,
                "window": f"{o.warmup_requests}+{o.cooldown_requests}" if o.warmup_requests or o.cooldown_requests
                else None, "batching": o.batching, "max_batch": o.max_batch,
                "max_tokens_in_flight": o.max_tokens_in_flight,
                "batch_wait_ms": o.batch_wait_ms if o.batching == "static" else None, "context_len": c.context_len,
                "new_tokens": c.new_tokens, "precision": c.precision, "data": c.data, "kv_cache": True,
                "world_size": self.world_size}

    # -- serving -------------------------------------------------------------------------------------
    def serving_plan(self) -> ServingPlan:
        return self.plan

    def teardown(self) -> None:
        self.model = self.plan = self.warm_prompts = None

    @classmethod
    def metrics(cls, repeats, params, options=None) -> dict:
        def seconds(ms):
            return ms / 1000 if ms else None

        o = options
        return serving_metrics(repeats, params, seconds(o and o.slo_ttft_ms), seconds(o and o.slo_e2e_ms),
                               seconds(o and o.slo_tpot_ms))
