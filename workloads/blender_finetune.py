"""blender-finetune: one BlenderBot training step (forward, backward, optimizer step)."""

from __future__ import annotations

from workloads.base import StepResult, Workload
from workloads.data import IGNORE, PAD, make_batches
from workloads.models import build_blender, model_identity, seq2seq_train_flops


class BlenderFinetune(Workload):
    name = "blender-finetune"
    description = "BlenderBot fine-tune step: forward, backward, optimizer step (AdamW or Adamax)"
    tokens_are = "context + label tokens (ParlAI tps)"
    main_metric = "samples_per_s"

    def setup(self) -> None:
        import torch

        cfg, dev = self.cfg, self.backend.device
        torch.manual_seed(cfg.seed)
        model = build_blender(cfg.model_name).to(dev)
        model.train()
        self.identity = model_identity(model, cfg.model_name)
        self.config = model.config
        self.model = self.backend.wrap_train(self._data_parallel(model))
        opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adamax
        self.optimizer = opt_cls(model.parameters(), lr=cfg.lr)
        self.scaler = self.backend.grad_scaler(cfg.precision)
        self.batches = [self._to_tensors(c, l) for c, l in make_batches(
            cfg.data, cfg.batch_size, cfg.context_len, cfg.label_len, self.config.vocab_size, self.data_seed)]
        self.losses = []
        self.i = 0

    def _data_parallel(self, model):
        """DistributedDataParallel across ranks (gradients all-reduced in backward); and the time of
        a standalone all-reduce of a gradient-sized buffer, the communication DDP overlaps."""
        if self.world_size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        self.allreduce_s = self.backend.time_allreduce(sum(p.numel() for p in model.parameters()))
        ids = [self.backend.local_rank] if self.backend.name == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def _to_tensors(self, contexts, labels) -> dict:
        import torch

        dev = self.backend.device
        ids = torch.tensor(contexts, dtype=torch.long)
        lbl = torch.tensor(labels, dtype=torch.long)
        counts = {"context_tokens": int((ids != PAD).sum()), "label_tokens": int((lbl != IGNORE).sum())}
        return {"inputs": {"input_ids": ids.to(dev), "attention_mask": (ids != PAD).long().to(dev),
                           "labels": lbl.to(dev)}, **counts}

    def params(self) -> dict:
        c = self.cfg
        return {**self.identity, "batch_size": c.batch_size, "context_len": c.context_len,
                "label_len": c.label_len, "precision": c.precision, "optimizer": c.optimizer,
                "data": c.data, "world_size": self.world_size}

    def step(self) -> StepResult:
        batch = self.batches[self.i % len(self.batches)]
        self.i += 1
        with self.backend.autocast(self.cfg.precision):
            loss = self.model(**batch["inputs"]).loss
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        self.backend.after_backward()
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.backend.after_optimizer_step()
        self.losses.append(loss.detach())  # no .item() here: that would sync inside the step
        ctx, lbl = batch["context_tokens"], batch["label_tokens"]
        return StepResult(samples=self.cfg.batch_size, tokens=ctx + lbl,
                          extra={"context_tokens": ctx, "label_tokens": lbl})

    def flops_per_step(self) -> float:
        c = self.cfg
        return seq2seq_train_flops(self.config, c.batch_size, c.context_len, c.label_len)

    def extra_metrics(self, steps, times) -> dict:
        """The seed's ParlAI names: exps, ups, tps, ctps, ltps, clen, llen; and the loss curve."""
        total = sum(times)
        n_samples = sum(s.samples for s in steps)
        ctx = sum(s.extra["context_tokens"] for s in steps)
        lbl = sum(s.extra["label_tokens"] for s in steps)
        losses = self.series()["loss"]
        parlai = {"exps": n_samples / total, "ups": len(steps) / total, "tps": (ctx + lbl) / total,
                  "ctps": ctx / total, "ltps": lbl / total, "clen": ctx / n_samples, "llen": lbl / n_samples}
        out = {f"parlai.{k}": v for k, v in parlai.items()}
        out.update({"loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None})
        comm = getattr(self, "allreduce_s", None)
        if comm:
            out.update({f"comm.{k}": v for k, v in comm.items()})
        return out

    def series(self) -> dict[str, list]:
        return {"loss": [float(x) for x in self.losses]}

    def teardown(self) -> None:
        self.model = self.optimizer = self.batches = None
