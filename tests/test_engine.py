"""The serving engine over a real (tiny, fp32) BlenderBot: every request's greedy tokens are the
model's own — served alone, in a static batch, or joining a running batch at any step — and the
things a toy engine gets wrong (one position offset for the batch) are caught. The model is
fakes.lively_tiny(): the tiny preset's own random init repeats one token whatever it is given."""

from __future__ import annotations

import random

import pytest

from workloads.blender_executor import BlenderExecutor, Ladder
from bench.serve.engine import Engine
from bench.serve.protocol import GenRequest, Sampling
from conftest import cpu_backend

TIE = 1e-4  # a top-1 / top-2 logit gap below this is a near tie: rounding may pick either, so the
NEW = 12  # continuation after it is not compared


@pytest.fixture(scope="module")
def tiny():
    from fakes import lively_tiny

    return lively_tiny()


@pytest.fixture(scope="module")
def executor(tiny):
    return BlenderExecutor(tiny, cpu_backend(threads=1), max_rows=4, max_source=32, max_tokens=24)


@pytest.fixture(scope="module")
def prompts():
    rng = random.Random(1)
    return [tuple(rng.randrange(4, 1000) for _ in range(rng.randint(2, 32))) for _ in range(6)]


@pytest.fixture(scope="module")
def reference(tiny, prompts):
    """transformers' own greedy generate() for each prompt alone: tokens and each step's margin."""
    import torch

    out = []
    for p in prompts:
        ids = torch.tensor([p])
        with torch.inference_mode():
            g = tiny.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW,
                              min_new_tokens=NEW, do_sample=False, num_beams=1, forced_eos_token_id=None,
                              output_scores=True, return_dict_in_generate=True)
        margins = [float(s[0].topk(2).values[0] - s[0].topk(2).values[1]) for s in g.scores]
        out.append((g.sequences[0, 1:].tolist(), margins))
    return out


def drive(executor, schedule, batching="continuous", max_batch=4):
    """Serve (join_step, request) pairs, each submitted before that engine step; tokens by request."""
    import time

    engine = Engine(executor, time.monotonic, batching=batching, max_batch=max_batch,
                    sync=executor.backend.synchronize)
    pending = sorted(schedule, key=lambda x: x[0])
    tokens = {r.id: [] for _, r in schedule}
    step = 0
    while pending or engine.running or engine.waiting:
        while pending and pending[0][0] <= step:
            engine.submit(pending.pop(0)[1])
        record = engine.step()
        for e in record.events if record else []:
            if e.kind == "token":
                tokens[e.request].append(e.token)
        step += 1
    return tokens


def agreement(got: list[int], ref: tuple[list[int], list[float]]) -> tuple[int, int]:
    """(tokens compared, tokens that differ): up to and including the first near tie."""
    tokens, margins = ref
    compared = differ = 0
    for g, t, m in zip(got, tokens, margins, strict=False):
        compared += 1
        differ += g != t
        if m < TIE:
            break
    return compared, differ + abs(len(got) - len(tokens))


def forced(i, prompt, n=NEW, **kw):
    return GenRequest(str(i), prompt, max_tokens=n, min_tokens=n, **kw)


def check(results: dict, reference, ids) -> int:
    compared = 0
    for i in ids:
        c, d = agreement(results[str(i)], reference[i])
        assert d == 0, f"request {i}: {results[str(i)]} != {reference[i][0]}"
        compared += c
    return compared


def test_the_engine_reproduces_the_models_own_greedy_generation(executor, prompts, reference):
    assert len({t for tokens, _ in reference for t in tokens}) > 20  # tokens that depend on prompt and position
    assert executor.scale in (1.0, executor.decoder.embed_scale)
    alone = {}
    for i, p in enumerate(prompts):
        alone.update(drive(executor, [(0, forced(i, p))]))
    assert check(alone, reference, range(len(prompts))) >= 0.75 * NEW * len(prompts)  # near ties are few
    static = drive(executor, [(0, forced(i, p)) for i, p in enumerate(prompts)], batching="static")
    check(static, reference, range(len(prompts)))


@pytest.mark.parametrize("join", range(NEW))
def test_a_request_joining_a_running_batch_at_any_step_gets_the_tokens_it_gets_alone(executor, prompts, reference,
                                                                                      join):
    # three rows of other ages (one leaves early, one late), the probe joins at step `join`
    schedule = [(0, forced(0, prompts[0], 5)), (0, forced(1, prompts[1], 20)), (max(0, join - 2), forced(2, prompts[2])),
                (join, forced(5, prompts[5]))]
    got = drive(executor, schedule)
    check(got, reference, [2, 5])
    c, d = agreement(got["0"], (reference[0][0][:5], reference[0][1][:5]))
    assert d == 0


def test_an_engine_that_shares_one_position_offset_fails_that_test(executor, prompts, reference, monkeypatch):
    real = BlenderExecutor._inputs

    def shared_offset(self, rows):  # the toy: every row at the batch's one offset
        tokens, positions, suppress = real(self, rows)
        return tokens, [max(positions)] * rows, suppress

    monkeypatch.setattr(BlenderExecutor, "_inputs", shared_offset)
    got = drive(executor, [(0, forced(1, prompts[1], 20)), (4, forced(5, prompts[5]))])
    assert agreement(got["5"], reference[5])[1] > 0


