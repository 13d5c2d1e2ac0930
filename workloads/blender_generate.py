"""blender-generate: BlenderBot replying to dialogue contexts, greedy or beam search, forced length.

Every device generates exactly the same work: min_new_tokens == max_new_tokens and forced EOS off
(transformers 5 drops generation settings kept in the model config, so they are passed here).
A logits processor syncs the device and stamps each generation step, giving time to first token
(prefill) and the gaps between tokens: one request of N new tokens has N stamps and N - 1 gaps. That
sync costs a host round trip per token inside the timed steps; after timing, each repeat measures what
it costs (token_sync_cost) and the report states it (workload_metrics token_sync.*).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.core.options import Options, opt
from bench.model.derive import summary
from bench.model.report import FigureSpec, Fingerprint
from workloads.base import StepResult, Workload, concat
from workloads.blender_servable import BlenderServable
from workloads.data import PAD, make_batches
from workloads.models import (build_blender, check_positions, generate_flops, generate_flops_rows, model_config,
                             model_identity)


class TokenClock:
    """A LogitsProcessor that stamps every generation step after a device sync."""

    def __init__(self, backend):
        self.backend = backend
        self.stamps: list[int] = []

    def __call__(self, input_ids, scores):
        self.backend.synchronize()
        self.stamps.append(time.perf_counter_ns())
        return scores


def request_timing(start_ns: int, stamps: list[int]) -> dict:
    """ttft (start to first token) and the inter-token gaps of one request, in seconds."""
    if not stamps:
        return {"ttft_s": None, "gaps_s": []}
    return {"ttft_s": (stamps[0] - start_ns) / 1e9,
            "gaps_s": [(b - a) / 1e9 for a, b in zip(stamps, stamps[1:], strict=False)]}


def forced_generate(model, inputs: dict, new_tokens: int, beams: int, clock=None):
    """generate() that makes exactly new_tokens tokens per sequence, KV cache on, no sampling."""
    from transformers import LogitsProcessorList

    return model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, num_beams=beams,
                          do_sample=False, use_cache=True, forced_eos_token_id=None, early_stopping=False,
                          length_penalty=1.0, logits_processor=LogitsProcessorList([clock] if clock else []))


@dataclass(frozen=True)
class GenerateOptions(Options):
    title = "blender-generate"

    static_shapes: bool = opt(False, "pad generation inputs to --context-len (static shapes, as HPU graphs need; "
                                     "always on for hpu)")


GENERATION_FIGURES = (
    FigureSpec("metrics.tokens_per_s", "new tokens/s", "tokens/s", "higher", lead=True),
    FigureSpec("workload_metrics.ttft_s.median", "TTFT p50", "s", "lower"),
    FigureSpec("workload_metrics.ttft_s.p99", "TTFT p99", "s", "lower"),
    FigureSpec("workload_metrics.request_latency_s.median", "request p50", "s", "lower"),
    FigureSpec("workload_metrics.request_latency_s.p99", "request p99", "s", "lower"),
    FigureSpec("workload_metrics.token_latency_s.median", "per-token p50", "s", "lower"),
    FigureSpec("workload_metrics.decode_tokens_per_s", "decode tok/s", "tokens/s", "higher"))


class BlenderGenerate(Workload):
    name = "blender-generate"
    description = "BlenderBot generating replies: greedy or beam search, forced length, KV cache"
    tokens_are = "new tokens (batch x new tokens per request)"
    main_metric = "tokens_per_s"
    memory_flags = ("--batch-size", "--beams", "--context-len", "--new-tokens")
    generates = True  # calls model.generate(): dynamic KV-cache objects (see the hpu spec's --hpu-graphs check)
    Options = GenerateOptions
    figures = GENERATION_FIGURES
    servable = BlenderServable  # its model as the serving scenario serves it (bench/serve/workload.py)

    @classmethod
    def check(cls, common, options, device) -> None:
        cfg = model_config(common.model)
        check_positions(common.model, cfg, **{"--context-len": common.context_len,
                                              "--new-tokens": common.new_tokens + 1})

    def setup(self) -> None:
        import torch

        c, dev = self.common, self.backend.device
        torch.manual_seed(c.seed)
        model = build_blender(c.model).to(dev).eval()
        self.identity = model_identity(model, c.model)
        self.config = model.config
        self.model = self.backend.wrap_inference(model)
        batches = make_batches(c.data, c.batch_size, c.context_len, 2, self.config.vocab_size, self.data_seed)
        self.batches = [self._inputs(ctx) for ctx, _ in batches]
        self.i = 0

    def _inputs(self, contexts) -> dict:
        import torch

        ids = torch.tensor(contexts, dtype=torch.long)
        if not self.static_shapes:  # drop the trailing columns that are padding in every row
            used = (ids != PAD).any(dim=0).nonzero()
            ids = ids[:, : int(used[-1]) + 1] if len(used) else ids
        dev = self.backend.device
        c = self.common
        mask = (ids != PAD).long()
        return {"inputs": {"input_ids": ids.to(dev), "attention_mask": mask.to(dev)},
                "flops": generate_flops_rows(self.config, mask.sum(dim=1).tolist(), c.new_tokens, c.beams)}

    @property
    def static_shapes(self) -> bool:
        """Fixed input shapes when asked, or where the device recompiles per shape (hpu)."""
        return self.options.static_shapes or self.backend.static_shapes

    def params(self) -> dict:
        c = self.common
        return {**self.identity, "batch_size": c.batch_size, "context_len": c.context_len,
                "new_tokens": c.new_tokens, "beams": c.beams, "precision": c.precision, "data": c.data,
                "static_shapes": self.static_shapes, "kv_cache": True, "world_size": self.world_size}

    def step(self) -> StepResult:
        import torch

        batch = self.batches[self.i % len(self.batches)]
        self.i += 1
        clock = TokenClock(self.backend)
        self.backend.synchronize()
        start = time.perf_counter_ns()
        with torch.inference_mode(), self.backend.autocast(self.common.precision):
            out = forced_generate(self.model, batch["inputs"], self.common.new_tokens, self.common.beams, clock)
        new = out.shape[1] - 1  # minus the decoder start token
        if new != self.common.new_tokens:
            raise RuntimeError(f"generated {new} tokens, expected exactly {self.common.new_tokens}")
        b = out.shape[0]
        # raw stamps only: TTFT and gaps are worked out after the clock was read, in record()
        return StepResult(samples=b, tokens=b * new, flops=batch["flops"],
                          extra={"start_ns": start, "stamps": clock.stamps})

    def record(self, step: StepResult) -> dict:
        t = request_timing(step.extra["start_ns"], step.extra["stamps"])
        return {"ttft_s": t["ttft_s"], "token_gap_s": t["gaps_s"]}

    def flops_per_step(self) -> float:
        """At the full context length, an upper bound; each step reports its own, without padding."""
        c = self.common
        return generate_flops(self.config, c.batch_size, c.context_len, c.new_tokens, c.beams)

    def verify(self):
        fingerprint = greedy_fingerprint(self.model, self.backend, self.common, self.config.vocab_size)
        return fingerprint, token_sync_cost(self.model, self.backend, self.batches[0]["inputs"], self.common)

    def teardown(self) -> None:
        self.model = self.batches = None

    @classmethod
    def metrics(cls, repeats, params, options=None) -> dict:
        return generation_metrics(repeats, params)


SYNC_PAIRS = 3  # adjacent pairs of generate() with and without the per-token sync, after timing


def _generate_s(model, backend, inputs: dict, common, clock) -> float:
    import torch

    backend.synchronize()
    t0 = time.perf_counter_ns()
    with torch.inference_mode(), backend.autocast(common.precision):
        forced_generate(model, inputs, common.new_tokens, common.beams, clock)
    backend.synchronize()
    return (time.perf_counter_ns() - t0) / 1e9


def token_sync_cost(model, backend, inputs: dict, common) -> dict:
    """What the timed steps pay for their per-token stamps: TTFT and the token gaps need a device sync and
    a clock read at every decode step, a host round trip per token on every device (on an asynchronous
    one the host can no longer queue ahead). Measured after timing on the same model and batch: generate()
    with TokenClock against generate() without it, in adjacent pairs; the medians. The measured figures
    include this cost; tokens_per_s / (1 + overhead_share) is the rate without it."""
    import statistics

    pairs = [(_generate_s(model, backend, inputs, common, TokenClock(backend)),
              _generate_s(model, backend, inputs, common, None)) for _ in range(SYNC_PAIRS)]
    return {"token_sync.overhead_share": statistics.median(s / p - 1 for s, p in pairs),
            "token_sync.overhead_s_per_token": statistics.median((s - p) / common.new_tokens for s, p in pairs),
            "token_sync.pairs": SYNC_PAIRS}


def greedy_fingerprint(model, backend, common, vocab_size: int, prompt_len: int = 16, new_tokens: int = 8):
    """Greedy tokens of a fixed prompt, with each step's decision margin (top-1 minus top-2 score):
    devices computing the same thing agree on every token whose margin is clear of rounding."""
    import torch

    from workloads.data import synthetic_batches

    [(ctx, _)] = synthetic_batches(1, min(prompt_len, common.context_len), 2, vocab_size, common.seed, n=1)
    ids = torch.tensor(ctx, dtype=torch.long, device=backend.device)
    with torch.inference_mode(), backend.autocast(common.precision):
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, num_beams=1, do_sample=False, use_cache=True,
                             forced_eos_token_id=None, output_scores=True, return_dict_in_generate=True)
    tokens, margins, values = [], [], []
    for scores in out.scores:
        top = scores[0].float().topk(2)
        tokens.append(int(top.indices[0]))
        margins.append(float(top.values[0] - top.values[1]))
        values.append(float(top.values[0]))
    return Fingerprint(f"greedy tokens of a fixed {ids.shape[1]}-token prompt", common.precision,
                       values=values, tokens=tokens, margins=margins)


def token_sync_figures(repeats) -> dict:
    """The per-token sync's cost (token_sync_cost), the median over repeats."""
    import statistics

    out = {}
    for key in ("token_sync.overhead_share", "token_sync.overhead_s_per_token"):
        values = [r.figures[key] for r in repeats if isinstance(r.figures.get(key), int | float)]
        if values:
            out[key] = statistics.median(values)
    return out


def generation_metrics(repeats, params) -> dict:
    """TTFT, decode tokens/s, request latency and per-token latency, counted exactly from the raw
    per-request stamps of every repeat."""
    measured = [r for r in repeats if r.step_times_s]
    times = [t for r in measured for t in r.step_times_s]
    if not times:
        return {}
    ttft, gaps = concat(measured, "ttft_s"), concat(measured, "token_gap_s")
    new = params.get("new_tokens")
    samples = [s for r in measured for s in r.step_samples]
    decode_tokens = sum(s * (new - 1) for s in samples) if isinstance(new, int) else None
    decode_time = sum(gaps)
    return {**token_sync_figures(measured),
            "requests": len(times), "new_tokens_total": int(sum(t for r in measured for t in r.step_tokens)),
            "inter_token_gaps": len(gaps), "requests_per_s": len(times) / sum(times),
            "ttft_s": summary(ttft), "request_latency_s": summary(times), "token_latency_s": summary(gaps),
            "decode_tokens_per_s": decode_tokens / decode_time if decode_tokens and decode_time > 0 else None}
