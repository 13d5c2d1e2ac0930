import pytest

from bench.config import RunConfig, validate
from bench.core.errors import ConfigError

KNOWN = {"blender-finetune": None}


def check(tmp_path, **kw):
    return validate(RunConfig(out_dir=str(tmp_path), **kw), KNOWN)


def test_preset_fills_unset_fields_and_flags_win(tmp_path):
    cfg = check(tmp_path, preset="seed")
    assert (cfg.batch_size, cfg.context_len, cfg.label_len) == (24, 163, 18)
    assert cfg.model_name == "blenderbot-90m"
    cfg = check(tmp_path, preset="seed", batch_size=4)
    assert cfg.batch_size == 4


@pytest.mark.parametrize("kw,field", [
    ({"steps": 0}, "--steps"), ({"steps": -3}, "--steps"), ({"repeats": 0}, "--repeats"),
    ({"warmup": -1}, "--warmup"), ({"batch_size": 0}, "--batch-size"), ({"sample_hz": -1}, "--sample-hz"),
    ({"steps": 3, "warmup": 3}, "--warmup"), ({"time_budget_s": 0}, "--time-budget"),
    ({"steps": 3, "time_budget_s": 2}, "--steps and --time-budget"), ({"beams": 9}, "--beams"),
    ({"beams": 0}, "--beams"), ({"device": "tpu"}, "--device"), ({"preset": "huge"}, "--preset"),
    ({"precision": "int4"}, "--precision"), ({"workloads": ["nope"]}, "--workload"),
    ({"hpu_mode": "lazy", "device": "cpu"}, "--hpu-mode"), ({"lr": 0}, "--lr"),
])
def test_bad_values_name_the_field(tmp_path, kw, field):
    with pytest.raises(ConfigError) as exc:
        check(tmp_path, **kw)
    assert field in str(exc.value)


def test_unknown_workload_lists_the_choices(tmp_path):
    with pytest.raises(ConfigError, match="blender-finetune"):
        check(tmp_path, workloads=["bogus"])


def test_unwritable_out_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="--out"):
        validate(RunConfig(out_dir=str(blocker / "sub")), KNOWN)


def test_time_budget_leaves_steps_unset(tmp_path):
    cfg = check(tmp_path, time_budget_s=2.0)
    assert cfg.steps is None and cfg.time_budget_s == 2.0
