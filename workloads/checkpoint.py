"""A local checkpoint (`--model DIR`), checked whole before any workload starts: refused with the file
and the field that is wrong (ConfigError, exit 2), never found 20 seconds into a run.

    check_model_dir(path)   the directory: config.json, and safetensors weights only — every file a
                            sharded `model.safetensors.index.json` names is a .safetensors file here
                            (a .bin shard would be unpickled by the loader); every file's header
                            fits the format and the file; the weights fit the host's memory
    check_architecture(...) config.json against itself: widths divisible by their heads, token ids
                            inside the vocabulary, a model whose parameters fit the host
    check_weights(...)      the tensors of the files against the model config.json describes: built
                            on the meta device (no memory), each tensor's shape compared by name

No loader runs here and nothing is executed from the directory: headers are JSON read with bounds.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from bench.core.errors import ConfigError
from bench.core.text import clip

MAX_WEIGHT_FILES = 64
MAX_HEADER_BYTES = 100 * 2**20
MAX_INDEX_BYTES = 16 * 2**20
INDEX = "model.safetensors.index.json"
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
_NAME = re.compile(r"^[A-Za-z0-9_.\-/:]{1,512}$")
_SHARD = re.compile(r"^[A-Za-z0-9_.\-]{1,200}\.safetensors$")


def check_model_dir(path: str, named: tuple[str, ...] = ()) -> Path:
    """A --model directory must exist and hold a config.json and safetensors weights (see the module);
    `named`: the models --model also takes by name, for the message when it is neither."""
    p, shown = Path(path), clip(path, 200)
    try:
        if not p.is_dir():
            names = ", ".join(named) or "the named models"
            raise ConfigError(f"--model {shown}: not a directory (and not one of {names}); name a local checkpoint "
                              "directory")
        if not (p / "config.json").is_file():
            raise ConfigError(f"--model {shown}: no config.json in it; it is not a checkpoint directory")
        weights = weight_files(p, shown)
        total = sum(_bytes(safetensors_header(w, shown)) for w in weights)
    except OSError as exc:
        raise ConfigError(f"--model {shown}: cannot read it ({exc.strerror or exc})") from None
    check_fits_host(f"--model {shown}: {total / 2**30:.1f} GiB of weights", total)
    return p


def weight_files(p: Path, shown: str) -> list[Path]:
    """The files the loader reads: those the shard index names, or the *.safetensors of the folder."""
    if (p / INDEX).exists():
        return _indexed(p, shown)
    weights = sorted(p.glob("*.safetensors"))
    if not weights:
        raise ConfigError(f"--model {shown}: no *.safetensors weights in it (other formats are refused: they "
                          "can run code when loaded)")
    if len(weights) > MAX_WEIGHT_FILES:
        raise ConfigError(f"--model {shown}: {len(weights)} weight files; at most {MAX_WEIGHT_FILES}")
    return weights


def _indexed(p: Path, shown: str) -> list[Path]:
    """The shards of a sharded checkpoint, each a safetensors file of this folder holding the tensors
    the index says it holds."""
    where = f"--model {shown}: {INDEX}"
    index = _json_file(p / INDEX, where, MAX_INDEX_BYTES)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise ConfigError(f"{where}: no weight_map (tensor name -> shard file)")
    shards: dict[str, list[str]] = {}
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str) or not _SHARD.match(shard):
            raise ConfigError(f"{where}: weight_map[{clip(str(tensor), 60)!r}] names {clip(repr(shard), 80)}: only "
                              "safetensors files of this folder are loaded (a .bin or .pt shard would be unpickled)")
        shards.setdefault(shard, []).append(tensor)
    if len(shards) > MAX_WEIGHT_FILES:
        raise ConfigError(f"{where}: {len(shards)} shard files; at most {MAX_WEIGHT_FILES}")
    for shard, tensors in shards.items():
        if not (p / shard).is_file():
            raise ConfigError(f"{where}: names {shard}, which is not in the folder")
        header = safetensors_header(p / shard, shown)
        missing = [t for t in tensors if t not in header]
        if missing:
            raise ConfigError(f"{where}: says {shard} holds {clip(missing[0], 80)!r}; its header does not")
    return [p / s for s in shards]


def _json_file(path: Path, where: str, limit: int):
    if path.stat().st_size > limit:
        raise ConfigError(f"{where}: larger than {limit / 2**20:.0f} MiB")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{where}: not readable JSON ({type(exc).__name__})") from None


def _bytes(header: dict) -> int:
    return sum(end - begin for _, _, (begin, end) in header.values())


@lru_cache(maxsize=256)
def _header_of(path: str, size: int, mtime_ns: int, shown: str) -> dict:
    return _read_header(Path(path), size, shown)


def safetensors_header(path: Path, shown: str) -> dict[str, tuple[str, list[int], tuple[int, int]]]:
    """{tensor: (dtype, shape, byte range)} of a safetensors file, after checking its header as the
    format defines it (an 8-byte little-endian header length, a JSON header naming each tensor's
    dtype, shape and byte range): a truncated, oversized or hostile file is refused. Tensor names
    are plain (no control characters reach a terminal)."""
    info = path.stat()
    return _header_of(str(path), info.st_size, info.st_mtime_ns, shown)


def _read_header(path: Path, size: int, shown: str) -> dict:
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ConfigError(f"--model {shown}: {path.name} is not a safetensors file (too short)")
        n = int.from_bytes(head, "little")
        if n > min(MAX_HEADER_BYTES, size - 8):
            raise ConfigError(f"--model {shown}: {path.name} has a header of {n:,} bytes in a {size:,}-byte file: "
                              "not a safetensors file")
        try:
            header = json.loads(fh.read(n).decode("utf-8"))
        except (ValueError, RecursionError):
            raise ConfigError(f"--model {shown}: {path.name}: its header is not JSON") from None
    if not isinstance(header, dict):
        raise ConfigError(f"--model {shown}: {path.name}: its header is not a JSON object")
    return {name: _tensor(name, t, size - 8 - n, path.name, shown) for name, t in header.items()
            if name != "__metadata__"}


def _tensor(name: str, t, data: int, file: str, shown: str):
    if not _NAME.match(name):
        raise ConfigError(f"--model {shown}: {file}: a tensor name that is not plain: {name[:60]!r}")
    try:
        dtype, shape, (begin, end) = t["dtype"], t["shape"], t["data_offsets"]
        count = 1
        for dim in shape:
            if type(dim) is not int or dim < 0:
                raise ValueError
            count *= dim
        ok = dtype in DTYPE_BYTES and type(begin) is int and type(end) is int and 0 <= begin <= end <= data \
            and end - begin == count * DTYPE_BYTES[dtype]
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"--model {shown}: {file}: tensor {name!r} does not fit the file (dtype, shape and byte "
                          "range disagree)")
    return dtype, list(shape), (begin, end)


HOST_MEMORY_SHARE = 0.5  # of the memory available now that inputs built on the host may take


def check_fits_host(what: str, need_bytes: float) -> None:
    """Refuse, before anything is built, inputs that would take more than half the host memory
    available now (the alternative is minutes of swapping, then the OOM killer and no report)."""
    import psutil

    available = psutil.virtual_memory().available
    if need_bytes > HOST_MEMORY_SHARE * available:
        raise ConfigError(f"{what} needs about {need_bytes / 2**30:.1f} GiB of host memory; this host has "
                          f"{available / 2**30:.1f} GiB available, and a run may take half of it")


# ---- config.json against itself ----------------------------------------------------------------------

DIVISIBLE = (("d_model", "encoder_attention_heads"), ("d_model", "decoder_attention_heads"),
             ("hidden_size", "num_attention_heads"))
TOKEN_IDS = ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id", "forced_eos_token_id",
             "unk_token_id", "sep_token_id")


def check_architecture(name: str, cfg: dict) -> None:
    """Sizes that are each fine but do not fit together: widths split over heads, ids inside the
    vocabulary, and the whole model inside the host's memory."""
    where = f"--model {clip(name, 200)}: config.json"
    for width, heads in DIVISIBLE:
        w, h = cfg.get(width), cfg.get(heads)
        if isinstance(w, int) and isinstance(h, int) and h and w % h:
            raise ConfigError(f"{where}: {width} {w} is not divisible by {heads} {h} (each head takes an equal "
                              "share of the width)")
    vocab = cfg.get("vocab_size")
    for key in TOKEN_IDS:
        v = cfg.get(key)
        if isinstance(vocab, int) and type(v) is int and not 0 <= v < vocab:
            raise ConfigError(f"{where}: {key} {v} is not a token of a vocabulary of vocab_size {vocab}")
    params = parameter_estimate(cfg)
    if params:
        check_fits_host(f"{where}: {params:,} parameters (vocab_size x d_model, layers x widths) at 4 bytes each",
                        4 * params)


