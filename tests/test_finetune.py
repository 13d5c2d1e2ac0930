import pytest
from conftest import common, cpu_backend

from workloads.blender_finetune import BlenderFinetune, FinetuneOptions
from workloads.data import IGNORE, load_dialogues, shipped_batches, shipped_tokenizer


def test_shipped_sample_has_hundreds_of_exchanges():
    d = load_dialogues()
    assert len(d) >= 300
    assert all(x["context"] and x["reply"] for x in d)


def test_shipped_tokenizer_is_deterministic_and_fits_tiny_vocab():
    tok = shipped_tokenizer(1000)
    assert tok.get_vocab_size() <= 1000
    assert tok.token_to_id("[PAD]") == 0 and tok.token_to_id("[EOS]") == 2
    a = shipped_batches(4, 32, 16, seed=1)
    assert a == shipped_batches(4, 32, 16, seed=1)
    ctx, lbl = a[0]
    assert all(len(c) == 32 for c in ctx) and all(len(l) == 16 for l in lbl)
    assert all(2 in l for l in lbl)  # every label ends in EOS, also when truncated
    _, long_labels = shipped_batches(4, 32, 40, seed=1)[0]
    assert all(l[-1] == IGNORE for l in long_labels)  # short replies are padded with IGNORE


@pytest.mark.slow
def test_tiny_loss_falls_over_30_steps_on_the_shipped_data(tmp_path):
    wl = BlenderFinetune(common(), FinetuneOptions.build({}, "tiny"), cpu_backend())
    wl.setup()
    for _ in range(32):
        wl.step()
    losses = wl.series()["loss"]
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < first - 0.5, f"loss did not fall: {first:.3f} -> {last:.3f}"


def test_parlai_figures_come_from_the_raw_per_step_tokens():
    from bench.model.report import Repeat

    reps = [Repeat(i, step_times_s=[0.5, 0.5], step_samples=[8, 8], step_tokens=[30, 30],
                   series={"context_tokens": [20, 20], "label_tokens": [10, 10], "loss": [3.0, 2.5]})
            for i in range(2)]
    m = BlenderFinetune.metrics(reps, {})
    assert m["parlai.exps"] == pytest.approx(32 / 2.0) and m["parlai.ups"] == pytest.approx(4 / 2.0)
    assert m["parlai.tps"] == pytest.approx(m["parlai.ctps"] + m["parlai.ltps"]) == pytest.approx(120 / 2.0)
    assert m["parlai.clen"] == 80 / 32 and m["parlai.llen"] == 40 / 32  # tokens per sample
    assert (m["loss_first"], m["loss_last"]) == (3.0, 2.5)


def test_adamax_and_bf16_run(tmp_path):
    c = common(precision="bf16")
    wl = BlenderFinetune(c, FinetuneOptions.build({"optimizer": "adamax"}, "tiny"), cpu_backend())
    wl.setup()
    step = wl.step()
    assert step.samples == c.batch_size and wl.params()["optimizer"] == "adamax"
    assert wl.params()["precision"] == "bf16"


def test_the_fingerprint_is_the_loss_of_fixed_steps_and_repeatable():
    def fingerprint():
        wl = BlenderFinetune(common(), FinetuneOptions.build({}, "tiny"), cpu_backend())
        wl.setup()
        wl.step()  # training first must not change what the fingerprint computes
        return wl.verify()[0]

    a, b = fingerprint(), fingerprint()
    assert len(a.values) == 3 and a.values == b.values and a.precision == "fp32"


def test_the_optimizer_runs_the_same_kind_on_every_device_and_says_which():
    """torch's own default is foreach on cuda and the per-parameter loop on cpu and hpu."""
    wl = BlenderFinetune(common(), FinetuneOptions.build({}, "tiny"), cpu_backend())
    wl.setup()
    assert wl.params()["optimizer_impl"] == "foreach" and wl.optimizer.defaults["foreach"] is True  # 0.1: None
    loop = BlenderFinetune(common(), FinetuneOptions.build({"optimizer_impl": "for-loop"}, "tiny"), cpu_backend())
    loop.setup()
    assert loop.params()["optimizer_impl"] == "for-loop" and loop.optimizer.defaults["foreach"] is False
    assert wl.train_step(wl.batches[0]).isfinite()


def test_the_optimizer_kind_on_hpu_is_the_same(monkeypatch):
    import sys

    from test_hpu import FAKE, OnCpu, forget

    from bench.devices.hpu.spec import HpuOptions
    from bench.devices.options import DeviceOptions

    monkeypatch.syspath_prepend(FAKE)
    forget("habana_frameworks")
    monkeypatch.setenv("PT_HPU_LAZY_MODE", "0")
    try:
        b = OnCpu(DeviceOptions(device="hpu"), HpuOptions.build({}))
        b.prepare()
        wl = BlenderFinetune(common(), FinetuneOptions.build({}, "tiny"), b)
        wl.setup()
        assert wl.params()["optimizer_impl"] == "foreach" and wl.optimizer.defaults["foreach"] is True
    finally:
        forget("habana_frameworks")
        if type(getattr(sys.modules["torch"], "hpu", None)).__name__ == "SimpleNamespace":
            del sys.modules["torch"].hpu