def test_rows_padded_to_buckets_on_a_static_shape_device_get_the_same_tokens(tiny, prompts, reference):
    backend = cpu_backend(threads=1)
    backend.static_shapes = True
    ex = BlenderExecutor(tiny, backend, max_rows=4, max_source=32, max_tokens=24)
    assert ex.warmup() == len(ex.rows.rungs) * len(ex.width.rungs) * (1 + len(ex.length.rungs))
    got = drive(ex, [(0, forced(0, prompts[0])), (3, forced(3, prompts[3])), (3, forced(4, prompts[4]))])
    check(got, reference, [0, 3, 4])


def test_the_longest_requests_grow_the_caches_without_changing_a_token(tiny, prompts, reference):
    ex = BlenderExecutor(tiny, cpu_backend(threads=1), max_rows=2, max_source=32, max_tokens=512)
    start = ex.cache_length
    long = drive(ex, [(0, forced(0, prompts[0], 70)), (2, forced(1, prompts[1]))])
    assert ex.cache_length > start and len(long["0"]) == 70
    check({"1": long["1"]}, reference, [1])


def test_seeded_sampling_repeats_and_top_p_keeps_the_most_likely_tokens(executor, prompts, reference):
    def sampled(seed, top_p=0.9):
        r = GenRequest("s", prompts[2], NEW, NEW, sampling=Sampling(temperature=0.8, top_p=top_p, seed=seed))
        return drive(executor, [(0, r)])["s"]

    assert sampled(7) == sampled(7) and sampled(7) != sampled(8)
    assert sampled(7) != reference[2][0]  # it does sample
    check({"2": sampled(3, top_p=1e-9)}, reference, [2])  # only the top token left: greedy


def test_min_tokens_and_ignore_eos_give_exact_lengths(executor, prompts):
    got = drive(executor, [(0, GenRequest("free", prompts[0], 24)), (0, GenRequest("min", prompts[0], 24, 24)),
                           (0, GenRequest("ign", prompts[0], 24, ignore_eos=True))])
    assert len(got["min"]) == len(got["ign"]) == 24 and 2 not in got["min"]
    assert got["free"] == got["ign"][: len(got["free"])]


@pytest.mark.parametrize("batching", ["continuous", "static"])
def test_a_short_request_arriving_while_a_long_one_decodes_finishes_first_only_when_it_can_join(executor, prompts,
                                                                                              batching):
    import time

    engine = Engine(executor, time.monotonic, batching=batching, max_batch=4)
    engine.submit(forced("long", prompts[0], 24))
    order, step = [], 0
    while engine.running or engine.waiting or step < 4:
        if step == 3:  # while the long one decodes
            engine.submit(forced("short", prompts[1], 3))
        record = engine.step()
        order += [e.request for e in (record.events if record else []) if e.kind == "finish"]
        step += 1
    assert order == (["short", "long"] if batching == "continuous" else ["long", "short"])


@pytest.mark.parametrize("static", [True, False])
def test_a_static_shape_device_sees_new_shapes_only_while_warming_up(tiny, prompts, static):
    from fakes import shape_counting_backend

    backend = shape_counting_backend(static_shapes=static)
    rng = random.Random(5)
    schedule = [(rng.randrange(30), forced(f"r{i}", tuple(rng.randrange(4, 1000) for _ in range(rng.randint(1, 32))),
                                           rng.randint(1, 16))) for i in range(24)]
    with backend.queue:
        ex = BlenderExecutor(tiny, backend, max_rows=4, max_source=32, max_tokens=16)
        ex.warmup()
        drive(ex, [(0, forced(f"w{i}", p, 16)) for i, p in enumerate(prompts[:4])])
        warmed = len(backend.graphs)
        drive(ex, schedule)  # joins and leaves at every step, prompts of 1 to 32 tokens, 1 to 16 new
    if static:
        assert len(backend.graphs) == warmed and warmed == backend.compile_stats()["graphs"]
    else:  # the same session in exact shapes: new graphs as it goes (what the buckets are for)
        assert len(backend.graphs) - warmed > 10


@pytest.mark.parametrize("static", [True, False])
def test_a_serving_run_records_its_compiles_and_warns_when_it_compiled_while_measuring(static):
    from bench.serve.scenario import ServingMeasurement
    from conftest import common, measure
    from fakes import shape_counting_backend
    from bench.serve.options import ServeOptions
    from bench.serve.workload import BlenderServe

    backend = shape_counting_backend(static_shapes=static)
    wl = BlenderServe(common("tiny"), ServeOptions.build({"qps": "40", "requests": 12}, "tiny"), backend)
    with backend.queue:
        out = ServingMeasurement(wl, backend, measure("tiny", warmup=1, steps=2)).run()
    assert out.result.status == "ok", out.result.error
    graphs = {c.phase: c.graphs for c in out.result.timing.repeats[0].compiles}
    warned = [w.code for w in out.result.warnings if w.code == "compiled_while_measuring"]
    assert graphs["warmup"] > 0 and (graphs["measure"] == 0) == static and bool(warned) == (not static)


def test_bucket_ladders_pad_up_on_static_devices_only():
    static, exact = Ladder(163, 32, True), Ladder(163, 32, False)
    assert static.rungs == [32, 64, 128, 163] and [static.fit(n) for n in (1, 32, 33, 129, 163)] == [32, 32, 64, 163, 163]
    assert [exact.fit(n) for n in (1, 33, 163)] == [1, 33, 163]
    with pytest.raises(ValueError):
        static.fit(164)