def parameter_estimate(cfg: dict) -> int:
    """Embedding, attention and feed-forward weights of an encoder-decoder of this config (biases and
    norms aside): what building it would allocate, before it is built."""
    d = cfg.get("d_model") or cfg.get("hidden_size")
    vals = [cfg.get(k) for k in ("vocab_size", "encoder_layers", "decoder_layers", "encoder_ffn_dim", "decoder_ffn_dim")]
    if not isinstance(d, int) or not all(isinstance(v, int) for v in vals):
        return 0
    vocab, enc, dec, enc_ffn, dec_ffn = vals
    positions = cfg.get("max_position_embeddings") if isinstance(cfg.get("max_position_embeddings"), int) else 0
    return vocab * d + 2 * positions * d + enc * (4 * d * d + 2 * d * enc_ffn) + dec * (8 * d * d + 2 * d * dec_ffn)


# ---- the weights against the config ---------------------------------------------------------------------

def check_weights(p: Path, shown: str) -> None:
    """The files and the model config.json describes agree: each tensor has the shape the model gives
    it (the loader would stop with a size mismatch), no parameter is missing (it would start as random
    numbers: a run would measure a model that is not the checkpoint), no tensor belongs to a layer the
    config does not have (the loader would drop it)."""
    expected, required, prefix = _model_shapes(p, shown)
    found = {}
    for w in weight_files(p, shown):
        for name, (_, shape, _) in safetensors_header(w, shown).items():
            key = next((k for k in (name, f"{prefix}.{name}", name.removeprefix(f"{prefix}.")) if k in expected), name)
            found[key] = (w.name, name, shape)
    for key, (file, name, shape) in found.items():
        if key in expected and list(expected[key]) != shape:
            raise ConfigError(f"--model {shown}: {file}: tensor {name!r} is {shape}, but config.json makes it "
                              f"{list(expected[key])}{_fields(p, expected[key])}")
        layer = re.search(r"\.(\d+)\.", key)
        if key not in expected and layer and re.sub(r"\.\d+\.", ".0.", key, count=1) in expected:
            raise ConfigError(f"--model {shown}: {file}: tensor {name!r} belongs to layer {layer.group(1)}, which "
                              f"config.json does not have ({_layer_counts(p)})")
    missing = sorted(required - set(found))
    if missing:
        raise ConfigError(f"--model {shown}: the weight files lack {len(missing)} of the {len(required)} parameters "
                          f"of the model config.json describes (e.g. {missing[0]!r}): they would start as random "
                          "numbers, and the run would measure another model")


