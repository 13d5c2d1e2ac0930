"""retrieval-encode: the retriever side. Encode candidate replies and contexts, score by dot product
(bi-encoder) or through m learned codes (poly-encoder, as ParlAI), take the top k of a pool.

The pool of --pool-size candidate embeddings is random unit vectors: scoring cost does not depend on
their values, and encoding 10,000 candidates with BERT-base at setup would dominate a CPU run. The
quality number (recall@1/@10) uses the real all-MiniLM-L6-v2 over the shipped sample's replies.
"""

from __future__ import annotations

import time

from workloads.base import StepResult, Workload
from workloads.data import IGNORE, PAD, load_dialogues, make_batches
from workloads.models import bert_flops, build_encoder, model_identity

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
        return [(b - a) / 1e9 for a, b in zip(self.marks, self.marks[1:])]


class RetrievalEncode(Workload):
    name = "retrieval-encode"
    description = "Retriever: encode candidates and contexts, bi- or poly-encoder scoring, top-k of a pool"
    tokens_are = "context + candidate tokens encoded"
    main_metric = "samples_per_s"

    def setup(self) -> None:
        import torch

        cfg, dev = self.cfg, self.backend.device
        torch.manual_seed(cfg.seed)
        model, self.tokenizer = build_encoder(cfg.encoder)
        self.encoder_config = model.config
        self.identity = model_identity(model, cfg.encoder, label=cfg.encoder)
        self.model = self.backend.wrap_inference(model.to(dev).eval())
        d = model.config.hidden_size
        gen = torch.Generator().manual_seed(cfg.seed)
        self.pool = random_pool(cfg.pool_size, d, gen).to(dev)
        self.codes = (torch.randn(cfg.poly_codes, d, generator=gen) * d ** -0.5).to(dev)
        self.batches = [self._to_device(c, l) for c, l in self._token_batches()]
        self.i = 0

    def _token_batches(self):
        cfg = self.cfg
        if self.tokenizer is not None:
            return text_batches(self.tokenizer, cfg.batch_size, cfg.context_len, cfg.label_len, self.data_seed)
        vocab = self.encoder_config.vocab_size
        return make_batches(cfg.data, cfg.batch_size, cfg.context_len, cfg.label_len, vocab, self.data_seed)

    def _to_device(self, contexts, candidates) -> dict:
        import torch

        dev = self.backend.device
        ctx = torch.tensor(contexts, dtype=torch.long)
        cand = torch.tensor(candidates, dtype=torch.long).masked_fill(torch.tensor(candidates) == IGNORE, PAD)
        return {"ctx": ctx.to(dev), "ctx_mask": (ctx != PAD).long().to(dev), "cand": cand.to(dev),
                "cand_mask": (cand != PAD).long().to(dev),
                "tokens": int((ctx != PAD).sum() + (cand != PAD).sum())}

    def params(self) -> dict:
        c = self.cfg
        return {**self.identity, "batch_size": c.batch_size, "context_len": c.context_len,
                "candidate_len": c.label_len, "pool_size": c.pool_size, "top_k": c.top_k,
                "scoring": c.scoring, "poly_codes": c.poly_codes if c.scoring == "poly" else None,
                "precision": c.precision, "data": c.data if self.tokenizer is None else "shipped",
                "world_size": self.world_size}

    def encode(self, ids, mask):
        return self.model(input_ids=ids, attention_mask=mask).last_hidden_state

    def step(self) -> StepResult:
        import torch

        b = self.batches[self.i % len(self.batches)]
        self.i += 1
        timer = Timer(self.backend)
        with torch.inference_mode(), self.backend.autocast(self.cfg.precision):
            timer.mark()
            mean_pool(self.encode(b["cand"], b["cand_mask"]), b["cand_mask"])
            timer.mark()
            states = self.encode(b["ctx"], b["ctx_mask"])
            ctx_emb = mean_pool(states, b["ctx_mask"])
            timer.mark()
            pool = self.pool.to(states.dtype)
            if self.cfg.scoring == "bi":
                scores = bi_scores(ctx_emb, pool)
            else:
                scores = poly_scores(states, b["ctx_mask"], self.codes.to(states.dtype), pool)
            scores.topk(self.cfg.top_k, dim=-1)
            timer.mark()
        cand_s, ctx_s, score_s = timer.spans()
        return StepResult(samples=self.cfg.batch_size, tokens=b["tokens"],
                          extra={"candidate_encode_s": cand_s, "context_encode_s": ctx_s, "score_s": score_s})

    def flops_per_step(self) -> float:
        c, e = self.cfg, self.encoder_config
        return (bert_flops(e, c.batch_size, c.label_len) + bert_flops(e, c.batch_size, c.context_len)
                + scoring_flops(c.scoring, c.batch_size, c.pool_size, e.hidden_size, c.poly_codes, c.context_len))

    def extra_metrics(self, steps, times) -> dict:
        from bench.model.derive import summary

        n = sum(s.samples for s in steps)
        cand = sum(s.extra["candidate_encode_s"] for s in steps)
        ctx = sum(s.extra["context_encode_s"] for s in steps)
        out = {"candidates_per_s": n / cand if cand else None, "contexts_per_s": n / ctx if ctx else None,
               "score_topk_latency_s": summary([s.extra["score_s"] for s in steps])}
        recall = self.recall() if self.tokenizer is not None else {
            "recall_at_1": None, "recall_at_10": None,
            "reason": f"{self.cfg.encoder} is random-initialised; recall needs --encoder minilm"}
        out.update({f"recall.{k}": v for k, v in recall.items()})
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
