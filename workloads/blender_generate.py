"""blender-generate: BlenderBot replying to dialogue contexts, greedy or beam search, forced length.

Every device generates exactly the same work: min_new_tokens == max_new_tokens and forced EOS off
(transformers 5 drops generation settings kept in the model config, so they are passed here).
A logits processor syncs the device and stamps each generation step, giving time to first token
(prefill) and the gaps between tokens: one request of N new tokens has N stamps and N - 1 gaps.
"""

from __future__ import annotations

import time

from workloads.base import StepResult, Workload
from workloads.data import PAD, make_batches
from workloads.models import build_blender, generate_flops, model_identity


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
            "gaps_s": [(b - a) / 1e9 for a, b in zip(stamps, stamps[1:])]}


def forced_generate(model, inputs: dict, new_tokens: int, beams: int, clock=None):
    """generate() that makes exactly new_tokens tokens per sequence, KV cache on, no sampling."""
    from transformers import LogitsProcessorList

    return model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, num_beams=beams,
                          do_sample=False, use_cache=True, forced_eos_token_id=None, early_stopping=False,
                          length_penalty=1.0, logits_processor=LogitsProcessorList([clock] if clock else []))


class BlenderGenerate(Workload):
    name = "blender-generate"
    description = "BlenderBot generating replies: greedy or beam search, forced length, KV cache"
    tokens_are = "new tokens (batch x new tokens per request)"
    main_metric = "tokens_per_s"

    def setup(self) -> None:
        import torch

        cfg, dev = self.cfg, self.backend.device
        torch.manual_seed(cfg.seed)
        model = build_blender(cfg.model_name).to(dev).eval()
        self.identity = model_identity(model, cfg.model_name)
        self.config = model.config
        self.model = self.backend.wrap_inference(model)
        batches = make_batches(cfg.data, cfg.batch_size, cfg.context_len, 2, self.config.vocab_size, self.data_seed)
        self.batches = [self._inputs(ctx) for ctx, _ in batches]
        self.i = 0

    def _inputs(self, contexts) -> dict:
        import torch

        ids = torch.tensor(contexts, dtype=torch.long)
        if not self.static_shapes:  # drop the trailing columns that are padding in every row
            used = (ids != PAD).any(dim=0).nonzero()
            ids = ids[:, : int(used[-1]) + 1] if len(used) else ids
        dev = self.backend.device
        c = self.cfg
        return {"inputs": {"input_ids": ids.to(dev), "attention_mask": (ids != PAD).long().to(dev)},
                "flops": generate_flops(self.config, ids.shape[0], ids.shape[1], c.new_tokens, c.beams)}

    @property
    def static_shapes(self) -> bool:
        """Fixed input shapes when asked, or where the device recompiles per shape (hpu)."""
        return self.cfg.static_shapes or getattr(self.backend, "static_shapes", False)

    def params(self) -> dict:
        c = self.cfg
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
        with torch.inference_mode(), self.backend.autocast(self.cfg.precision):
            out = forced_generate(self.model, batch["inputs"], self.cfg.new_tokens, self.cfg.beams, clock)
        new = out.shape[1] - 1  # minus the decoder start token
        if new != self.cfg.new_tokens:
            raise RuntimeError(f"generated {new} tokens, expected exactly {self.cfg.new_tokens}")
        b = out.shape[0]
        # raw stamps only: TTFT and gaps are worked out after timing, in generation_metrics
        return StepResult(samples=b, tokens=b * new, flops=batch["flops"],
                          extra={"new_tokens": new, "start_ns": start, "stamps": clock.stamps})

    def flops_per_step(self) -> float:
        """At the full context length; with trimmed (non-static) shapes each step reports its own."""
        c = self.cfg
        return generate_flops(self.config, c.batch_size, c.context_len, c.new_tokens, c.beams)

    def extra_metrics(self, steps, times) -> dict:
        return generation_metrics(steps, times)

    def teardown(self) -> None:
        self.model = self.batches = None


def generation_metrics(steps: list[StepResult], times: list[float]) -> dict:
    """TTFT, decode tokens/s, request latency and per-token latency, counted exactly."""
    from bench.model.derive import summary

    timings = [request_timing(s.extra["start_ns"], s.extra["stamps"]) for s in steps]
    ttft = [t["ttft_s"] for t in timings if t["ttft_s"] is not None]
    gaps = [g for t in timings for g in t["gaps_s"]]
    decode_tokens = sum(s.samples * (s.extra["new_tokens"] - 1) for s in steps)
    decode_time = sum(gaps)
    return {"requests": len(steps), "new_tokens_total": sum(s.tokens for s in steps),
            "inter_token_gaps": len(gaps),
            "requests_per_s": len(steps) / sum(times) if times else None,
            "ttft_s": summary(ttft), "request_latency_s": summary(times),
            "token_latency_s": summary(gaps),
            "decode_tokens_per_s": decode_tokens / decode_time if decode_time > 0 else None}
