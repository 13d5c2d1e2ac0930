"""Inputs: the shipped dialogue sample (with a word-level tokenizer trained from it) and seeded
synthetic token batches with the seed's length profile. Built before timing, never inside a step."""

from __future__ import annotations

import functools
import json
import random
from importlib import resources

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ["[PAD]", "[BOS]", "[EOS]", "[UNK]"]
IGNORE = -100  # label positions the loss skips
N_BATCHES = 8  # distinct batches cycled through the steps


@functools.lru_cache(maxsize=1)
def load_dialogues() -> tuple[dict, ...]:
    text = resources.files("workloads").joinpath("data/dialogues.jsonl").read_text(encoding="utf-8")
    return tuple(json.loads(line) for line in text.splitlines() if line.strip())


@functools.lru_cache(maxsize=4)
def shipped_tokenizer(vocab_size: int = 1000):
    """A word-level tokenizer trained on the shipped sample; ids 0-3 are PAD, BOS, EOS, UNK."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, min_frequency=1)
    corpus = [d["context"] for d in load_dialogues()] + [d["reply"] for d in load_dialogues()]
    tok.train_from_iterator(corpus, trainer=trainer)
    return tok


def _fit(ids: list[int], length: int, keep_end: bool, pad: int) -> list[int]:
    ids = ids[-length:] if keep_end else ids[:length]
    return ids + [pad] * (length - len(ids))


def encode_pairs(pairs, tokenizer, context_len: int, label_len: int):
    """Fixed-shape (context, labels) id lists. Contexts keep their end (the latest turn), as ParlAI
    truncates; labels end with EOS and are padded with IGNORE."""
    contexts, labels = [], []
    for context, reply in pairs:
        c = tokenizer.encode(context).ids
        r = tokenizer.encode(reply).ids[:label_len - 1] + [EOS]
        contexts.append(_fit(c, context_len, keep_end=True, pad=PAD))
        labels.append(_fit(r, label_len, keep_end=False, pad=IGNORE))
    return contexts, labels


def shipped_batches(batch: int, context_len: int, label_len: int, seed: int, n: int = N_BATCHES,
                    vocab_size: int = 1000):
    """n batches of the shipped sample, seeded shuffle, as lists (tensors are made by the caller)."""
    dialogues = list(load_dialogues())
    random.Random(seed).shuffle(dialogues)
    tok = shipped_tokenizer(vocab_size)
    out = []
    for b in range(n):
        chunk = [dialogues[(b * batch + i) % len(dialogues)] for i in range(batch)]
        ctx, lbl = encode_pairs([(d["context"], d["reply"]) for d in chunk], tok, context_len, label_len)
        out.append((ctx, lbl))
    return out


def synthetic_batches(batch: int, context_len: int, label_len: int, vocab_size: int, seed: int,
                      n: int = N_BATCHES):
    """n batches of uniform random ids (no specials) with exactly the given lengths."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ctx = [[rng.randrange(4, vocab_size) for _ in range(context_len)] for _ in range(batch)]
        lbl = [[rng.randrange(4, vocab_size) for _ in range(label_len - 1)] + [EOS] for _ in range(batch)]
        out.append((ctx, lbl))
    return out


def make_batches(source: str, batch: int, context_len: int, label_len: int, vocab_size: int, seed: int,
                 n: int = N_BATCHES):
    if source == "shipped":
        return shipped_batches(batch, context_len, label_len, seed, n=n, vocab_size=min(vocab_size, 1000))
    return synthetic_batches(batch, context_len, label_len, vocab_size, seed, n=n)


def request_prompts(source: str, n: int, context_len: int, vocab_size: int, seed: int,
                    lengths: list[int] | None = None) -> list[list[int]]:
    """n serving prompts (id lists, unpadded). shipped: the sample's contexts in a seeded order, each
    its own length (truncated to its last context_len tokens); synthetic: random ids, lengths drawn
    uniformly between a quarter of context_len and context_len. `lengths` (an arrivals file) fixes
    each prompt's length instead, capped at context_len."""
    rng = random.Random(f"prompts-{seed}")
    if lengths is None and source == "shipped":
        dialogues = list(load_dialogues())
        rng.shuffle(dialogues)
        tok = shipped_tokenizer(min(vocab_size, 1000))
        prompts = []
        for i in range(n):
            ids = tok.encode(dialogues[i % len(dialogues)]["context"]).ids[-context_len:]
            prompts.append(ids or [UNK])
        return prompts
    if lengths is None:
        lengths = [rng.randint(max(1, context_len // 4), context_len) for _ in range(n)]
    return [[rng.randrange(4, vocab_size) for _ in range(min(k, context_len))] for k in lengths]
