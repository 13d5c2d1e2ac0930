"""retrieve-refine: the seed's third architecture. Retrieve the best candidate reply for a context
(bi-encoder over the pool), append it to the context after a separator token, then generate."""

from __future__ import annotations

from bench.core.errors import WorkloadSkipped
from workloads.base import StepResult, Workload
from workloads.blender_generate import forced_generate
from workloads.data import EOS, PAD, make_batches
from workloads.models import (
    bert_flops,
    build_blender,
    build_encoder,
    generate_flops,
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

    @property
    def retriever(self) -> str:
        """The retrieval encoder: bert-tiny for smoke runs, else ParlAI's BERT-base size."""
        return "bert-tiny" if self.cfg.encoder == "bert-tiny" else "bert-base"

    def setup(self) -> None:
        import torch

        cfg, dev = self.cfg, self.backend.device
        self.keep = cfg.context_len - cfg.label_len - 1  # context tokens kept before SEP + reply
        if self.keep < 1:
            raise WorkloadSkipped(f"--context-len {cfg.context_len} leaves no room for the SEP token and a "
                                  f"{cfg.label_len}-token retrieved reply; raise --context-len or lower --label-len")
        torch.manual_seed(cfg.seed)
        gen_model = build_blender(cfg.model_name).to(dev).eval()
        self.gen_config = gen_model.config
        self.identity = model_identity(gen_model, cfg.model_name)
        self.generator = self.backend.wrap_inference(gen_model)
        encoder, _ = build_encoder(self.retriever)
        self.enc_config = encoder.config
        self.encoder = self.backend.wrap_inference(encoder.to(dev).eval())
        g = torch.Generator().manual_seed(cfg.seed)
        d = encoder.config.hidden_size
        self.pool = random_pool(cfg.pool_size, d, g).to(dev)
        # the pool's replies as generator token ids (what gets appended to the context)
        vocab = self.gen_config.vocab_size
        self.pool_ids = torch.randint(4, vocab, (cfg.pool_size, cfg.label_len), generator=g).to(dev)
        batches = make_batches(cfg.data, cfg.batch_size, cfg.context_len, 2, vocab, self.data_seed)
        self.batches = [self._inputs(ctx) for ctx, _ in batches]
        self.i = 0

    def _inputs(self, contexts) -> dict:
        import torch

        ids = torch.tensor(contexts, dtype=torch.long)
        enc_ids = torch.where(ids == PAD, ids, ids % self.enc_config.vocab_size)
        dev = self.backend.device
        return {"ids": ids.to(dev), "enc_ids": enc_ids.to(dev), "enc_mask": (ids != PAD).long().to(dev)}

    @property
    def model(self):
        return self.generator

    def params(self) -> dict:
        c = self.cfg
        return {**self.identity, "retriever": self.retriever,
                "batch_size": c.batch_size, "context_len": c.context_len, "retrieved_len": c.label_len,
                "pool_size": c.pool_size, "new_tokens": c.new_tokens, "beams": c.beams,
                "precision": c.precision, "data": c.data, "world_size": self.world_size}

    def step(self) -> StepResult:
        import torch

        b = self.batches[self.i % len(self.batches)]
        self.i += 1
        timer = Timer(self.backend)
        with torch.inference_mode(), self.backend.autocast(self.cfg.precision):
            timer.mark()
            emb = mean_pool(self.encoder(input_ids=b["enc_ids"], attention_mask=b["enc_mask"]).last_hidden_state,
                            b["enc_mask"])
            best = bi_scores(emb, self.pool.to(emb.dtype)).argmax(dim=-1)
            timer.mark()
            ids = b["ids"]
            sep = torch.full((ids.shape[0], 1), SEP, dtype=ids.dtype, device=ids.device)
            joined = torch.cat([ids[:, -self.keep:], sep, self.pool_ids[best]], dim=1)
            inputs = {"input_ids": joined, "attention_mask": (joined != PAD).long()}
            out = forced_generate(self.generator, inputs, self.cfg.new_tokens, self.cfg.beams)
            timer.mark()
        retrieve_s, generate_s = timer.spans()
        new = out.shape[1] - 1
        n = ids.shape[0]
        return StepResult(samples=n, tokens=n * new,
                          extra={"retrieve_s": retrieve_s, "generate_s": generate_s, "new_tokens": new})

    def flops_per_step(self) -> float:
        c = self.cfg
        return (bert_flops(self.enc_config, c.batch_size, c.context_len)
                + scoring_flops("bi", c.batch_size, c.pool_size, self.enc_config.hidden_size, 0, c.context_len)
                + generate_flops(self.gen_config, c.batch_size, c.context_len, c.new_tokens, c.beams))

    def extra_metrics(self, steps, times) -> dict:
        from bench.model.derive import summary

        retrieve = [s.extra["retrieve_s"] for s in steps]
        generate = [s.extra["generate_s"] for s in steps]
        total = sum(retrieve) + sum(generate)
        return {"retrieve_s": summary(retrieve), "generate_s": summary(generate),
                "retrieve_share": sum(retrieve) / total if total else None,
                "generate_share": sum(generate) / total if total else None}

    def teardown(self) -> None:
        self.generator = self.encoder = self.batches = self.pool = None
