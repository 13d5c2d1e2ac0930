"""Prompts a server understands: text from a file, synthetic text counted with a tokenizer, and the
lengths of synthetic prompts.

    --data-file FILE      JSON Lines, one prompt a line: an object with `prompt` (vLLM's custom dataset)
                          or `text` (aiperf's single-turn files), a string; taken in the file's order,
                          again from its first line when a session asks for more. Counted (and cut to
                          their last --context-len tokens) with the tokenizer below.
    --data-tokenizer DIR  a tokenizer in a local directory (transformers' AutoTokenizer, no download, no
                          remote code): the model's at a server bench does not have (--endpoint). With
                          --data synthetic, prompts are text made of its words, each of the length
                          --input-len draws in its tokens (a text decoded from random ids is encoded
                          again and cut until it counts right, as vLLM's random dataset does).
    --input-len SPEC      synthetic prompts' lengths, each within 1 and --context-len: `uniform` (from a
                          quarter of --context-len to --context-len, the default), `fixed:N`, or
                          `normal:MEAN:SD` (aiperf's --isl and --isl-stddev), drawn once per seed.

A prompt that came as text goes to a server as text (completions' `prompt` string, chat's message);
a prompt of token ids (--data shipped or synthetic without a tokenizer) goes as ids.
"""

from __future__ import annotations

import json
import math
import random

from bench.core.errors import ConfigError
from bench.core.text import clip, read_small, utf8_text

MAX_FILE_BYTES = 64 << 20
MAX_PROMPT_CHARS = 1 << 20
TEXT_KEYS = ("prompt", "text")
INPUT_LENS = ("uniform", "fixed:N", "normal:MEAN:SD")
ROUNDS = 8  # re-encodings of a synthetic text before its count is taken as it is


def read_prompt_file(path: str, flag: str = "--data-file") -> list[str]:
    """The prompts of a JSON Lines file (`prompt`, else `text`, of each line's object); ConfigError naming the
    line (never quoting it) otherwise."""
    where = f"{flag} {clip(str(path), 200)}"
    data = read_small(path, flag, MAX_FILE_BYTES)
    text = utf8_text(data, where)
    prompts = [_prompt(line, f"{where}:{n}") for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not prompts:
        raise ConfigError(f"{where}: no prompts in it (JSON Lines: one {{\"prompt\": TEXT}} a line)")
    return prompts


def _prompt(line: str, where: str) -> str:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        raise ConfigError(f"{where}: not a JSON object (JSON Lines: one {{\"prompt\": TEXT}} a line)") from None
    value = next((obj[k] for k in TEXT_KEYS if isinstance(obj, dict) and k in obj), None)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected an object with a non-empty string `prompt` (or `text`)")
    if len(value) > MAX_PROMPT_CHARS:
        raise ConfigError(f"{where}: a prompt of more than {MAX_PROMPT_CHARS:,} characters")
    try:  # JSON's \ud800 escapes decode to a lone surrogate, which no tokenizer and no UTF-8 request can carry
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(f"{where}: not text a server can be sent (a lone surrogate, "
                          f"{value[exc.start]!r}, at character {exc.start + 1})") from None
    return value


def load_tokenizer(path: str, flag: str = "--data-tokenizer"):
    """A tokenizer from a local directory (no download, no remote code); ConfigError otherwise."""
    from pathlib import Path

    from workloads.models import quiet_transformers

    where = f"{flag} {clip(str(path), 200)}"
    if not Path(path).is_dir():
        raise ConfigError(f"{where}: not a directory (a tokenizer's: tokenizer.json, tokenizer_config.json, ...)")
    from transformers import AutoTokenizer

    quiet_transformers()
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - any loader fault: no tokenizer there, said with its kind
        raise ConfigError(f"{where}: no tokenizer could be loaded from it ({type(exc).__name__})") from None


def tokenizer_hash(tokenizer) -> str:
    """What identifies a tokenizer's counting: its vocabulary, hashed."""
    import hashlib

    vocab = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False)
    return hashlib.sha256(vocab.encode()).hexdigest()[:12]


