"""The hpu backend against a fake habana_frameworks (tests/fake_habana), which logs every call."""

import os
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import common, measure, run_config
from fakes import logging_clock

from bench.core.errors import ConfigError, DeviceUnavailable
from bench.devices.hpu.backend import HpuBackend
from bench.devices.hpu.spec import HpuOptions
from bench.devices.options import DeviceOptions
from bench.devices.registry import detect
from bench.launch.config import check_before_run
from bench.measure.runner import Measurement

FAKE = str(Path(__file__).parent / "fake_habana")


@pytest.fixture
def habana(monkeypatch):
    monkeypatch.syspath_prepend(FAKE)
    monkeypatch.delenv("PT_HPU_LAZY_MODE", raising=False)
    yield
    for name in [m for m in sys.modules if m.startswith("habana_frameworks")]:
        del sys.modules[name]
    if hasattr(torch, "hpu") and type(torch.hpu).__name__ == "SimpleNamespace":
        del torch.hpu
    os.environ.pop("PT_HPU_LAZY_MODE", None)


def forget_habana():
    for name in [m for m in sys.modules if m.startswith("habana_frameworks")]:
        del sys.modules[name]


def events():
    from habana_frameworks import EVENTS

    return EVENTS


def backend_for(tmp_path, cls=HpuBackend, **kw):
    b = cls(DeviceOptions(device="hpu"), HpuOptions.build(kw))
    b.prepare()
    return None, b


@pytest.mark.parametrize("mode,flag", [("lazy", "1"), ("eager", "0"), ("compile", "0")])
def test_lazy_mode_variable_is_set_before_habana_is_imported(habana, tmp_path, mode, flag):
    _, b = backend_for(tmp_path, hpu_mode=mode)
    import habana_frameworks.torch.core as core

    assert core.LAZY_MODE_AT_IMPORT == flag
    assert b.describe()["PT_HPU_LAZY_MODE"] == flag and b.describe()["hpu_mode"] == mode


def test_auto_picks_hpu_when_habana_is_importable(habana):
    assert detect() == "hpu"


def test_sync_in_lazy_mode_is_mark_step_then_device_sync(habana, tmp_path):
    _, b = backend_for(tmp_path)
    events().clear()
    b.synchronize()
    assert events() == ["mark_step", "hpu.synchronize"]


def test_eager_mode_has_no_mark_steps(habana, tmp_path):
    _, b = backend_for(tmp_path, hpu_mode="eager")
    events().clear()
    b.synchronize()
    b.after_backward()
    b.after_optimizer_step()
    assert events() == ["hpu.synchronize"]


class OnCpu(HpuBackend):
    """The real HpuBackend hooks and syncs, with tensors kept on the CPU (no Gaudi here)."""

    def device_str(self):
        return "cpu"


def test_training_step_marks_steps_after_backward_and_optimizer_and_syncs_before_clocks(habana, tmp_path, monkeypatch):
    from workloads.blender_finetune import BlenderFinetune, FinetuneOptions

    _, b = backend_for(tmp_path, cls=OnCpu)
    wl = BlenderFinetune(common(), FinetuneOptions.build({}, "tiny"), b)
    log = events()
    real_backward = torch.Tensor.backward
    monkeypatch.setattr(torch.Tensor, "backward", lambda self, *a, **k: (log.append("backward"), real_backward(self, *a, **k))[1])
    wl.setup = (lambda orig: lambda: (orig(), _wrap_step(wl.optimizer, log)))(wl.setup)
    logging_clock(monkeypatch, log)
    log.clear()
    result = Measurement(wl, b, measure(steps=3, warmup=1)).run().result
    assert result.status == "ok", result.error
    for i, e in enumerate(log):
        if e == "clock":
            assert log[i - 2:i] == ["mark_step", "hpu.synchronize"], log[max(0, i - 4):i + 1]
        if e == "backward":
            assert log[i + 1] == "mark_step"
        if e == "optimizer.step":
            assert log[i + 1] == "mark_step"
    assert log.count("backward") == 1 + 3 + 3  # warm-up, measured steps, the fingerprint's fixed steps
    assert log.count("optimizer.step") == 1 + 3  # the fingerprint builds its own optimizer (not wrapped here)
    assert result.memory.device_peak_bytes == 123 * 2**20
    assert result.memory.device_total_bytes == 96 * 2**30


def _wrap_step(optimizer, log):
    real = optimizer.step

    def step(*a, **k):
        out = real(*a, **k)
        log.append("optimizer.step")
        return out

    optimizer.step = step


def test_hpu_graphs_wrap_inference_models_in_lazy_mode_only(habana, tmp_path):
    _, b = backend_for(tmp_path, hpu_graphs=True)
    model = torch.nn.Linear(2, 2)
    assert b.wrap_inference(model)._wrapped_in_hpu_graph is True
    forget_habana()
    _, b = backend_for(tmp_path, hpu_graphs=True, hpu_mode="eager")
    with pytest.raises(ConfigError, match="lazy"):
        b.wrap_inference(model)


def test_compile_mode_uses_the_hpu_backend(habana, tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(torch, "compile", lambda m, **k: seen.update(k) or m)
    _, b = backend_for(tmp_path, hpu_mode="compile")
    b.wrap_train(torch.nn.Linear(2, 2))
    assert seen == {"backend": "hpu_backend"}
    seen.clear()
    model = torch.nn.Linear(2, 2)
    assert b.wrap_inference(model) is model  # forward compiled in place: generate() uses it
    assert seen == {"backend": "hpu_backend", "dynamic": True}


def test_fp16_is_refused_on_hpu_before_anything_runs(habana, tmp_path):
    with pytest.raises(ConfigError, match="--precision fp16: hpu runs fp32 or bf16"):
        check_before_run(run_config("--device", "hpu", "--precision", "fp16", "--out", tmp_path))
    _, b = backend_for(tmp_path)
    with pytest.raises(ConfigError, match="bf16"):
        b.autocast("fp16")


def test_graphs_without_lazy_mode_are_refused_before_anything_runs(habana, tmp_path):
    with pytest.raises(ConfigError, match="--hpu-graphs: HPU graphs need lazy mode, not --hpu-mode eager"):
        check_before_run(run_config("--device", "hpu", "--hpu-graphs", "--hpu-mode", "eager", "--out", tmp_path))
    with pytest.raises(ConfigError, match="--compile: on hpu use --hpu-mode compile"):
        check_before_run(run_config("--device", "hpu", "--compile", "--out", tmp_path))


def test_no_device_present_is_an_error(habana, tmp_path, monkeypatch):
    import habana_frameworks.torch.hpu as fake

    monkeypatch.setattr(fake, "DEVICE_COUNT", 0)
    with pytest.raises(DeviceUnavailable, match="no Gaudi device"):
        backend_for(tmp_path)


def test_peak_and_description(habana, tmp_path):
    _, b = backend_for(tmp_path)
    peak, source = b.peak_flops("bf16")
    assert peak == 432e12 and "GAUDI2" in source
    assert b.peak_flops("fp32")[0] is None
    d = b.describe()
    assert d["device_name"] == "GAUDI2" and d["device_count"] == 1
    assert b.collector_specs()[-1] == {"name": "habana", "indices": [0]}


def test_switching_lazy_mode_after_import_is_refused(habana, tmp_path):
    backend_for(tmp_path, hpu_mode="lazy")
    with pytest.raises(ConfigError, match="new process"):
        backend_for(tmp_path, hpu_mode="eager")
