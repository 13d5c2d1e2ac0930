"""blender-serve: BlenderBot answering a support line's requests as they arrive — the serving
scenario over blender-generate's model.

The load (`--load`): a seeded Poisson process at --qps (the default), bursty gamma arrivals
(`gamma:B`, vLLM's burstiness), evenly spaced ones (`constant`), the times an --arrivals file gives,
or a closed loop of N requests in flight (`concurrency:N`); `--ramp-up-s` raises the rate from 0.
Drawn gaps are rescaled so that the realised rate is the offered one (`--arrivals-as-drawn` keeps
them). `--conversations N --turns K`: N conversations start at --qps, each next turn arriving
--think-time-s after the previous answer with the dialogue so far as its prompt. Output lengths are
--new-tokens each, or drawn (`--output-len`, with EOS-like stops); every request asks for exactly
its length. The first --warmup-requests and last --cooldown-requests are served, not measured.

Who serves (`--engine`, `--endpoint`): bench's engine in the worker (continuous batching by default,
`--batching static` for whole batches), `bench serve` started by the run on a free local port and
loaded over HTTP, or any OpenAI-compatible server at --endpoint. Every request's arrival, send,
token times and finish are recorded on the run's clock; maths/metrics.py turns them into TTFT, ITL,
TPOT and end-to-end percentiles, the achieved rate, SLO attainment, goodput and each SLO's verdict
with its validity (LoadGen's early stopping).

The model is the served workload's (`model_workload`): its `servable` (workloads/blender_servable.py)
checks --model, builds the model, makes the prompts and the executor the engine drives. Each offered
rate is a result of its own (`--qps 1,2,4,8`); `--find-capacity` searches for the highest rate whose
p99s meet the SLOs (scenario.py says which results a run makes).
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

from bench.core.errors import ConfigError
from bench.core.text import read_small, terminal_safe
from bench.model.report import FigureSpec
from bench.serve.arrivals import MAX_FILE_BYTES, open_arrivals, parse_load, read_arrivals
from bench.serve.maths.metrics import lead_figure, serving_metrics
from bench.serve.options import ServeOptions
from bench.serve.plan import ServingPlan, longest_output, output_lengths, user_turns
from bench.serve.prompts import MAX_FILE_BYTES as MAX_PROMPT_BYTES
from bench.serve.prompts import (counted, input_lengths, load_tokenizer, parse_input_len, read_prompt_file,
                                 synthetic_texts, tokenizer_hash)
from bench.serve.protocol import Sampling
from bench.serve.text import Codec
from workloads import registry as workloads
from workloads.base import Workload
from workloads.models import model_config


class BlenderServe(Workload):
    name = "blender-serve"
    description = "Serving under load: open or closed loop, conversations, in-process or over HTTP; latency, capacity"
    tokens_are = "new tokens"
    main_metric = "samples_per_s"
    generates = True
    eager = "the serving engine runs eager"  # --compile would not apply to it
    # the executor's caches are allocated once at their limits and every step's shapes are buckets on a static-shape
    # device (workloads/blender_executor.py): an HPU graph per decode bucket replays each step as it ran
    graph_safe = True
    model_workload: ClassVar[str] = "blender-generate"  # whose model it serves (its `servable`)
    memory_flags = ("--max-batch", "--context-len", "--new-tokens")
    Options = ServeOptions
    figures = (FigureSpec("workload_metrics.ttft_s.p99", "TTFT p99", "s", "lower", lead=True),
               # completions per second of engine-busy time: what the engine does while it works, not what a box
               # serves (that is the achieved rate at an offered one, and the capacity at the SLOs)
               FigureSpec("metrics.samples_per_s", "engine-busy requests/s", "requests/s", "higher"),
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
    def figures_for(cls, options) -> tuple[FigureSpec, ...]:
        """Led by the p99 of the latency the SLO names (maths/metrics.py lead_figure), then the rest."""
        def ms(v):
            return v and v / 1000

        lead = lead_figure({"ttft": ms(options.slo_ttft_ms), "tpot": ms(options.slo_tpot_ms),
                            "e2e": ms(options.slo_e2e_ms)})
        return (lead, *(f for f in cls.figures if f.key != lead.key and not f.lead))

    @classmethod
    def servable(cls):
        """The served workload's model side (workloads/blender_servable.py)."""
        return workloads.load(cls.model_workload).servable

    @classmethod
    def check(cls, common, options, device) -> None:
        if options.endpoint is None:
            cls.servable().check(common, common.new_tokens)
        lengths = read_arrivals(options.arrivals)[1] if options.arrivals is not None else None
        if options.arrivals is None and not options.qps and parse_load(options.load).rated:
            raise ConfigError("--qps: blender-serve needs an offered rate (or --arrivals FILE, --load burst, or --load "
                              "concurrency:N)")
        cls._check_prompts(common, options)
        if common.beams != 1:
            raise ConfigError("--beams: blender-serve generates greedily (beam search is not a serving setting)")
        if options.api == "chat" and common.data != "shipped":
            raise ConfigError("--api chat: messages are text; the synthetic data has none (use --data shipped)")
        cls._check_budget(common, options, lengths)
        if options.endpoint_device is not None:
            _check_named_device(options, device)
        if options.endpoint_serves is not None:
            cls.servable().check(common.replace(model=options.endpoint_serves), common.new_tokens)
        key = options.api_key()
        if options.endpoint is not None:  # the server must answer as an OpenAI-compatible one before any work
            from bench.serve.endpoint import base_url, probe

            url = base_url(options.endpoint)
            models = probe(url, key)["models"]
            if options.endpoint_model is not None and options.endpoint_model not in models:
                listed = ", ".join(terminal_safe(m, 60) for m in models[:5]) + (", ..." if len(models) > 5 else "")
                raise ConfigError(f"--endpoint-model {terminal_safe(options.endpoint_model, 80)}: {url} does not "
                                  f"list it; it serves {listed}")

    @classmethod
    def _check_prompts(cls, common, options) -> None:
        """The prompt sources read before any work: --data-file parses, --data-tokenizer loads, and what counts
        a file's prompts has a tokenizer; --input-len draws synthetic prompts only."""
        if options.input_len != "uniform" and (common.data != "synthetic" or options.data_file is not None):
            raise ConfigError("--input-len: draws the lengths of synthetic prompts (--data synthetic)")
        kind, length, _ = parse_input_len(options.input_len)
        if kind != "uniform" and common.context_len and length > common.context_len:  # the identity would misname it
            raise ConfigError(f"--input-len {options.input_len}: longer than --context-len {common.context_len}; "
                              f"every prompt would be cut to {common.context_len} tokens")
        if options.data_file is not None:
            read_prompt_file(options.data_file)
        if options.data_tokenizer is not None and options.data_file is None and common.data != "synthetic":
            raise ConfigError("--data-tokenizer: counts --data-file's prompts, or makes --data synthetic's text; with "
                              f"--data {common.data} it has nothing to do")
        if options.data_tokenizer is not None:
            load_tokenizer(options.data_tokenizer)
        elif options.data_file is not None and cls.servable()(common).tokenizer() is None:
            raise ConfigError(f"--data-file: its prompts are text, and {common.model} has no tokenizer to count them "
                              "with; give --data-tokenizer DIR (with --endpoint)")

    @classmethod
    def _check_budget(cls, common, options, lengths) -> None:
        """--max-tokens-in-flight must admit the largest request the session can send (its prompt,
        cut to --context-len, plus its longest output), or that request would never be served."""
        budget = options.max_tokens_in_flight
        if budget is None or options.endpoint is not None:
            return
        positions = model_config(common.model).get("max_position_embeddings")
        longest = longest_output(options.output_len, common.new_tokens, positions if type(positions) is int else None)
        prompt = min(max(lengths), common.context_len) if lengths else common.context_len
        if budget < prompt + longest:
            raise ConfigError(f"--max-tokens-in-flight {budget}: below what a request of this session can need "
                              f"(a prompt of up to {prompt} tokens + up to {longest} new = {prompt + longest}): such "
                              "a request could never be admitted; raise it, or lower --context-len or --new-tokens")

    def cut_note(self) -> str | None:
        """What an arrivals file or a data file asked for that the session cut: prompts beyond --context-len."""
        lengths, limit = self.arrival_lengths or [], self.common.context_len
        cut, of, where = [k for k in lengths if k > limit], len(lengths), "--arrivals"
        if self.text_cut:
            cut, of, where = self.text_cut, len(self.plan.prompts), "--data-file"
        if not cut:
            return None
        return (f"{len(cut)} of the {of} prompts of {where} are longer than --context-len {limit} (the "
                f"longest {max(cut):,} tokens) and were cut to their last {limit} tokens")

    # -- set-up --------------------------------------------------------------------------------------
    def setup(self) -> None:
        """The model (in-process: to serve; `--engine http`: only its identity), a full batch of
        warm-up prompts, and the session's plan where there is one (`bench serve` has none)."""
        import torch

        c, o = self.common, self.options
        torch.manual_seed(c.seed)
        self.served = self.servable()(c, self.backend)
        if o.endpoint is None:
            self.served.build(to_device=not o.http)
        elif o.endpoint_serves:  # what the user declares the server serves: its identity, built here, not served
            self.served = self.servable()(c.replace(model=o.endpoint_serves), self.backend)
            self.served.build(to_device=False)
        else:
            self.served.identity = {**self.served.identity, "model": f"endpoint:{o.endpoint_model or '?'}"}
        self.warm_prompts = self.served.prompts(o.max_batch, self.data_seed + 1)
        self.arrival_lengths = self.arrivals_hash = self.file_hash = self.tokenizer_hash = None
        self.file_prompts = self.data_tok = None
        self.text_cut: list[int] = []
        if o.data_file is not None:
            self.file_prompts = read_prompt_file(o.data_file)
            self.file_hash = hashlib.sha256(read_small(o.data_file, "--data-file", MAX_PROMPT_BYTES)).hexdigest()[:12]
        if o.data_tokenizer is not None:
            self.data_tok = load_tokenizer(o.data_tokenizer)
            self.tokenizer_hash = tokenizer_hash(self.data_tok)
        self.plan = self._plan()
        if o.arrivals is not None:
            self.arrivals_hash = hashlib.sha256(read_small(o.arrivals, "--arrivals", MAX_FILE_BYTES)).hexdigest()[:12]

    @property
    def model(self):
        return self.served.model

    def _plan(self) -> ServingPlan | None:
        c, o = self.common, self.options
        load, lengths, offsets = parse_load(o.load), None, ()
        if o.arrivals is not None:
            offsets, lengths = read_arrivals(o.arrivals)
            self.arrival_lengths = lengths
        elif load.kind == "burst" or (o.qps and load.rated):
            count = o.conversations or o.requests
            offsets = open_arrivals(load, o.qps[0] if o.qps else None, count, self.data_seed, o.arrivals_as_drawn,
                                    o.ramp_up_s)
        elif load.open:
            return None
        n = len(offsets) * (o.turns if o.conversations else 1) if load.open else o.requests
        prompts, texts = self._prompts(n, lengths)
        new = output_lengths(o.output_len, c.new_tokens, n, self.data_seed, self.max_output())
        return ServingPlan(tuple(offsets), tuple(tuple(p) for p in prompts), new, texts,
                           o.turns if o.conversations else 1, o.think_time_s,
                           None if load.open else int(load.value), o.ramp_up_s if not load.open else 0.0,
                           c.context_len, Sampling(o.temperature, o.top_p, o.sampling_seed), o.max_concurrency,
                           as_text=self.text_prompts)

    @property
    def text_prompts(self) -> bool:
        """The session's prompts came as text (a --data-file, or synthetic text of --data-tokenizer's)."""
        return self.options.data_file is not None or self.data_tok is not None

    def _prompts(self, n: int, lengths) -> tuple[list[list[int]], tuple[str, ...] | None]:
        """n prompts as ids, with their texts where they have text (or the API takes messages)."""
        c, o = self.common, self.options
        if o.data_file is not None:
            codec = Codec(self.data_tok or self.served.tokenizer(), self.served.vocab_size)
            ids, texts, self.text_cut = counted(self.file_prompts, n, codec.encode, codec.decode, c.context_len)
            return ids, tuple(texts)
        if lengths is None and c.data == "synthetic" and (o.input_len != "uniform" or self.data_tok is not None):
            lengths = input_lengths(o.input_len, n, c.context_len, self.data_seed)
        if self.data_tok is not None:
            ids, texts = synthetic_texts(self.data_tok, [min(k, c.context_len) for k in lengths], self.data_seed)
            return ids, tuple(texts)
        prompts = self.served.prompts(n, self.data_seed, lengths)
        if o.conversations:
            prompts = user_turns(prompts, o.turns, c.context_len)
        return prompts, self.served.texts(prompts) if o.api == "chat" else None

    def encode_text(self, text: str) -> list[int]:
        """A reply's text as ids, where a server returned no ids."""
        return self.served.encode_text(text)

    def max_output(self) -> int:
        """The longest output a request of this session can ask for."""
        return longest_output(self.options.output_len, self.common.new_tokens, self.served.positions)

    def params(self) -> dict:
        c, o = self.common, self.options
        load = parse_load(o.load)
        return {**self.served.identity, "qps": o.qps[0] if o.qps and o.arrivals is None and load.rated else None,
                "load": str(load), "ramp_up_s": o.ramp_up_s or None,
                "rescaled": None if o.arrivals is not None or load.kind in ("constant", "burst", "concurrency")
                else not o.arrivals_as_drawn, "max_concurrency": o.max_concurrency, **self._request_params(),
                "arrivals": self.arrivals_hash, "arrival_seed": self.data_seed,
                "requests": len(self.plan.prompts) if self.plan else None,
                "conversations": o.conversations, "turns": o.turns if o.conversations else None,
                "think_time_s": o.think_time_s if o.conversations else None, "output_len": o.output_len,
                "window": f"{o.warmup_requests}+{o.cooldown_requests}" if o.warmup_requests or o.cooldown_requests
                else None, "batching": o.batching, "max_batch": o.max_batch,
                "max_tokens_in_flight": o.max_tokens_in_flight,
                "batch_wait_ms": o.batch_wait_ms if o.batching == "static" else None, "context_len": c.context_len,
                "new_tokens": c.new_tokens, "precision": c.precision, "kv_cache": True,
                "world_size": self.world_size} if self.plan is not None else self._server_params()

    def _request_params(self) -> dict:
        """What every request was sent with, and where its prompt came from (None: the default, as reports
        before these fields had it: greedy, the --data sample, the lengths it has)."""
        c, o = self.common, self.options
        sampled = o.temperature > 0
        return {"temperature": o.temperature if sampled else None, "top_p": o.top_p if sampled and o.top_p < 1 else None,
                "sampling_seed": o.sampling_seed if sampled else None,
                "data": "file" if o.data_file is not None else c.data, "data_file": self.file_hash,
                "data_tokenizer": self.tokenizer_hash,
                "input_len": o.input_len if c.data == "synthetic" and o.input_len != "uniform" else None}

    def _server_params(self) -> dict:
        """A server's session (bench serve --report): the model and the engine it served with; no load,
        requests or lengths of its own — its clients chose them, and its request log records them."""
        c, o = self.common, self.options
        return {**self.served.identity, "qps": None, "load": "served", "requests": None, "batching": o.batching,
                "max_batch": o.max_batch, "max_tokens_in_flight": o.max_tokens_in_flight,
                "batch_wait_ms": o.batch_wait_ms if o.batching == "static" else None, "context_len": c.context_len,
                "precision": c.precision, "kv_cache": True, "world_size": self.world_size}

    def teardown(self) -> None:
        self.served = self.plan = self.warm_prompts = self.file_prompts = self.data_tok = None

    @classmethod
    def metrics(cls, repeats, params, options=None) -> dict:
        def seconds(ms):
            return ms / 1000 if ms else None

        o = options
        return serving_metrics(repeats, params, seconds(o and o.slo_ttft_ms), seconds(o and o.slo_e2e_ms),
                               seconds(o and o.slo_tpot_ms))


NAMED_BY = {"hpu": ("index", "module_id"), "cuda": ("index", "uuid")}  # what each device's collectors find a device by


def _check_named_device(options, device) -> None:
    """--endpoint-device names an accelerator of this machine, as the run's device's collectors find one."""
    from bench.serve.endpoint import base_url, is_local

    ident = options.device_identity()
    if not is_local(base_url(options.endpoint)):
        raise ConfigError("--endpoint-device: the endpoint is not on this machine, whose telemetry the run samples; "
                          "only for a server here")
    if not getattr(device, "accelerator", False):
        raise ConfigError(f"--endpoint-device: the run's device is {device.name}, not an accelerator: there is no "
                          "card to name (the host is sampled as it is)")
    takes = NAMED_BY.get(device.name)
    if takes is not None and next(iter(ident)) not in takes:
        said = " or ".join({"index": "index:N", "module_id": "module:M", "uuid": "uuid:U"}[k] for k in takes)
        raise ConfigError(f"--endpoint-device {options.endpoint_device[:60]}: a {device.name} device is named by {said}")
