import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.core.errors import ConfigError
from workloads import models


@pytest.mark.slow
def test_blenderbot_90m_has_parlais_parameter_count():
    m = models.build_blender("blenderbot-90m")
    assert m.num_parameters() == 87_508_992
    assert m.config.vocab_size == 54944 and m.config.scale_embedding is True


def test_tiny_config_is_the_small_one():
    assert models.build_blender("tiny").num_parameters() == 363_264


@pytest.mark.parametrize("batch,src,tgt", [(2, 13, 5), (3, 32, 16)])
def test_train_flops_formula_matches_torch_flop_counter_with_eager_attention(batch, src, tgt):
    cfg = models.blender_config("tiny")
    m = models.build_blender("tiny", attn_implementation="eager")
    x = torch.randint(4, 1000, (batch, src))
    y = torch.randint(4, 1000, (batch, tgt))
    with FlopCounterMode(display=False) as counter:
        m(input_ids=x, labels=y).loss.backward()
    assert models.seq2seq_train_flops(cfg, batch, src, tgt) == counter.get_total_flops()


def test_train_flops_at_the_seed_shape_is_873_gflop():
    cfg = models.blender_config("blenderbot-90m")
    assert models.seq2seq_train_flops(cfg, 24, 163, 18) / 1e9 == pytest.approx(873.3, abs=0.1)


def test_model_dir_checks(tmp_path):
    with pytest.raises(ConfigError, match="not a directory"):
        models.check_model_dir(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="no config.json"):
        models.check_model_dir(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(ConfigError, match="safetensors"):
        models.check_model_dir(str(tmp_path))


def test_local_checkpoint_loads_with_safetensors(tmp_path):
    m = models.build_blender("tiny")
    m.save_pretrained(tmp_path, safe_serialization=True)
    loaded = models.build_blender(str(tmp_path))
    assert loaded.num_parameters() == m.num_parameters()
    ident = models.model_identity(loaded, str(tmp_path))
    assert ident["model"] == f"local:{tmp_path.name}"
    assert ident["config_hash"] == models.model_identity(m, "tiny")["config_hash"]


def test_garbage_safetensors_is_refused_naming_the_file(tmp_path):
    models.blender_config("tiny").save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ConfigError, match="model.safetensors has a header of"):
        models.build_blender(str(tmp_path))
