import pytest

from bench.backends import CpuBackend
from bench.config import RunConfig
from workloads.blender_finetune import BlenderFinetune
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
    cfg = RunConfig(device="cpu", preset="tiny", out_dir=str(tmp_path)).resolved()
    backend = CpuBackend(cfg)
    backend.prepare()
    wl = BlenderFinetune(cfg, backend)
    wl.setup()
    for _ in range(32):
        wl.step()
    losses = [float(x) for x in wl.losses]
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < first - 0.5, f"loss did not fall: {first:.3f} -> {last:.3f}"
    m = wl.extra_metrics([wl.step()], [0.5])
    assert m["parlai.exps"] == pytest.approx(cfg.batch_size / 0.5)
    assert m["parlai.tps"] == pytest.approx(m["parlai.ctps"] + m["parlai.ltps"])
    assert wl.series()["loss"][-1] == pytest.approx(m["loss_last"])


def test_adamax_and_bf16_run(tmp_path):
    cfg = RunConfig(device="cpu", preset="tiny", out_dir=str(tmp_path), optimizer="adamax",
                    precision="bf16").resolved()
    backend = CpuBackend(cfg)
    backend.prepare()
    wl = BlenderFinetune(cfg, backend)
    wl.setup()
    step = wl.step()
    assert step.samples == cfg.batch_size and wl.params()["optimizer"] == "adamax"
    assert wl.params()["precision"] == "bf16"
