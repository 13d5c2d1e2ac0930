"""The model side of the serving engine for BlenderBot-small: its encoder and decoder, one decode
step at a time over rows that joined at different steps.

This is what blender-generate offers the serving scenario (bench/serve/): an executor of the engine's
`Executor` protocol (bench/serve/protocol.py), met by shape — a workload does not import the scenario.
A request is read by its fields as the protocol's `GenRequest` has them (id, prompt, min_tokens,
sampling: temperature, top_p, seed, greedy).

Own tensors around the model's public modules (the embeddings, layer norms, attention projections
and feed-forward layers of the encoder and the decoder, as transformers names them from 4.40 to
5.x), so that neither a cache class of transformers nor its mask handling is needed: their
internals changed across the versions bench supports. Each request holds one row (a slot) from
joining until it leaves:

- its own decoder position: BlenderBot's decoder takes one position offset for the whole batch
  (the cache length); here each row's token gets the position embedding of its own step count;
- cross-attention keys and values of its encoder output, padded to the widest source of the step
  and masked beyond its own length;
- a self-attention cache written at its own position and masked beyond it, so that rows of
  different ages share one tensor.

A leaving row's slot is freed: nothing reads its cache again, and the next request to join takes
the lowest free slot (overwriting the cache as it goes). A step computes the slots up to the
highest one in use; a free slot below it is computed and ignored.

Static shapes (`backend.static_shapes`, Gaudi): the rows, source width and cache length of each
step are padded up to buckets (powers of two, and the limit itself); the caches are allocated once
at their limits (a cache that grows by one token a step is a new graph every step); joining and
decoding are separate graphs (a synchronize between them); `warmup()` runs every bucket before
serving, and what a step with a sampled row reads (the rows bucket's logits, to the host). Where the
backend captures graphs (--hpu-graphs in lazy mode, as vLLM for Gaudi captures every warmed decode
bucket), each decode bucket is an HPU graph, captured in the warm-up and replayed after it. Elsewhere
the shapes are exact and the caches grow by doubling.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass

from bench.core.errors import BenchError


class Ladder:
    """The sizes one dimension takes: exact, or (static shapes) the next bucket up."""

    def __init__(self, limit: int, floor: int, static: bool):
        self.limit, self.static = limit, static
        rungs, size = [], floor
        while size < limit:
            rungs.append(size)
            size *= 2
        self.rungs = rungs + [limit]

    def fit(self, n: int) -> int:
        if n > self.limit:
            raise ValueError(f"{n} is beyond this dimension's limit {self.limit}")
        return next(r for r in self.rungs if r >= n) if self.static else n


@dataclass(frozen=True)
class _Greedy:
    greedy: bool = True
    seed: int | None = None


@dataclass(frozen=True)
class _Probe:
    """A request as the executor reads one (the fields of bench/serve/protocol.py's GenRequest)."""

    id: str
    prompt: tuple[int, ...]
    max_tokens: int = 1
    min_tokens: int = 0
    ignore_eos: bool = False
    sampling: _Greedy = _Greedy()


@dataclass
class _Row:
    request: object  # a GenRequest
    source: int  # prompt length
    token: int  # its next decoder input: the start token, then its last token
    pos: int = 0  # that input's decoder position: the tokens it has so far
    generator: object = None  # torch.Generator of a sampled request


class BlenderExecutor:
    """Rows of BlenderBot-small generation on one device (see the module's docstring)."""

    def __init__(self, model, backend, *, max_rows: int, max_source: int, max_tokens: int, precision: str = "fp32",
                 text_ids=None):
        import torch

        cfg = model.config
        if cfg.model_type != "blenderbot-small":
            raise BenchError(f"the serving engine runs BlenderBot-small models; this one is {cfg.model_type!r}")
        self.torch, self.model, self.backend, self.precision = torch, model, backend, precision
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.encoder, self.decoder = model.get_encoder(), model.get_decoder()
        self.layers = list(self.decoder.layers)
        self.heads = cfg.decoder_attention_heads
        self.head_dim = cfg.d_model // self.heads
        self.vocab_size, self.eos = cfg.vocab_size, cfg.eos_token_id
        self.start, self.pad = cfg.decoder_start_token_id, cfg.pad_token_id
        self.max_source = min(max_source, cfg.max_position_embeddings)
        self.max_tokens = min(max_tokens, cfg.max_position_embeddings)
        self.static = bool(backend.static_shapes)
        self.rows = Ladder(max_rows, 1, self.static)
        self.width, self.length = Ladder(self.max_source, 32, self.static), Ladder(self.max_tokens, 16, self.static)
        self.slots: list[_Row | None] = [None] * max_rows
        self.where: dict[str, int] = {}
        self.scratch = max_rows  # the slot padding rows of a join write to
        self.last_flops: float | None = None
        self.last_failed: dict[str, str] = {}  # rows the last step gave no token: request id -> why
        self._flop_terms = self._terms()
        self._allocate(self.length.limit if self.static else min(self.length.limit, 32),
                       self.width.limit if self.static else min(self.width.limit, 64))
        self.banned = self._banned(text_ids)
        self.decoder_module = self.decode = _decode_module(self)
        self.decode_calls = 0  # decode steps asked for (warm-up included); minus decoder_module.runs: replays
        self.scale = self._embedding_scale()
        graphs = backend.capture_graphs(self.decode) if self.static else None
        self.graphs = graphs is not None  # each decode bucket an HPU graph: captured once, then replayed
        self.decode = graphs if graphs is not None else self.decode

    # -- the Executor protocol -----------------------------------------------------------------------
    def step(self, joining: list) -> dict[str, int]:
        self.last_flops = self._flops(joining)
        with self._compute():
            if joining:
                self._join(joining)
                if self.static:
                    self.backend.synchronize()  # the join is a graph of its own: warmed apart from the decode
            rows, width, length = self._view()
            tokens, positions, suppress = self._inputs(rows)
            logits = self._logits(rows, width, length, tokens, positions, suppress)
            return self._choose(*self._for_choice(logits, rows), rows)

    def drop(self, ids: list[str]) -> None:
        for rid in ids:
            self.slots[self.where.pop(rid)] = None

    def reset(self) -> None:
        """Free every row, whatever a step that raised left half done (a join's rows, a decode's positions):
        a row is only read again after a join writes its caches."""
        self.slots = [None] * len(self.slots)
        self.where.clear()
        self.last_failed = {}

    def warmup(self) -> int:
        """Every shape serving can meet, once (static shapes only; elsewhere nothing): the joins of
        each rows x width bucket, the decodes of each rows x width x length bucket (each captured as an
        HPU graph where the backend captures them), and what a step with a sampled row reads of each
        rows bucket (its logits, whole, to the host). Returns how many shapes."""
        if not self.static:
            return 0
        shapes = 0
        self.backend.synchronize()  # what came before is a graph of its own
        with self._compute():
            for rows in self.rows.rungs:
                for width in self.width.rungs:
                    self._encode([[self.pad] * width] * rows, [width] * rows, [self.scratch] * rows, width)
                    self.backend.synchronize()
                    shapes += 1
            for rows in self.rows.rungs:
                for width in self.width.rungs:
                    for length in self.length.rungs:
                        logits = self._logits(rows, width, length, [self.pad] * rows, [0] * rows, [False] * rows)
                        self._read_back(logits)
                        if width == self.width.rungs[0] and length == self.length.rungs[0]:
                            self._to_host(logits)  # a sampled row's step: the rows bucket's logits to the host
                        self.backend.synchronize()
                        shapes += 1
        return shapes

    def _flops(self, joining: list) -> float:
        """Matmul FLOPs of a step on its real rows and tokens, not the padding a static-shape device
        adds: each joiner's encoder pass and cross-attention keys and values over its own prompt, and
        every row's decoder step at its own position over its own source, with the LM head — the
        terms of workloads.models' decoder_flops (one new position, past = its position, keys and
        values of the source counted at the join), encoder_flops and lm_head_flops, summed in closed
        form from constants (a step of the tiny model takes a millisecond)."""
        row, per_position, enc, enc_square, cross = self._flop_terms
        rows = [(r.source, r.pos) for r in self.slots if r is not None] + [(len(q.prompt), 0) for q in joining]
        reach = sum(src + pos + 1 for src, pos in rows)
        join = sum(s * (enc + cross) + s * s * enc_square for s in (len(q.prompt) for q in joining))
        return float(len(rows) * row + per_position * reach + join)

    def _terms(self) -> tuple[int, int, int, int, int]:
        """(per row, per attended position, per source token, per source token squared, cross keys and
        values per source token) of the FLOP counts, from the model's config."""
        c = self.model.config
        d, n = c.d_model, c.decoder_layers
        row = n * (12 * d * d + 4 * d * c.decoder_ffn_dim) + 2 * d * c.vocab_size
        enc = c.encoder_layers * (8 * d * d + 4 * d * c.encoder_ffn_dim)
        return row, 4 * n * d, enc, 4 * c.encoder_layers * d, 4 * n * d * d

    # -- joining: the encoder pass and each layer's cross-attention keys and values ------------------
    def _join(self, requests: list) -> None:
        n = len(requests)
        rows = self.rows.fit(n)
        width = self.width.fit(max(len(r.prompt) for r in requests))
        self._reserve(self.cache_length, width)
        free = [i for i, row in enumerate(self.slots) if row is None][:n]
        if len(free) < n:
            raise RuntimeError(f"{n} requests joining, {len(free)} free rows: the engine admitted too many")
        ids = [list(r.prompt) + [self.pad] * (width - len(r.prompt)) for r in requests] + [[self.pad] * width] * (rows - n)
        lengths = [len(r.prompt) for r in requests] + [width] * (rows - n)
        self._encode(ids, lengths, free + [self.scratch] * (rows - n), width)
        for slot, r in zip(free, requests, strict=True):
            self.slots[slot] = _Row(r, len(r.prompt), self.start, generator=_generator(r.sampling))
            self.where[r.id] = slot

    def _encode(self, ids: list[list[int]], lengths: list[int], dest: list[int], width: int) -> None:
        torch = self.torch
        ids_t = torch.tensor(ids, dtype=torch.long, device=self.device)
        mask = torch.arange(width, device=self.device)[None, :] < torch.tensor(lengths, device=self.device)[:, None]
        hidden = self._encoder_states(ids_t, mask)
        at = torch.tensor(dest, dtype=torch.long, device=self.device)
        for layer, k_buf, v_buf in zip(self.layers, self.cross_k, self.cross_v, strict=True):
            attn = layer.encoder_attn
            k_buf[at, :, :width] = self._heads(attn.k_proj(hidden)).to(self.dtype)
            v_buf[at, :, :width] = self._heads(attn.v_proj(hidden)).to(self.dtype)
        row_mask = torch.zeros(len(dest), self.source_mask.shape[1], dtype=torch.bool, device=self.device)
        row_mask[:, :width] = mask
        self.source_mask[at] = row_mask

    def _encoder_states(self, ids, mask):
        """The encoder over padded sources, with its own modules (transformers' encoder forward skips
        the mask when no row is padded: another graph for the same shapes, and a version-dependent one)."""
        enc, width = self.encoder, ids.shape[1]
        positions = self.torch.nn.functional.embedding(self.torch.arange(width, device=self.device),
                                                       enc.embed_positions.weight)
        x = enc.layernorm_embedding(enc.embed_tokens(ids) * enc.embed_scale + positions)
        keys = mask[:, None, None, :]
        for layer in enc.layers:
            sa = layer.self_attn
            x = layer.self_attn_layer_norm(x + sa.out_proj(self._attend(sa, x, self._heads(sa.k_proj(x)),
                                                                        self._heads(sa.v_proj(x)), keys)))
            x = layer.final_layer_norm(x + layer.fc2(layer.activation_fn(layer.fc1(x))))
        return x

    # -- one decode step ---------------------------------------------------------------------------------
    def _view(self) -> tuple[int, int, int]:
        used = [(i, row) for i, row in enumerate(self.slots) if row is not None]
        rows = self.rows.fit(used[-1][0] + 1)
        width = self.width.fit(max(row.source for _, row in used))
        length = self.length.fit(max(row.pos for _, row in used) + 1)
        self._reserve(length, self.source_width)
        return rows, width, length

    def _inputs(self, rows: int) -> tuple[list[int], list[int], list[bool]]:
        slots = self.slots[:rows]
        tokens = [row.token if row else self.pad for row in slots]
        positions = [row.pos if row else 0 for row in slots]
        suppress = [bool(row) and self._no_eos(row) for row in slots]
        return tokens, positions, suppress

    def _logits(self, rows: int, width: int, length: int, tokens, positions, suppress):
        """The next-token logits of rows [0, rows): the step's inputs as tensors, then the decode (an HPU
        graph per bucket where the backend captures them: it replays the step on the inputs' new values
        without running the Python forward, so every input must be one of its tensor arguments)."""
        torch, dev = self.torch, self.device
        tok = torch.tensor(tokens, dtype=torch.long, device=dev)
        pos = torch.tensor(positions, dtype=torch.long, device=dev)
        no_eos = torch.tensor(suppress, dtype=torch.bool, device=dev)
        self.decode_calls += 1
        return self.decode(tok, pos, no_eos, rows, width, length)

    def _decode(self, tok, pos, no_eos, rows: int, width: int, length: int):
        """Self-attention over each row's own cache up to its position (its new key and value written
        there first: the caches are allocated once, so a replayed graph writes where this one did),
        cross-attention over its own source; the end of sequence masked where `no_eos`."""
        torch, dev = self.torch, self.device
        dec = self.decoder
        x = dec.layernorm_embedding(dec.embed_tokens(tok) * self.scale)
        x = (x + torch.nn.functional.embedding(pos, dec.embed_positions.weight))[:, None, :]
        own = (torch.arange(length, device=dev)[None, :] <= pos[:, None])[:, None, None, :]
        source = self.source_mask[:rows, None, None, :width]
        at = torch.arange(rows, device=dev)
        for i, layer in enumerate(self.layers):
            sa = layer.self_attn
            self.keys[i][at, :, pos] = self._heads(sa.k_proj(x))[:, :, 0].to(self.dtype)
            self.values[i][at, :, pos] = self._heads(sa.v_proj(x))[:, :, 0].to(self.dtype)
            a = self._attend(sa, x, self.keys[i][:rows, :, :length], self.values[i][:rows, :, :length], own)
            x = layer.self_attn_layer_norm(x + sa.out_proj(a))
            ca = layer.encoder_attn
            a = self._attend(ca, x, self.cross_k[i][:rows, :, :width], self.cross_v[i][:rows, :, :width], source)
            x = layer.encoder_attn_layer_norm(x + ca.out_proj(a))
            x = layer.final_layer_norm(x + layer.fc2(layer.activation_fn(layer.fc1(x))))
        logits = (self.model.lm_head(x[:, 0]) + self.model.final_logits_bias).float()
        return self._mask(logits, no_eos)

    # -- which tokens a reply may be made of --------------------------------------------------------------
    def _banned(self, text_ids):
        """The ids no reply is drawn from (None: every id may be): all but `text_ids` and end of sequence. The
        random-init presets' shipped tokenizer has text for 466 of the model's ids; drawn from the others, a
        reply is placeholders, or (greedy: the start token, again and again) no text at all."""
        if text_ids is None:
            return None
        banned = self.torch.ones(self.vocab_size, dtype=self.torch.bool)
        banned[[i for i in text_ids if 0 <= i < self.vocab_size]] = False
        banned[self.eos] = False
        if bool(banned.all()):
            raise BenchError("the reply vocabulary holds no id of this model: no reply could be made")
        return banned.to(self.device)

    def _no_eos(self, row) -> bool:
        """End of sequence is masked before min_tokens; where replies are drawn from a text vocabulary, also as
        the first token (an empty reply) and where the request goes on past it (ignore_eos: a token without text)."""
        r = row.request
        if self.banned is None:
            return row.pos < r.min_tokens
        return row.pos < max(1, r.min_tokens) or bool(getattr(r, "ignore_eos", False))

    def _mask(self, logits, no_eos):
        if self.banned is not None:
            logits = logits.masked_fill(self.banned, float("-inf"))
        logits[:, self.eos] = logits[:, self.eos].masked_fill(no_eos, float("-inf"))
        return logits

    def _attend(self, attn, x, keys, values, mask):
        q = self._heads(attn.q_proj(x))
        scores = (q @ keys.transpose(-1, -2).to(q.dtype)) * attn.scaling
        scores = scores.masked_fill(~mask, self.torch.finfo(scores.dtype).min)
        out = self.torch.softmax(scores, dim=-1) @ values.to(q.dtype)
        return out.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)

    def _heads(self, t):
        """[rows, seq, d_model] -> [rows, heads, seq, head_dim]"""
        return t.view(t.shape[0], t.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def _choose(self, logits, read: tuple[list[int], list[bool]], rows: int) -> dict[str, int]:
        """Each row's next token: its argmax, or a draw (sample); a row whose logits are not finite (NaN,
        +inf, or all -inf) or whose draw raised gets none, and is named in `last_failed`."""
        greedy, broken = read
        out, self.last_failed = {}, {}
        for i, row in enumerate(self.slots[:rows]):
            if row is None:
                continue
            rid, s = row.request.id, row.request.sampling
            if broken[i]:
                self.last_failed[rid] = "the model's logits for this request are not finite (NaN or infinity)"
                continue
            try:
                token = greedy[i] if s.greedy else sample(logits[i], s, row.generator)
            except Exception as exc:  # noqa: BLE001 - this row fails alone; the others have their tokens
                self.last_failed[rid] = f"sampling failed ({type(exc).__name__}: {exc})"[:300]
                continue
            row.token, row.pos = token, row.pos + 1
            out[rid] = token
        return out

    def _for_choice(self, logits, rows: int):
        """(the logits the choice reads, each row's argmax and whether it is finite, read back once): on the
        device where every row is greedy, else the rows bucket's logits copied to the host whole, in one
        transfer warmed per rows bucket:
        sampling draws on the host, and a row read from the device on its own is a graph per row index on a
        lazy device (Gaudi), none of them warmed. A lazy device cuts its graph at a host read (bridge 1.19
        lazy_kernels.cpp), so the copy follows the greedy read-back: the graph before it is the warmed one."""
        read = self._read_back(logits)  # the step's graph ends as a greedy step's does (warmed)
        if all(row is None or row.request.sampling.greedy for row in self.slots[:rows]):
            return logits, read
        return self._to_host(logits), read  # the copy is the transfer alone; the choice reads the read-back above

    def _to_host(self, logits):
        return logits.to("cpu")

    def _read_back(self, logits) -> tuple[list[int], list[bool]]:
        """(argmax, not finite) of each row, in one read to the host (warmed as served): one reduction, as a
        row's max is NaN where it holds a NaN, +inf where it holds +inf and -inf where it is all -inf."""
        torch = self.torch
        top, at = logits.max(-1)
        both = torch.stack([at, (~torch.isfinite(top)).long()]).tolist()
        return both[0], [bool(b) for b in both[1]]

    # -- buffers -------------------------------------------------------------------------------------------
    @property
    def cache_length(self) -> int:
        return self.keys[0].shape[2]

    @property
    def source_width(self) -> int:
        return self.cross_k[0].shape[2]

    def _allocate(self, length: int, width: int) -> None:
        torch = self.torch
        rows = len(self.slots) + 1  # and the scratch slot

        def zeros(n):
            return [torch.zeros(rows, self.heads, n, self.head_dim, dtype=self.dtype, device=self.device)
                    for _ in self.layers]

        self.keys, self.values, self.cross_k, self.cross_v = zeros(length), zeros(length), zeros(width), zeros(width)
        self.source_mask = torch.zeros(rows, width, dtype=torch.bool, device=self.device)

    def _reserve(self, length: int, width: int) -> None:
        """Grow the caches (by doubling, up to the limits) to hold this length and width."""
        old_len, old_width = self.cache_length, self.source_width
        if length <= old_len and width <= old_width:
            return
        new_len, new_width = old_len, old_width
        while new_len < length:
            new_len = min(2 * new_len, self.length.limit)
        while new_width < width:
            new_width = min(2 * new_width, self.width.limit)
        old = (self.keys, self.values, self.cross_k, self.cross_v, self.source_mask)
        self._allocate(new_len, new_width)
        for new, was in zip((self.keys, self.values, self.cross_k, self.cross_v), old[:4], strict=True):
            for n, w in zip(new, was, strict=True):
                n[:, :, : w.shape[2]] = w
        self.source_mask[:, :old_width] = old[4]

    @contextlib.contextmanager
    def _compute(self):
        with self.torch.inference_mode(), self.backend.autocast(self.precision):
            yield

    # -- the decoder's embedding scale ------------------------------------------------------------------
    def _embedding_scale(self) -> float:
        """The scale of the decoder's token embeddings, read off the model's own forward: transformers
        4.x multiplies them by sqrt(d_model) where the config sets scale_embedding, 5.x (5.24 checked)
        does not, so the same weights give other tokens. The first decode step of a probe request is
        computed both ways and compared with the model's forward; the scale that reproduces it is kept,
        and an engine that reproduces neither refuses to serve. Compared: the logits of every id a reply
        may be drawn from (all of them, or the text vocabulary's); the masked ones must be -inf, nothing else."""
        torch = self.torch
        prompt = tuple(4 + i % max(1, self.vocab_size - 4) for i in range(min(8, self.max_source)))
        ids = torch.tensor([prompt], device=self.device)
        with torch.inference_mode():
            ref = self.model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False,
                             decoder_input_ids=torch.tensor([[self.start]], device=self.device)).logits[0, -1].float()
        errors = {}
        for scale in dict.fromkeys((float(getattr(self.decoder, "embed_scale", 1.0)), 1.0)):
            self.scale = scale
            with torch.inference_mode():
                self._join([_Probe("probe", prompt)])
                logits = self._logits(*self._view(), *self._inputs(1))[0]
            self.drop(["probe"])
            kept = self._drawn_from(logits)
            errors[scale] = float((logits[kept] - ref[kept]).abs().max())
        best = min(errors, key=errors.get)
        if errors[best] > 1e-3 * max(1.0, float(ref.abs().max())):
            raise BenchError(f"the serving engine does not reproduce this model's forward (logits differ by "
                             f"{errors[best]:.3g}); it would generate other tokens than the model, so it refuses")
        return best

    def _drawn_from(self, logits):
        """The ids of a first decode step's logits that a reply may be drawn from (end of sequence is masked
        there); BenchError where the mask let through another or masked one of them."""
        torch = self.torch
        kept = torch.ones_like(logits, dtype=torch.bool) if self.banned is None else ~self.banned
        kept[self.eos] = not self._no_eos(_Row(_Probe("probe", (self.pad,)), 1, self.start))  # the probe's first token
        if not torch.equal(torch.isfinite(logits), kept):
            raise BenchError("the serving engine's token mask does not match the reply vocabulary; it refuses to serve")
        return kept