def _config(p: Path) -> dict:
    return json.loads((p / "config.json").read_text(encoding="utf-8"))


def _fields(p: Path, dims) -> str:
    """The config fields that give a shape its sizes: ` (encoder_ffn_dim 512, d_model 64)`."""
    cfg, said = _config(p), []
    for dim in dims:
        keys = [k for k, v in cfg.items() if type(v) is int and v == dim and not k.endswith("_id")]
        if keys:
            said.append(f"{'/'.join(keys[:2])} {dim}")
    return f" ({', '.join(said)})" if said else ""


def _layer_counts(p: Path) -> str:
    return ", ".join(f"{k} {v}" for k, v in _config(p).items() if k.endswith("layers") and type(v) is int)


def _model_shapes(p: Path, shown: str) -> tuple[dict, set, str]:
    """({tensor: shape}, the parameters' names, the base model's prefix) of the model config.json
    describes, built on the meta device."""
    try:
        import torch
        from transformers import AutoConfig, AutoModelForSeq2SeqLM

        config = AutoConfig.from_pretrained(p, local_files_only=True, trust_remote_code=False)
        with torch.device("meta"):
            model = AutoModelForSeq2SeqLM.from_config(config, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - transformers' own words on why the config describes no model
        raise ConfigError(f"--model {shown}: config.json describes no model transformers can build "
                          f"({type(exc).__name__}: {clip(str(exc), 200)})") from None
    required = {n for n, _ in model.named_parameters()}  # one name per tensor: tied ones are saved once
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}, required, model.base_model_prefix
