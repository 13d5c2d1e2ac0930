"""Options several workloads share, and the presets that fill them.

A workload reads these through `self.common`; its own options (declared in its module) through
`self.options`. Ranges here are what any workload can take; lengths are checked again against the
chosen model's positions before anything runs (Workload.check).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.errors import ConfigError
from bench.core.options import Options, opt

PRESETS = {
    # Small config from FACTS.md: smoke runs in seconds on a laptop or CI.
    "tiny": {"model": "tiny", "batch_size": 8, "context_len": 32, "label_len": 16, "data": "shipped",
             "new_tokens": 8, "pool_size": 1000, "encoder": "bert-tiny"},
    # The seed's configuration: BlenderBot-90M, batch 24, 163 context and 18 label tokens (BST means).
    "seed": {"model": "blenderbot-90m", "batch_size": 24, "context_len": 163, "label_len": 18, "data": "synthetic",
             "new_tokens": 20, "pool_size": 10_000, "encoder": "bert-base"},
}
PRECISIONS = ("fp32", "bf16", "fp16")
# Tokens one step may hold (batch x (context + label), times beams when generating): 64 x the seed's
# 4,344. Beyond it the inputs alone take minutes to build as Python lists and gigabytes to hold.
MAX_STEP_TOKENS = 1 << 21
ENCODERS = ("bert-tiny", "bert-base", "minilm")


@dataclass(frozen=True)
class CommonOptions(Options):
    title = "workloads (options several workloads share)"
    presets = PRESETS

    model: str | None = opt(None, "tiny | blenderbot-90m | a local checkpoint directory (config.json and "
                                  "*.safetensors; other formats and remote code are refused)",
                            preset=True, metavar="NAME_OR_DIR")
    precision: str = opt("fp32", "autocast precision of every workload (fp16 training on cuda uses a grad scaler; "
                                 "Gaudi runs bf16, not fp16)", choices=PRECISIONS)
    batch_size: int | None = opt(None, "samples per step", minimum=1, maximum=65_536, preset=True)
    context_len: int | None = opt(None, "context tokens per sample", minimum=1, maximum=65_536, preset=True)
    label_len: int | None = opt(None, "label tokens per sample (fine-tune), candidate tokens (retrieval), "
                                      "retrieved reply tokens (retrieve-refine)", minimum=1, maximum=65_536,
                                preset=True)
    new_tokens: int | None = opt(None, "tokens generated per sequence, forced: min = max new tokens",
                                 minimum=1, maximum=65_536, preset=True)
    beams: int = opt(1, "beam size, 1 = greedy (the seed recommends 1-3)", minimum=1, maximum=8)
    data: str | None = opt(None, "shipped: the shipped dialogue sample; synthetic: seeded random ids with the "
                                 "seed's lengths", choices=("shipped", "synthetic"), preset=True)
    encoder: str | None = opt(None, "retrieval encoder: bert-tiny and bert-base are built from config; minilm is "
                                    "the real all-MiniLM-L6-v2 (the minilm extra)", choices=ENCODERS, preset=True)
    pool_size: int | None = opt(None, "candidate pool for retrieval scoring", minimum=1, maximum=10_000_000,
                                preset=True)
    seed: int = opt(0, "seed of model initialisation and data (each rank adds its rank)", minimum=0,
                    maximum=2**63 - 1 - 4096)

    def check(self) -> None:
        """Bounds that span fields: the work one step holds (before anything is built); a --model
        directory that cannot be used, whichever workloads are selected."""
        from workloads.models import BLENDER_CONFIGS, check_model_dir

        if self.model is not None and self.model not in BLENDER_CONFIGS:
            check_model_dir(self.model, tuple(BLENDER_CONFIGS))
        lengths = [x for x in (self.context_len, self.label_len, self.new_tokens) if x is not None]
        if self.batch_size is None or not lengths:
            return
        tokens = self.batch_size * self.beams * sum(lengths)
        if tokens > MAX_STEP_TOKENS:
            raise ConfigError(f"--batch-size {self.batch_size} x --beams {self.beams} x (--context-len + --label-len + "
                              f"--new-tokens = {sum(lengths)}) is {tokens:,} tokens per step; at most "
                              f"{MAX_STEP_TOKENS:,}: lower --batch-size or the lengths")
