"""retrieval-encode: the retriever side. Encode candidate replies and contexts, score by dot product
(bi-encoder) or through m learned codes (poly-encoder, as ParlAI), take the top k of a pool.

The pool of --pool-size candidate embeddings is random unit vectors: scoring cost does not depend on
their values, and encoding 10,000 candidates with BERT-base at setup would dominate a CPU run. The
quality number (recall@1/@10) uses the real all-MiniLM-L6-v2 over the shipped sample's replies.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

from bench.core.errors import ConfigError
from bench.core.options import Options, opt
from bench.model.derive import summary
from bench.model.report import FigureSpec, Fingerprint
from workloads.base import StepResult, Workload, concat, first_figure
from workloads.checkpoint import check_fits_host
from workloads.data import IGNORE, PAD, load_dialogues, make_batches
from workloads.models import bert_flops, build_encoder, check_encoder, check_positions, model_identity

POOL_CHUNK = 4096  # poly scoring works on this many candidates at a time (bounds memory)


def random_pool(size: int, dim: int, generator):
    """size random unit vectors: a candidate pool whose scoring costs what a real one costs."""
    import torch

    return torch.nn.functional.normalize(torch.randn(size, dim, generator=generator), dim=-1)


def mean_pool(states, mask):
    m = mask.unsqueeze(-1).to(states.dtype)
    return (states * m).sum(1) / m.sum(1).clamp(min=1)


def bi_scores(ctx_emb, pool):
    return ctx_emb @ pool.T


def poly_scores(ctx_states, ctx_mask, codes, pool):
    """ParlAI poly-encoder: m codes attend over the context states, then each candidate attends
    over the m context codes; score = candidate . attended context vector."""
    import torch

    att = codes @ ctx_states.transpose(1, 2)                          # (B, m, S)
    att = att.masked_fill(ctx_mask[:, None, :] == 0, torch.finfo(att.dtype).min).softmax(-1)
    ctx_codes = att @ ctx_states                                      # (B, m, d)
    out = []
    for c in pool.split(POOL_CHUNK):
        w = torch.einsum("pd,bmd->bpm", c, ctx_codes).softmax(-1)     # (B, P, m)
        vec = torch.einsum("bpm,bmd->bpd", w, ctx_codes)              # (B, P, d)
        out.append(torch.einsum("bpd,pd->bp", vec, c))
    return torch.cat(out, dim=1)


def scoring_flops(scoring: str, batch: int, pool: int, d: int, codes: int, ctx_len: int) -> float:
    if scoring == "bi":
        return float(2 * batch * pool * d)
    return float(4 * batch * codes * ctx_len * d + 4 * batch * pool * codes * d + 2 * batch * pool * d)


class Timer:
    """Synchronized sub-step timing, for workloads that report parts of a step."""

    def __init__(self, backend):
        self.backend = backend
        self.marks = []

    def mark(self) -> None:
        self.backend.synchronize()
        self.marks.append(time.perf_counter_ns())

    def spans(self) -> list[float]:
        return [(b - a) / 1e9 for a, b in itertools.pairwise(self.marks)]


@dataclass(frozen=True)
class RetrievalOptions(Options):
    title = "retrieval-encode"

    scoring: str = opt("poly", "bi-encoder dot product, or poly-encoder with --poly-codes codes (ParlAI)",
                       choices=("bi", "poly"))
    poly_codes: int = opt(64, "poly-encoder codes m (ParlAI: 64)", minimum=1, maximum=4096)
    top_k: int = opt(10, "candidates kept per context", minimum=1, maximum=100_000)


class RetrievalEncode(Workload):
    name = "retrieval-encode"
    description = "Retriever: encode candidates and contexts, bi- or poly-encoder scoring, top-k of a pool"
    tokens_are = "context + candidate tokens encoded"
    main_metric = "samples_per_s"
    memory_flags = ("--pool-size", "--batch-size", "--poly-codes", "--context-len", "--label-len")
    Options = RetrievalOptions
    figures = (FigureSpec("metrics.samples_per_s", "contexts/s", "contexts/s", "higher", lead=True),
               FigureSpec("workload_metrics.candidates_per_s", "candidates/s", "candidates/s", "higher"),
               FigureSpec("workload_metrics.score_topk_latency_s.median", "score p50", "s", "lower"),
               FigureSpec("workload_metrics.score_topk_latency_s.p99", "score p99", "s", "lower"),
               FigureSpec("workload_metrics.recall.recall_at_1", "recall@1", "", "higher"),
               FigureSpec("workload_metrics.recall.recall_at_10", "recall@10", "", "higher"))

    @classmethod
    def check(cls, common, options, device) -> None:
        cfg = check_encoder(common.encoder)
        check_positions(common.encoder, cfg, **{"--context-len": common.context_len, "--label-len": common.label_len})
        if common.pool_size < options.top_k:
            raise ConfigError(f"--pool-size: {common.pool_size} candidates is fewer than --top-k {options.top_k}")
        # the pool is drawn on the host (fp32, plus a normalized copy) before it moves to the device
        check_fits_host(f"--pool-size {common.pool_size:,} x {cfg['hidden_size']} dimensions",
                        2 * 4 * common.pool_size * cfg["hidden_size"])

    def setup(self) -> None:
        import torch

        c, o, dev = self.common, self.options, self.backend.device
        torch.manual_seed(c.seed)
        model, self.tokenizer = build_encoder(c.encoder)
        self.encoder_config = model.config
        self.identity = model_identity(model, c.encoder, label=c.encoder)
        self.model = self.backend.wrap_inference(model.to(dev).eval())
        d = model.config.hidden_size
        gen = torch.Generator().manual_seed(c.seed)
        self.pool = random_pool(c.pool_size, d, gen).to(dev)
        self.codes = (torch.randn(o.poly_codes, d, generator=gen) * d ** -0.5).to(dev)
        self.batches = [self._to_device(x, y) for x, y in self._token_batches()]
        self.i = 0

    def _token_batches(self):
        c = self.common
        if self.tokenizer is not None:
            return text_batches(self.tokenizer, c.batch_size, c.context_len, c.label_len, self.data_seed)
        vocab = self.encoder_config.vocab_size
        return make_batches(c.data, c.batch_size, c.context_len, c.label_len, vocab, self.data_seed)

    def _to_device(self, contexts, candidates) -> dict:
        import torch

        dev = self.backend.device
        ctx = torch.tensor(contexts, dtype=torch.long)
        cand = torch.tensor(candidates, dtype=torch.long).masked_fill(torch.tensor(candidates) == IGNORE, PAD)
        return {"ctx": ctx.to(dev), "ctx_mask": (ctx != PAD).long().to(dev), "cand": cand.to(dev),
                "cand_mask": (cand != PAD).long().to(dev),
                "tokens": int((ctx != PAD).sum() + (cand != PAD).sum())}

    def params(self) -> dict:
        c, o = self.common, self.options
        return {**self.identity, "batch_size": c.batch_size, "context_len": c.context_len,
                "candidate_len": c.label_len, "pool_size": c.pool_size, "top_k": o.top_k,
                "scoring": o.scoring, "poly_codes": o.poly_codes if o.scoring == "poly" else None,
                "precision": c.precision, "data": c.data if self.tokenizer is None else "shipped",
                "world_size": self.world_size}

    def encode(self, ids, mask):
        return self.model(input_ids=ids, attention_mask=mask).last_hidden_state

    def scores(self, states, ctx_emb, mask):
        pool = self.pool.to(states.dtype)
        if self.options.scoring == "bi":
            return bi_scores(ctx_emb, pool)
        return poly_scores(states, mask, self.codes.to(states.dtype), pool)

    def step(self) -> StepResult:
        import torch

        b = self.batches[self.i % len(self.batches)]
        self.i += 1
        timer = Timer(self.backend)
        with torch.inference_mode(), self.backend.autocast(self.common.precision):
            timer.mark()
            mean_pool(self.encode(b["cand"], b["cand_mask"]), b["cand_mask"])
            timer.mark()
            states = self.encode(b["ctx"], b["ctx_mask"])
            ctx_emb = mean_pool(states, b["ctx_mask"])
            timer.mark()
            self.scores(states, ctx_emb, b["ctx_mask"]).topk(self.options.top_k, dim=-1)
            timer.mark()
        cand_s, ctx_s, score_s = timer.spans()
        return StepResult(samples=self.common.batch_size, tokens=b["tokens"],
                          extra={"candidate_encode_s": cand_s, "context_encode_s": ctx_s, "score_s": score_s})

    def record(self, step: StepResult) -> dict:
        return dict(step.extra)

    def flops_per_step(self) -> float:
        c, o, e = self.common, self.options, self.encoder_config
        return (bert_flops(e, c.batch_size, c.label_len) + bert_flops(e, c.batch_size, c.context_len)
                + scoring_flops(o.scoring, c.batch_size, c.pool_size, e.hidden_size, o.poly_codes, c.context_len))

    def verify(self):
        """Top-k candidate ids (and scores) of the first fixed context: the fingerprint; and recall@k
        of the real MiniLM on the shipped sample where that model is the encoder."""
        import torch

        b = self.batches[0]
        with torch.inference_mode(), self.backend.autocast(self.common.precision):
            states = self.encode(b["ctx"][:1], b["ctx_mask"][:1])
            scores = self.scores(states, mean_pool(states, b["ctx_mask"][:1]), b["ctx_mask"][:1])[0].float()
        k = min(self.options.top_k, scores.numel() - 1)
        top = scores.topk(k + 1)
        vals = [float(v) for v in top.values]
        fingerprint = Fingerprint(f"top-{k} candidates of a fixed context", self.common.precision,
                                  values=vals[:k], tokens=[int(i) for i in top.indices[:k]],
                                  margins=[vals[i] - vals[i + 1] for i in range(k)])
        recall = self.recall() if self.tokenizer is not None else {
            "recall_at_1": None, "recall_at_10": None,
            "reason": f"{self.common.encoder} is random-initialised; recall needs --encoder minilm"}
        return fingerprint, {f"recall.{k}": v for k, v in recall.items()}

    @classmethod
    def metrics(cls, repeats, params, options=None) -> dict:
        measured = [r for r in repeats if r.step_times_s]
        if not measured:
            return {}
        n = sum(s for r in measured for s in r.step_samples)
        cand, ctx = sum(concat(measured, "candidate_encode_s")), sum(concat(measured, "context_encode_s"))
        out = {"candidates_per_s": n / cand if cand else None, "contexts_per_s": n / ctx if ctx else None,
               "score_topk_latency_s": summary(concat(measured, "score_s"))}
        for key in ("recall.recall_at_1", "recall.recall_at_10", "recall.pool", "recall.queries", "recall.scoring",
                    "recall.reason"):
            value = first_figure(measured, key)
            if value is not None or key in ("recall.recall_at_1", "recall.recall_at_10"):
                out[key] = value
        return out

    def recall(self) -> dict:
        """recall@1/@10 of the true reply among the shipped sample's distinct replies (bi, cosine)."""
        import torch

        dialogues = load_dialogues()
        replies = sorted({d["reply"] for d in dialogues})
        index = {r: i for i, r in enumerate(replies)}
        with torch.inference_mode():
            cand = self._embed_texts(replies)
            ctx = self._embed_texts([d["context"] for d in dialogues])
            ranks = (ctx @ cand.T).argsort(dim=-1, descending=True)
        truth = torch.tensor([index[d["reply"]] for d in dialogues], device=ranks.device)
        hit = ranks == truth[:, None]
        return {"recall_at_1": float(hit[:, :1].any(-1).float().mean()),
                "recall_at_10": float(hit[:, :10].any(-1).float().mean()),
                "pool": len(replies), "queries": len(dialogues), "scoring": "bi (cosine), the model's own"}

    def _embed_texts(self, texts, batch: int = 64):
        import torch

        out = []
        for i in range(0, len(texts), batch):
            enc = self.tokenizer(texts[i:i + batch], padding=True, truncation=True, max_length=128,
                                 return_tensors="pt").to(self.backend.device)
            states = self.encode(enc["input_ids"], enc["attention_mask"]).float()
            out.append(torch.nn.functional.normalize(mean_pool(states, enc["attention_mask"]), dim=-1))
        return torch.cat(out)

    def teardown(self) -> None:
        self.model = self.batches = self.pool = None


def text_batches(tokenizer, batch: int, context_len: int, cand_len: int, seed: int, n: int = 8):
    """Shipped contexts and replies through a real tokenizer, padded to fixed lengths."""
    import random

    dialogues = list(load_dialogues())
    random.Random(seed).shuffle(dialogues)
    out = []
    for b in range(n):
        chunk = [dialogues[(b * batch + i) % len(dialogues)] for i in range(batch)]
        ctx = tokenizer([d["context"] for d in chunk], padding="max_length", truncation=True,
                        max_length=context_len)["input_ids"]
        cand = tokenizer([d["reply"] for d in chunk], padding="max_length", truncation=True,
                         max_length=cand_len)["input_ids"]
        out.append((ctx, cand))
    return out
