"""blender-serve: BlenderBot answering a support line's requests as they arrive (open-loop serving).

Requests arrive by a seeded Poisson process at --qps (or at the times an --arrivals file gives),
wait in a queue and are served by the serving engine (bench/serve/): with continuous batching
(the default) a waiting request joins the running batch at the next decode step and a finished one
leaves at once; with `--batching static` a batch of up to --max-batch runs to completion before the
next starts. Each request generates exactly --new-tokens tokens (min = max, greedy). On hpu the
batch, the prompt width and the cache length are padded to buckets, every bucket compiled in the
warm-up. Every request's arrival, start, token times and finish are recorded on the run's clock;
workloads/serving.py turns them into latency percentiles, achieved rate, SLO attainment and goodput.

Each offered rate is a result of its own (`--qps 1,2,4,8`); `--find-capacity` searches for the
highest rate whose p99 TTFT meets --slo-ttft-ms.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bench.core.arrivals import ServingPlan, poisson_arrivals, read_arrivals
from bench.core.errors import ConfigError
from bench.core.options import Options, opt
from bench.model.report import FigureSpec
from workloads.base import Workload
from workloads.data import request_prompts
from workloads.models import build_blender, check_positions, model_config, model_identity
from workloads.serving import capacity_search, serving_metrics


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
    description = "open-loop serving: requests arrive on their own schedule, queue, and are served by the engine"
    presets = {"tiny": {"qps": (20.0,), "requests": 60, "slo_ttft_ms": 250.0},
               "seed": {"qps": (1.0,), "requests": 120, "slo_ttft_ms": 1000.0}}

    qps: tuple[float, ...] | None = opt(None, "offered rates, requests per second (Poisson arrivals, seeded by "
                                              "--seed); each rate is a result of its own", exclusive_minimum=0,
                                        maximum=100_000, preset=True, metavar="R,R,...")
    arrivals: str | None = opt(None, "replay arrivals from a file instead: lines of `seconds_since_start "
                                     "prompt_tokens`, non-decreasing, # comments", metavar="FILE")
    requests: int | None = opt(None, "requests per session (per rate and repeat); the p99 needs 100 or more",
                               minimum=2, maximum=1_000_000, preset=True)
    slo_ttft_ms: float | None = opt(None, "service-level objective on time to first token (queueing included)",
                                    exclusive_minimum=0, maximum=3_600_000, preset=True)
    slo_e2e_ms: float | None = opt(None, "service-level objective on end-to-end latency", exclusive_minimum=0,
                                   maximum=3_600_000)
    find_capacity: bool = opt(False, "probe rates for the highest whose p99 TTFT meets --slo-ttft-ms, starting "
                                     "from the first --qps (doubling, then bisecting to within 15 %)")
    max_probes: int = opt(8, "rates --find-capacity may try", minimum=2, maximum=32)

    def check(self) -> None:
        if self.arrivals is not None and self.find_capacity:
            raise ConfigError("--find-capacity: probes Poisson rates; it cannot replay --arrivals")
        if self.find_capacity and self.slo_ttft_ms is None:
            raise ConfigError("--find-capacity: needs --slo-ttft-ms (the capacity is the highest rate meeting it)")


class BlenderServe(Workload):
    name = "blender-serve"
    description = "Serving under open-loop load: Poisson arrivals, continuous or static batching, latency and capacity at an SLO"
    tokens_are = "new tokens"
    main_metric = "samples_per_s"
    serves = True
    generates = True
    memory_flags = ("--max-batch", "--context-len", "--new-tokens")
    Options = ServeOptions
    figures = (FigureSpec("metrics.samples_per_s", "requests/s busy", "requests/s", "higher", lead=True),
               FigureSpec("workload_metrics.offered_qps", "offered", "requests/s", "none"),
               FigureSpec("workload_metrics.achieved_qps", "achieved", "requests/s", "higher"),
               FigureSpec("workload_metrics.ttft_s.median", "TTFT p50", "s", "lower"),
               FigureSpec("workload_metrics.ttft_s.p90", "TTFT p90", "s", "lower"),
               FigureSpec("workload_metrics.ttft_s.p99", "TTFT p99", "s", "lower"),
               FigureSpec("workload_metrics.e2e_s.median", "e2e p50", "s", "lower"),
               FigureSpec("workload_metrics.e2e_s.p99", "e2e p99", "s", "lower"),
               FigureSpec("workload_metrics.queue_s.p99", "queue p99", "s", "lower"),
               FigureSpec("workload_metrics.new_tokens_per_s", "new tokens/s", "tokens/s", "higher"),
               FigureSpec("workload_metrics.slo_attainment", "SLO met", "fraction", "higher"),
               FigureSpec("workload_metrics.goodput_rps", "goodput", "requests/s", "higher"))

    @classmethod
    def variants(cls, options):
        if options.find_capacity:
            yield from capacity_search(options.qps[0] if options.qps else 1.0, options.max_probes)
        elif options.arrivals is not None or not options.qps:
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
    def check_model(cls, common, new_tokens: int | None = None) -> None:
        """The engine runs BlenderBot-small models, prompts and outputs within its positions."""
        cfg = model_config(common.model)
        if cfg.get("model_type") != "blenderbot-small":
            raise ConfigError(f"--model {common.model}: the serving engine runs BlenderBot-small models "
                              f"(model_type blenderbot-small), not {str(cfg.get('model_type'))[:40]!r}")
        check_positions(common.model, cfg, **{"--context-len": common.context_len, "--new-tokens": new_tokens})

    @classmethod
    def check(cls, common, options, device) -> None:
        cls.check_model(common, common.new_tokens)
        if options.arrivals is not None:
            read_arrivals(options.arrivals)
        elif not options.qps:
            raise ConfigError("--qps: blender-serve needs an offered rate (or --arrivals FILE)")
        if common.beams != 1:
            raise ConfigError("--beams: blender-serve generates greedily (beam search is not a serving setting)")

    # -- set-up --------------------------------------------------------------------------------------
    def setup(self) -> None:
        """The model, a full batch of warm-up prompts, and the session's plan where there is one
        (`bench serve` has none: its requests come over HTTP)."""
        import torch

        c, o = self.common, self.options
        torch.manual_seed(c.seed)
        model = build_blender(c.model).to(self.backend.device).eval()
        self.identity = model_identity(model, c.model)
        self.config = model.config
        self.model = model
        self.warm_prompts = request_prompts(c.data, o.max_batch, c.context_len, self.config.vocab_size,
                                            self.data_seed + 1)
        self.plan, self.arrivals_hash = None, None
        if o.arrivals is not None:
            offsets, lengths = read_arrivals(o.arrivals)
            with open(o.arrivals, "rb") as fh:
                self.arrivals_hash = hashlib.sha256(fh.read()).hexdigest()[:12]
        elif o.qps:
            offsets, lengths = poisson_arrivals(o.qps[0], o.requests, self.data_seed), None
        else:
            return
        prompts = request_prompts(c.data, len(offsets), c.context_len, self.config.vocab_size, self.data_seed, lengths)
        self.plan = ServingPlan(tuple(offsets), tuple(tuple(p) for p in prompts), (c.new_tokens,) * len(prompts))

    def params(self) -> dict:
        c, o = self.common, self.options
        return {**self.identity, "qps": o.qps[0] if o.qps and o.arrivals is None else None,
                "arrivals": self.arrivals_hash, "arrival_seed": self.data_seed,
                "requests": len(self.plan.arrivals) if self.plan else None, "batching": o.batching,
                "max_batch": o.max_batch, "max_tokens_in_flight": o.max_tokens_in_flight,
                "batch_wait_ms": o.batch_wait_ms if o.batching == "static" else None, "context_len": c.context_len,
                "new_tokens": c.new_tokens, "precision": c.precision, "data": c.data,
                "static_shapes": self.backend.static_shapes, "kv_cache": True, "world_size": self.world_size}

    # -- serving -------------------------------------------------------------------------------------
    def serving_plan(self) -> ServingPlan:
        return self.plan

    def teardown(self) -> None:
        self.model = self.plan = self.warm_prompts = None

    @classmethod
    def metrics(cls, repeats, params, options=None) -> dict:
        slo_ttft = options.slo_ttft_ms / 1000 if options is not None and options.slo_ttft_ms else None
        slo_e2e = options.slo_e2e_ms / 1000 if options is not None and options.slo_e2e_ms else None
        return serving_metrics(repeats, params, slo_ttft, slo_e2e)