def _decode_module(executor):
    """The executor's decode step as a module: what an HPU graph wraps (bridge 1.19 hpu/graphs.py
    wrap_in_hpu_graph caches a graph per input shapes and hash() of the other arguments — here the bucket's
    rows, width and length — and on a hit replays it without running the Python forward). It counts the
    times its Python forward runs: a replay does not."""
    import torch

    class Decode(torch.nn.Module):
        runs = 0

        def forward(self, tok, pos, no_eos, rows: int, width: int, length: int):
            self.runs += 1
            return executor._decode(tok, pos, no_eos, rows, width, length)

    return Decode()


def _generator(sampling):
    if sampling.greedy:
        return None
    import torch

    seed = sampling.seed if sampling.seed is not None else random.SystemRandom().randrange(2**63)
    return torch.Generator().manual_seed(seed)


def sample(logits_row, sampling, generator) -> int:
    """One token from a row of logits: temperature, then top-p (the smallest set of most likely
    tokens whose probability reaches top_p), drawn with the request's own generator (on the host).

    In float64, the largest logit subtracted before dividing by the temperature: every scaled logit is
    then <= 0, so none overflows whatever the temperature (the protocol makes one below 1e-5 greedy), and
    the distribution is finite wherever the row has a finite largest logit (ValueError otherwise)."""
    import torch

    x = logits_row.detach().to("cpu", torch.float64)
    top = x.max()
    if not torch.isfinite(top):
        raise ValueError(f"the largest logit is {float(top)}: no distribution to draw from")
    probs = torch.softmax((x - top) / sampling.temperature, dim=-1)
    if sampling.top_p < 1.0:
        p, order = probs.sort(descending=True)
        keep = (p.cumsum(0) - p) < sampling.top_p  # the first token is always kept
        probs = torch.zeros_like(probs).scatter(0, order[keep], p[keep])
    return int(torch.multinomial(probs, 1, generator=generator))
