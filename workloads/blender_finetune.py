"""blender-finetune: one BlenderBot training step (forward, backward, optimizer step)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.options import Options, opt
from bench.model.report import FigureSpec, Fingerprint
from workloads.base import StepResult, Workload, concat, first_figure
from workloads.data import IGNORE, PAD, make_batches
from workloads.models import build_blender, check_positions, model_config, model_identity, seq2seq_train_flops

FINGERPRINT_STEPS = 3  # the loss after this many fixed steps from the seeded model is the fingerprint


@dataclass(frozen=True)
class FinetuneOptions(Options):
    title = "blender-finetune"
    presets = {"tiny": {"lr": 1e-3}, "seed": {"lr": 1e-5}}

    optimizer: str = opt("adamw", "the fine-tune step's optimizer (adamax is what ParlAI used)",
                         choices=("adamw", "adamax"))
    lr: float | None = opt(None, "learning rate", exclusive_minimum=0, maximum=10, preset=True)
    optimizer_impl: str = opt("foreach", "how the optimizer updates the parameters: foreach (multi-tensor kernels) "
                                         "or for-loop (one parameter at a time). Left to itself torch picks foreach "
                                         "on cuda and the loop on cpu and hpu; one kind on every device keeps steps "
                                         "comparable. Recorded in params", choices=("foreach", "for-loop"))


class BlenderFinetune(Workload):
    name = "blender-finetune"
    description = "BlenderBot fine-tune step: forward, backward, optimizer step (AdamW or Adamax)"
    tokens_are = "context + label tokens (ParlAI tps)"
    main_metric = "samples_per_s"
    memory_flags = ("--batch-size", "--context-len", "--label-len")
    Options = FinetuneOptions
    figures = (FigureSpec("metrics.samples_per_s", "samples/s", "samples/s", "higher", lead=True),
               FigureSpec("workload_metrics.parlai.exps", "exps", "examples/s", "higher"),
               FigureSpec("workload_metrics.parlai.ups", "ups", "updates/s", "higher"),
               FigureSpec("workload_metrics.parlai.tps", "tps", "tokens/s", "higher"),
               FigureSpec("workload_metrics.parlai.ctps", "ctps", "tokens/s", "higher"),
               FigureSpec("workload_metrics.parlai.ltps", "ltps", "tokens/s", "higher"),
               FigureSpec("workload_metrics.loss_first", "loss first", "", "none"),
               FigureSpec("workload_metrics.loss_last", "loss last", "", "lower"))

    @classmethod
    def check(cls, common, options, device) -> None:
        cfg = model_config(common.model)
        check_positions(common.model, cfg, **{"--context-len": common.context_len, "--label-len": common.label_len})

    def setup(self) -> None:
        import torch

        c, dev = self.common, self.backend.device
        torch.manual_seed(c.seed)
        model = build_blender(c.model).to(dev)
        model.train()
        self.identity = model_identity(model, c.model)
        self.config = model.config
        self.model = self.backend.wrap_train(self._data_parallel(model))
        self.optimizer = self._optimizer(model)
        self.scaler = self.backend.grad_scaler(c.precision)
        self.batches = [self._to_tensors(x, y) for x, y in make_batches(
            c.data, c.batch_size, c.context_len, c.label_len, self.config.vocab_size, self.data_seed)]
        self.losses = []
        self.i = 0

    def _optimizer(self, model):
        import torch

        cls = torch.optim.AdamW if self.options.optimizer == "adamw" else torch.optim.Adamax
        return cls(model.parameters(), lr=self.options.lr, foreach=self.foreach)

    @property
    def foreach(self) -> bool:
        """torch's own default (torch/optim/optimizer.py _default_to_fused_or_foreach) takes foreach only on the
        devices _get_foreach_kernels_supported_devices() lists, cuda among them, hpu not, though the Gaudi bridge
        implements the _foreach_ kernels (1.19 hpu_ops/backend/foreach_gen.cpp): so it is asked for here."""
        return self.options.optimizer_impl == "foreach" and getattr(self.backend, "foreach_optimizer", True)

    def _data_parallel(self, model):
        """DistributedDataParallel across ranks (gradients all-reduced in backward); and the time of
        a standalone all-reduce of a gradient-sized buffer, the communication DDP overlaps."""
        if self.world_size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        self.allreduce = self.backend.time_allreduce(sum(p.numel() for p in model.parameters()))
        return DistributedDataParallel(model, device_ids=self.backend.ddp_device_ids())

    def _to_tensors(self, contexts, labels) -> dict:
        import torch

        dev = self.backend.device
        ids = torch.tensor(contexts, dtype=torch.long)
        lbl = torch.tensor(labels, dtype=torch.long)
        counts = {"context_tokens": int((ids != PAD).sum()), "label_tokens": int((lbl != IGNORE).sum())}
        return {"inputs": {"input_ids": ids.to(dev), "attention_mask": (ids != PAD).long().to(dev),
                           "labels": lbl.to(dev)}, **counts}

    def params(self) -> dict:
        c = self.common
        return {**self.identity, "batch_size": c.batch_size, "context_len": c.context_len, "label_len": c.label_len,
                "precision": c.precision, "optimizer": self.options.optimizer, "lr": self.options.lr,
                "optimizer_impl": "foreach" if self.foreach else "for-loop",
                "data": c.data, "world_size": self.world_size}

    def train_step(self, batch) -> object:
        with self.backend.autocast(self.common.precision):
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
        return loss.detach()  # no .item() here: that would sync inside the step

    def step(self) -> StepResult:
        batch = self.batches[self.i % len(self.batches)]
        self.i += 1
        self.losses.append(self.train_step(batch))
        ctx, lbl = batch["context_tokens"], batch["label_tokens"]
        return StepResult(samples=self.common.batch_size, tokens=ctx + lbl,
                          extra={"context_tokens": ctx, "label_tokens": lbl})

    def record(self, step: StepResult) -> dict:
        return {"context_tokens": step.extra["context_tokens"], "label_tokens": step.extra["label_tokens"]}

    def flops_per_step(self) -> float:
        c = self.common
        return seq2seq_train_flops(self.config, c.batch_size, c.context_len, c.label_len)

    def series(self) -> dict[str, list]:
        return {"loss": [float(x) for x in self.losses]}

    def start_measuring(self) -> None:
        self.losses = []  # the loss series covers the measured steps only

    def verify(self):
        """The loss after FINGERPRINT_STEPS steps on fixed batches from a freshly seeded model: every
        device computing the same thing gets the same losses (within its precision)."""
        import torch

        torch.manual_seed(self.common.seed)
        model = build_blender(self.common.model).to(self.backend.device)
        model.eval()  # no dropout: its masks come from each device's own random generator
        self.model, self.optimizer = model, self._optimizer(model)
        fixed = [self._to_tensors(x, y) for x, y in make_batches(
            "synthetic", 4, min(self.common.context_len, 32), min(self.common.label_len, 8),
            self.config.vocab_size, self.common.seed, n=FINGERPRINT_STEPS)]
        losses = [float(self.train_step(b)) for b in fixed]
        figures = {f"comm.{k}": v for k, v in getattr(self, "allreduce", {}).items()}
        return Fingerprint(f"loss after each of {FINGERPRINT_STEPS} fixed steps", self.common.precision,
                           values=losses), figures

    def teardown(self) -> None:
        self.model = self.optimizer = self.batches = None

    @classmethod
    def metrics(cls, repeats, params, options=None) -> dict:
        """The seed's ParlAI names (exps, ups, tps, ctps, ltps, clen, llen) and the loss."""
        measured = [r for r in repeats if r.step_times_s]
        total = sum(sum(r.step_times_s) for r in measured)
        if not total:
            return {}
        n = sum(sum(r.step_samples) for r in measured)
        steps = sum(len(r.step_times_s) for r in measured)
        ctx, lbl = sum(concat(measured, "context_tokens")), sum(concat(measured, "label_tokens"))
        out = {"parlai.exps": n / total, "parlai.ups": steps / total, "parlai.tps": (ctx + lbl) / total,
               "parlai.ctps": ctx / total, "parlai.ltps": lbl / total,
               "parlai.clen": ctx / n if n else None, "parlai.llen": lbl / n if n else None}
        losses = [v for v in measured[0].series.get("loss", []) if v is not None]
        out.update({"loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None})
        for key in ("comm.allreduce_median_s", "comm.bytes", "comm.what"):
            if first_figure(measured, key) is not None:
                out[key] = first_figure(measured, key)
        return out
