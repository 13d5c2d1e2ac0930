"""Gaudi serves as Gaudi's serving stacks serve: each warmed decode bucket an HPU graph, replayed after the warm-up
(vllm-gaudi docs/features/warmup.md), sampled requests warmed as greedy ones are, and nothing recorded as what it
did not run.

Fakes: the bridge's HPU graphs (tests/fake_habana hpu/__init__.py, after bridge 1.19 hpu/graphs.py: a graph
captured per input shapes and hash() of the other arguments, replayed without running the Python forward) and
a lazy-mode device that compiles each new graph, cut at every host read (tests/fakes.py
shape_counting_backend, after the bridge's lazy_kernels.cpp and Habana's dynamic-shape docs)."""

from __future__ import annotations

import random

import pytest
from conftest import cli_run, common, measure
from fakes import lively_tiny, shape_counting_backend
from test_engine import drive
from test_hpu import OnCpu, backend_for, events, habana  # noqa: F401 - a fixture

from bench.serve.protocol import GenRequest, Sampling
from workloads.blender_executor import BlenderExecutor

LIMITS = {"max_rows": 4, "max_source": 32, "max_tokens": 16}


@pytest.fixture(scope="module")
def tiny():
    return lively_tiny()


def requests(seed: int, n: int = 16, sampled=lambda i: True, top_p: float = 1.0):
    """n requests of 1-32 token prompts, 1-16 new tokens, joining at steps 0-29; sampled ones at temperature 1."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        prompt = tuple(rng.randrange(4, 1000) for _ in range(rng.randint(1, 32)))
        k = rng.randint(1, 16)
        how = Sampling(temperature=1.0, top_p=top_p, seed=i) if sampled(i) else Sampling()
        out.append((rng.randrange(30), GenRequest(f"r{seed}-{i}", prompt, k, k, sampling=how)))
    return out


# ---- sampled requests: warmed as they run ---------------------------------------------------------------------

@pytest.mark.parametrize("members", [
    {"seed": 1},  # every request sampled (the API's default temperature is 1)
    {"seed": 2, "sampled": lambda i: i % 2 == 0},  # greedy and sampled rows in the same steps
    {"seed": 3, "top_p": 0.9},  # nucleus sampling
    {"seed": 4, "n": 3},  # one to three rows at a time: the smaller rows buckets
])
def test_sampled_requests_compile_nothing_after_the_warm_up(tiny, members):
    backend = shape_counting_backend(static_shapes=True)
    with backend.queue:
        ex = BlenderExecutor(tiny, backend, **LIMITS)
        ex.warmup()
        warmed = len(backend.graphs)
        tokens = drive(ex, requests(**members))  # 0.1: a row's logits read on their own, a graph per row index
    assert len(backend.graphs) == warmed
    assert all(len(t) == r.max_tokens for (_, r), t in zip(requests(**members), tokens.values(), strict=True))


def test_a_serving_run_with_sampled_requests_over_http_compiles_nothing_while_measuring(tiny):
    """bench serve's API samples where a request gives no temperature (1, as OpenAI's): its engine on the
    lazy-mode fake, warmed as bench serve warms it, then requests over HTTP without a temperature."""
    import time

    import httpx
    from fakes import codec_of
    from test_api import serving

    from bench.serve.engine import Engine
    from bench.serve.server import make_service

    backend = shape_counting_backend(static_shapes=True)
    with backend.queue:
        ex = BlenderExecutor(tiny, backend, **LIMITS)
        ex.warmup()
    warmed = len(backend.graphs)
    service = make_service(Engine(ex, time.monotonic, max_batch=4, sync=backend.synchronize), codec_of("tiny"), "tiny",
                           time.monotonic)
    with serving(service) as url:
        for i, n in enumerate((1, 3, 7, 12)):
            body = {"model": "tiny", "prompt": list(range(5, 5 + n)), "max_tokens": 5, "min_tokens": 5, "seed": i}
            assert httpx.post(url + "/v1/completions", json=body, timeout=900).status_code == 200
    assert len(backend.graphs) == warmed


# ---- HPU graphs: captured in the warm-up, replayed while serving ------------------------------------------------

def graphs_backend(**own):
    return backend_for(cls=OnCpu, hpu_mode="lazy", **own)


def test_each_decode_bucket_is_captured_once_in_the_warm_up_and_replayed_after(habana, tiny):  # noqa: F811
    backend = graphs_backend(hpu_graphs=True)  # the bridge loads in lazy mode, where it has wrap_in_hpu_graph
    from habana_frameworks.torch.hpu.metrics import metric_global

    ex = BlenderExecutor(tiny, backend, **LIMITS)
    assert ex.graphs and events().count("wrap_in_hpu_graph") == 1
    ex.warmup()
    buckets = len(ex.rows.rungs) * len(ex.width.rungs) * len(ex.length.rungs)
    assert events().count("hpu_graph.capture") == buckets  # 0.1: none, every step's graph built as it ran
    compiled, runs, calls = dict(metric_global("graph_compilation").stats())["TotalNumber"], \
        ex.decoder_module.runs, ex.decode_calls
    drive(ex, requests(5, sampled=lambda i: i % 3 == 0))
    assert ex.decoder_module.runs == runs  # the Python forward never ran again: every step a replay
    assert events().count("hpu_graph.replay") == ex.decode_calls - calls > 0
    assert dict(metric_global("graph_compilation").stats())["TotalNumber"] == compiled


def test_without_hpu_graphs_the_decode_runs_its_python_forward_every_step(habana, tiny):  # noqa: F811
    backend = graphs_backend()
    ex = BlenderExecutor(tiny, backend, **LIMITS)
    ex.warmup()
    drive(ex, requests(6, n=4))
    assert not ex.graphs and "hpu_graph.capture" not in events() and ex.decoder_module.runs == ex.decode_calls


def test_a_serving_run_records_the_hpu_graphs_it_replayed(habana):  # noqa: F811
    from bench.serve.options import ServeOptions
    from bench.serve.scenario import ServingMeasurement
    from bench.serve.workload import BlenderServe

    def run(**own):
        backend = graphs_backend(**own)
        wl = BlenderServe(common("tiny", context_len=32, new_tokens=4),
                          ServeOptions.build({"qps": "40", "requests": 8, "max_batch": 2}, "tiny"), backend)
        return ServingMeasurement(wl, backend, measure("tiny", warmup=1, steps=2)).run().result

    with_graphs, without = run(hpu_graphs=True), run()
    assert with_graphs.status == "ok" and with_graphs.served_by.hpu_graphs is True
    assert {c.phase: c.graphs for c in with_graphs.timing.repeats[0].compiles}["measure"] == 0
    assert without.served_by.hpu_graphs is False


# ---- what does not run as labelled is refused ---------------------------------------------------------------------

SERVE = ["--device", "hpu", "--preset", "tiny", "--workload", "blender-serve"]


@pytest.mark.parametrize("args,said", [
    (["run", *SERVE, "--hpu-mode", "compile"], "--hpu-mode compile: the serving engine runs eager"),
    (["run", *SERVE, "--hpu-mode", "compile", "--engine", "http"], "--hpu-mode compile: the serving engine"),
    (["serve", "--device", "hpu", "--hpu-mode", "compile"], "--hpu-mode compile: the serving engine runs eager"),
    (["run", "--device", "hpu", "--hpu-graphs", "--hpu-mode", "lazy", "--workload", "blender-generate"],
     "--hpu-graphs: not with blender-generate"),  # generate()'s caches hash by identity: still refused
    (["run", *SERVE, "--hpu-graphs", "--hpu-mode", "eager"], "--hpu-graphs: HPU graphs need lazy mode"),
])
def test_what_would_not_run_as_labelled_is_refused(habana, capsys, tmp_path, args, said):  # noqa: F811
    code, _, err = cli_run(capsys, *args, "--out", tmp_path)
    assert code == 2 and said in err, err


@pytest.mark.parametrize("args", [
    ["--hpu-graphs", "--hpu-mode", "lazy"],  # 0.1: refused for every generating workload
    ["--hpu-graphs", "--hpu-mode", "lazy", "--engine", "http"],
])
def test_serving_takes_hpu_graphs(habana, tmp_path, args):  # noqa: F811
    from conftest import run_config

    from bench.launch.config import check_before_run

    cfg = check_before_run(run_config(*SERVE, *args, "--out", tmp_path))
    assert cfg.device_own.hpu_graphs


def test_bench_serve_takes_hpu_graphs(habana, tmp_path):  # noqa: F811
    from bench.cli import build_parser
    from bench.launch.serve_command import build_serve, check_before_serve

    cfg, server = build_serve(build_parser().parse_args(["serve", "--device", "hpu", "--hpu-graphs", "--hpu-mode",
                                                         "lazy", "--port", "0"]))
    assert check_before_serve(cfg, server).device_own.hpu_graphs