def parse_input_len(text: str, flag: str = "--input-len") -> tuple[str, float, float]:
    """(kind, mean or N, standard deviation) of --input-len; ConfigError otherwise."""
    kind, _, rest = text.strip().partition(":")
    parts = rest.split(":") if rest else []
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = [math.nan]
    ok = all(math.isfinite(v) and 0 <= v <= 1 << 20 for v in values)
    if kind == "uniform" and not parts:
        return kind, 0.0, 0.0
    if kind == "fixed" and len(values) == 1 and ok and values[0] >= 1 and values[0].is_integer():
        return kind, values[0], 0.0
    if kind == "normal" and len(values) == 2 and ok and values[0] >= 1:
        return kind, values[0], values[1]
    raise ConfigError(f"{flag}: expected one of {', '.join(INPUT_LENS)} (N and MEAN at least 1), got {text[:60]!r}")


def input_lengths(spec: str, n: int, context_len: int, seed: int) -> list[int]:
    """n prompt lengths as --input-len draws them (seeded), each within [1, context_len]."""
    kind, mean, sd = parse_input_len(spec)
    rng = random.Random(f"bench-input-len-{seed}-{spec}")
    if kind == "fixed":
        draws = [round(mean)] * n
    elif kind == "normal":
        draws = [round(rng.gauss(mean, sd)) for _ in range(n)]
    else:
        draws = [rng.randint(max(1, context_len // 4), context_len) for _ in range(n)]
    return [max(1, min(context_len, k)) for k in draws]


def counted(texts: list[str], n: int, encode, decode, context_len: int) -> tuple[list[list[int]], list[str], list[int]]:
    """(ids, texts, the lengths of those cut) of n prompts of the file's texts (from its first again when it
    has fewer): their ids by `encode`; a prompt longer than context_len is cut to its last context_len ids,
    and its text is then theirs (`decode`). Each line is encoded once, however often it is sent."""
    done = []  # (ids, text, its length before a cut or None), one per line of the file
    for text in texts[:n]:
        tokens = list(encode(text))
        if len(tokens) > context_len:
            done.append((tokens[-context_len:], decode(tokens[-context_len:]), len(tokens)))
        else:
            done.append((tokens, text, None))
    picked = [done[i % len(done)] for i in range(n)]
    return ([list(t) for t, _, _ in picked], [text for _, text, _ in picked],
            [k for _, _, k in picked if k is not None])


def synthetic_texts(tokenizer, lengths: list[int], seed: int) -> tuple[list[list[int]], list[str]]:
    """One text per length, of that many of the tokenizer's tokens (counted by encoding it again), made of
    random ids of its vocabulary that are not special tokens."""
    rng = random.Random(f"bench-synthetic-text-{seed}")
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    pool = [i for i in sorted(set(tokenizer.get_vocab().values())) if i not in special]
    if not pool:
        raise ConfigError("--data-tokenizer: its vocabulary has no ids besides its special tokens")
    ids, texts = [], []
    for k in lengths:
        tokens, text = _text_of(tokenizer, [rng.choice(pool) for _ in range(k)], k, rng, pool)
        ids.append(tokens)
        texts.append(text)
    return ids, texts


def _text_of(tokenizer, draw: list[int], k: int, rng, pool) -> tuple[list[int], str]:
    """A text whose encoding is k tokens (or as near as ROUNDS re-encodings come), with its ids."""
    tokens = draw
    for _ in range(ROUNDS):
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        again = list(tokenizer.encode(text, add_special_tokens=False))
        if len(again) == k or not again:
            return again or tokens, text
        tokens = again[:k] if len(again) > k else again + [rng.choice(pool) for _ in range(k - len(again))]
    return again, text
