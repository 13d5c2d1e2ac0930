"""retrieve-refine: the seed's third architecture. Retrieve the best candidate reply for a context
(bi-encoder over the pool), append it to the context after a separator token, then generate."""

from __future__ import annotations

from bench.core.errors import ConfigError
from bench.model.derive import summary
from bench.model.report import FigureSpec
from workloads.base import StepResult, Workload, concat
from workloads.blender_generate import forced_generate, greedy_fingerprint
from workloads.checkpoint import check_fits_host
from workloads.data import EOS, PAD, make_batches
from workloads.models import (
    bert_flops,
    build_blender,
    build_encoder,
    check_encoder,
    check_positions,
    generate_flops,
    generate_flops_rows,
    model_config,
    model_identity,
)
from workloads.retrieval_encode import (
    Timer,
    bi_scores,
    mean_pool,
    random_pool,
    scoring_flops,
)

SEP = EOS  # turn delimiter between the context and the retrieved reply


class RetrieveRefine(Workload):
    name = "retrieve-refine"
    description = "Retrieve a candidate reply (bi-encoder, top-1 of a pool), append it, then generate"
    tokens_are = "new tokens (batch x new tokens per request)"
    main_metric = "tokens_per_s"
    memory_flags = ("--batch-size", "--beams", "--context-len", "--new-tokens", "--pool-size")
    generates = True  # calls model.generate(): dynamic KV-cache objects (see the hpu spec's --hpu-graphs check)
    figures = (FigureSpec("metrics.tokens_per_s", "new tokens/s", "tokens/s", "higher", lead=True),
               FigureSpec("workload_metrics.retrieve_share", "retrieval share", "fraction", "none"),
               FigureSpec("workload_metrics.retrieve_s.median", "retrieve p50", "s", "lower"),
               FigureSpec("workload_metrics.generate_s.median", "generate p50", "s", "lower"),
               FigureSpec("metrics.step_time_s.p99", "request p99", "s", "lower"))

    @staticmethod
    def retriever(encoder: str) -> str:
        """The retrieval encoder: bert-tiny for smoke runs, else ParlAI's BERT-base size."""
        return "bert-tiny" if encoder == "bert-tiny" else "bert-base"

    @classmethod
    def check(cls, common, options, device) -> None:
        if common.context_len - common.label_len - 1 < 1:
            raise ConfigError(f"--context-len {common.context_len} leaves no room for the SEP token and a "
                              f"{common.label_len}-token retrieved reply; raise --context-len or lower --label-len")
        cfg = model_config(common.model)
        check_positions(common.model, cfg, **{"--context-len": common.context_len,
                                              "--new-tokens": common.new_tokens + 1})
        enc = check_encoder(cls.retriever(common.encoder))
        check_positions(cls.retriever(common.encoder), enc, **{"--context-len": common.context_len})
        # the pool on the host: embeddings (fp32, plus a normalized copy) and each reply's token ids
        check_fits_host(f"--pool-size {common.pool_size:,} (embeddings and reply tokens)",
                        common.pool_size * (2 * 4 * enc["hidden_size"] + 8 * common.label_len))

    def setup(self) -> None:
        import torch

        c, dev = self.common, self.backend.device
        self.keep = c.context_len - c.label_len - 1  # context tokens kept before SEP + reply
        torch.manual_seed(c.seed)
        gen_model = build_blender(c.model).to(dev).eval()
        self.gen_config = gen_model.config
        self.identity = model_identity(gen_model, c.model)
        self.generator = self.backend.wrap_inference(gen_model)
        encoder, _ = build_encoder(self.retriever(c.encoder))
        self.enc_config = encoder.config
        self.encoder = self.backend.wrap_inference(encoder.to(dev).eval())
        g = torch.Generator().manual_seed(c.seed)
        d = encoder.config.hidden_size
        self.pool = random_pool(c.pool_size, d, g).to(dev)
        # the pool's replies as generator token ids (what gets appended to the context)
        vocab = self.gen_config.vocab_size
        self.pool_ids = torch.randint(4, vocab, (c.pool_size, c.label_len), generator=g).to(dev)
        batches = make_batches(c.data, c.batch_size, c.context_len, 2, vocab, self.data_seed)
        self.batches = [self._inputs(ctx) for ctx, _ in batches]
        self.i = 0

    def _inputs(self, contexts) -> dict:
        import torch

        ids = torch.tensor(contexts, dtype=torch.long)
        enc_ids = torch.where(ids == PAD, ids, ids % self.enc_config.vocab_size)
        dev = self.backend.device
        return {"ids": ids.to(dev), "enc_ids": enc_ids.to(dev), "enc_mask": (ids != PAD).long().to(dev),
                "flops": self._flops((ids != PAD).long())}

    def _flops(self, mask) -> float:
        """This batch's FLOPs at each row's own length (padding is not the model's work): the encoder over
        the context, the scoring, and generation over the kept context + SEP + the retrieved reply."""
        c = self.common
        kept = mask[:, -self.keep:].sum(dim=1) + 1 + c.label_len
        return (sum(bert_flops(self.enc_config, 1, int(n)) for n in mask.sum(dim=1).tolist())
                + scoring_flops("bi", mask.shape[0], c.pool_size, self.enc_config.hidden_size, 0, c.context_len)
                + generate_flops_rows(self.gen_config, kept.tolist(), c.new_tokens, c.beams))

    @property
    def model(self):
        return self.generator

    def params(self) -> dict:
        c = self.common
        return {**self.identity, "retriever": self.retriever(c.encoder),
                "batch_size": c.batch_size, "context_len": c.context_len, "retrieved_len": c.label_len,
                "pool_size": c.pool_size, "new_tokens": c.new_tokens, "beams": c.beams,
                "precision": c.precision, "data": c.data, "world_size": self.world_size}

    def step(self) -> StepResult:
        import torch

        b = self.batches[self.i % len(self.batches)]
        self.i += 1
        timer = Timer(self.backend)
        with torch.inference_mode(), self.backend.autocast(self.common.precision):
            timer.mark()
            emb = mean_pool(self.encoder(input_ids=b["enc_ids"], attention_mask=b["enc_mask"]).last_hidden_state,
                            b["enc_mask"])
            best = bi_scores(emb, self.pool.to(emb.dtype)).argmax(dim=-1)
            timer.mark()
            ids = b["ids"]
            sep = torch.full((ids.shape[0], 1), SEP, dtype=ids.dtype, device=ids.device)
            joined = torch.cat([ids[:, -self.keep:], sep, self.pool_ids[best]], dim=1)
            inputs = {"input_ids": joined, "attention_mask": (joined != PAD).long()}
            out = forced_generate(self.generator, inputs, self.common.new_tokens, self.common.beams)
            timer.mark()
        retrieve_s, generate_s = timer.spans()
        new = out.shape[1] - 1
        n = ids.shape[0]
        return StepResult(samples=n, tokens=n * new, flops=b["flops"],
                          extra={"retrieve_s": retrieve_s, "generate_s": generate_s})

    def record(self, step: StepResult) -> dict:
        return dict(step.extra)

    def flops_per_step(self) -> float:
        """At the full context length, an upper bound; each step reports its own, without padding."""
        c = self.common
        return (bert_flops(self.enc_config, c.batch_size, c.context_len)
                + scoring_flops("bi", c.batch_size, c.pool_size, self.enc_config.hidden_size, 0, c.context_len)
                + generate_flops(self.gen_config, c.batch_size, c.context_len, c.new_tokens, c.beams))

    def verify(self):
        return greedy_fingerprint(self.generator, self.backend, self.common, self.gen_config.vocab_size), {}

    @classmethod
    def metrics(cls, repeats, params, options=None) -> dict:
        measured = [r for r in repeats if r.step_times_s]
        retrieve, generate = concat(measured, "retrieve_s"), concat(measured, "generate_s")
        total = sum(retrieve) + sum(generate)
        if not total:
            return {}
        return {"retrieve_s": summary(retrieve), "generate_s": summary(generate),
                "retrieve_share": sum(retrieve) / total, "generate_share": sum(generate) / total}

    def teardown(self) -> None:
        self.generator = self.encoder = self.batches = self.pool = None
