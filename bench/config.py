"""RunConfig: everything that defines a `bench run`, with presets and checks that name the bad field."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.core.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "hpu")
PRECISIONS = ("fp32", "bf16", "fp16")
OPTIMIZERS = ("adamw", "adamax")
DATA_SOURCES = ("shipped", "synthetic")
HPU_MODES = ("lazy", "eager", "compile")
ENCODERS = ("bert-tiny", "bert-base", "minilm")
SCORINGS = ("bi", "poly")


@dataclass(frozen=True)
class Preset:
    """Workload sizes a preset stands for; any CLI flag given explicitly wins over it."""

    model: str
    batch_size: int
    context_len: int
    label_len: int
    data: str
    steps: int
    warmup: int
    new_tokens: int
    pool_size: int
    lr: float
    encoder: str


PRESETS = {
    # Small config from FACTS.md: smoke runs in seconds on a laptop or CI.
    "tiny": Preset("tiny", batch_size=8, context_len=32, label_len=16, data="shipped",
                   steps=20, warmup=3, new_tokens=8, pool_size=1000, lr=1e-3,
                   encoder="bert-tiny"),
    # The seed's configuration: BlenderBot-90M, batch 24, 163 context and 18 label tokens (BST means).
    "seed": Preset("blenderbot-90m", batch_size=24, context_len=163, label_len=18, data="synthetic",
                   steps=10, warmup=2, new_tokens=20, pool_size=10_000, lr=1e-5,
                   encoder="bert-base"),
}


@dataclass
class RunConfig:
    device: str = "auto"
    workloads: list[str] = field(default_factory=list)
    preset: str = "tiny"
    precision: str = "fp32"
    steps: int | None = None
    time_budget_s: float | None = None
    min_steps: int = 3
    warmup: int | None = None
    repeats: int = 1
    batch_size: int | None = None
    context_len: int | None = None
    label_len: int | None = None
    seed: int = 0
    out_dir: str = "reports"
    label: str | None = None
    sample_hz: float = 10.0
    threads: int | None = None
    model: str | None = None
    data: str | None = None
    optimizer: str = "adamw"
    lr: float | None = None
    beams: int = 1
    new_tokens: int | None = None
    pool_size: int | None = None
    top_k: int = 10
    poly_codes: int = 64
    encoder: str | None = None
    scoring: str = "poly"
    static_shapes: bool = False
    hpu_mode: str | None = None
    hpu_graphs: bool = False
    compile: bool = False
    peak_tflops: float | None = None
    nproc: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    scaling: list[int] | None = None
    dist_timeout_s: float = 300.0
    options: dict[str, str] = field(default_factory=dict)

    def resolved(self) -> "RunConfig":
        """A copy with every preset-driven field filled in from the preset."""
        preset = PRESETS[self.preset]
        values = asdict(self)
        for name in ("batch_size", "context_len", "label_len", "warmup", "data",
                     "new_tokens", "pool_size", "lr", "encoder"):
            if values[name] is None:
                values[name] = getattr(preset, name)
        if values["steps"] is None and self.time_budget_s is None:
            values["steps"] = preset.steps
        return RunConfig(**values)

    @property
    def model_name(self) -> str:
        return self.model or PRESETS[self.preset].model

    def to_dict(self) -> dict:
        return asdict(self)


def _choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ConfigError(f"{name}: {value!r} is not one of {', '.join(map(str, choices))}")


def _positive(name: str, value, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        need = "0 or more" if allow_zero else "more than 0"
        raise ConfigError(f"{name}: must be {need}, got {value}")


def validate(cfg: RunConfig, known_workloads) -> RunConfig:
    """Check a config and return it resolved against its preset. Raises ConfigError naming the field."""
    _choice("--device", cfg.device, DEVICES)
    _choice("--preset", cfg.preset, tuple(PRESETS))
    _choice("--precision", cfg.precision, PRECISIONS)
    _choice("--optimizer", cfg.optimizer, OPTIMIZERS)
    _choice("--scoring", cfg.scoring, SCORINGS)
    if cfg.encoder is not None:
        _choice("--encoder", cfg.encoder, ENCODERS)
    if cfg.data is not None:
        _choice("--data", cfg.data, DATA_SOURCES)
    if cfg.hpu_mode is not None:
        _choice("--hpu-mode", cfg.hpu_mode, HPU_MODES)
        if cfg.device not in ("hpu", "auto"):
            raise ConfigError(f"--hpu-mode: only applies to --device hpu, not {cfg.device}")
    unknown = [w for w in cfg.workloads if w not in known_workloads]
    if unknown:
        raise ConfigError(f"--workload: unknown {', '.join(unknown)}; "
                          f"choose from {', '.join(sorted(known_workloads))}")
    for name in ("steps", "repeats", "batch_size", "context_len", "label_len", "new_tokens",
                 "pool_size", "top_k", "poly_codes", "min_steps", "threads"):
        _positive("--" + name.replace("_", "-"), getattr(cfg, name))
    _positive("--warmup", cfg.warmup, allow_zero=True)
    _positive("--time-budget", cfg.time_budget_s)
    _positive("--sample-hz", cfg.sample_hz, allow_zero=True)
    if cfg.sample_hz and cfg.sample_hz > 100:
        raise ConfigError(f"--sample-hz: at most 100 (CPU% is quantized to 10 ms ticks), got {cfg.sample_hz}")
    if not 1 <= cfg.beams <= 8:
        raise ConfigError(f"--beams: must be between 1 and 8, got {cfg.beams}")
    if cfg.steps is not None and cfg.time_budget_s is not None:
        raise ConfigError("--steps and --time-budget: give one of them, not both")
    _positive("--lr", cfg.lr)
    _check_distributed(cfg)
    if cfg.peak_tflops is not None:
        _positive("--peak-tflops", cfg.peak_tflops)
    out = cfg.resolved()
    if out.pool_size < out.top_k:
        raise ConfigError(f"--pool-size: {out.pool_size} candidates is fewer than --top-k {out.top_k}")
    if out.steps is not None and out.warmup >= out.steps:
        raise ConfigError(f"--warmup: must be below --steps ({out.warmup} >= {out.steps})")
    check_writable(out.out_dir)
    return out


def check_writable(path: str) -> None:
    """Refuse an output directory we cannot write to before anything runs."""
    target = Path(path)
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target, prefix=".bench-probe-"):
            pass
    except OSError as exc:
        raise ConfigError(f"--out: cannot write to {path!r} ({exc.strerror or exc}); "
                          "choose a directory you can write to") from None



def _check_distributed(cfg: RunConfig) -> None:
    _positive("--nproc", cfg.nproc)
    _positive("--nnodes", cfg.nnodes)
    _positive("--dist-timeout", cfg.dist_timeout_s)
    if not 0 <= cfg.node_rank < cfg.nnodes:
        raise ConfigError(f"--node-rank: must be between 0 and --nnodes - 1, got {cfg.node_rank}")
    if cfg.nnodes > 1 and not cfg.rdzv_endpoint:
        raise ConfigError("--rdzv-endpoint: needed with --nnodes above 1 (HOST:PORT of node 0)")
    if cfg.rdzv_endpoint is not None:
        host, sep, port = cfg.rdzv_endpoint.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"--rdzv-endpoint: expected HOST:PORT with a port 1-65535, got {cfg.rdzv_endpoint!r}")
    if cfg.scaling is not None:
        if not cfg.scaling or any(n < 1 for n in cfg.scaling):
            raise ConfigError(f"--scaling: expected world sizes like 1,2,4,8, got {cfg.scaling}")
