"""Gaudi against fakes that follow the vendor's sources: the bridge (tests/fake_habana, after
HabanaAI/gaudi-pytorch-bridge v1.19.0 and docs.habana.ai) and habana-pyhlml (tests/fake_vendor/pyhlml,
after the 1.10-1.24 wheels). Each module of the fakes names the file it follows."""

import json
import os
import sys
from pathlib import Path

import pytest
import torch
from conftest import common, measure, run_config
from fakes import logging_clock

from bench.core.errors import ConfigError, DeviceUnavailable
from bench.devices.hpu.backend import HpuBackend
from bench.devices.hpu.spec import SPEC, HpuOptions, pin_module
from bench.devices.options import DeviceOptions
from bench.devices.registry import detect
from bench.launch.config import check_before_run
from bench.measure.runner import Measurement

FAKE = str(Path(__file__).parent / "fake_habana")
VENDOR = str(Path(__file__).parent / "fake_vendor")


def forget(prefix):
    for name in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        del sys.modules[name]


@pytest.fixture
def habana(monkeypatch, tmp_path_factory):
    """The fake bridge, its cards in a device directory of this test's own that the processes it starts share (one
    process per card, across processes, as the bridge's exclusive open of the card's node)."""
    monkeypatch.syspath_prepend(FAKE)
    for var in ("PT_HPU_LAZY_MODE", "HLS_MODULE_ID", "HABANA_VISIBLE_MODULES", "FAKE_BRIDGE_STOCK_TORCH",
                "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FAKE_BRIDGE_RELEASE", "1.23.0")
    monkeypatch.setenv("FAKE_HPU_DEV", str(tmp_path_factory.mktemp("dev")))
    forget("habana_frameworks")
    yield monkeypatch
    forget("habana_frameworks")
    if hasattr(torch, "hpu") and type(torch.hpu).__name__ == "SimpleNamespace":
        del torch.hpu
    for var in ("PT_HPU_LAZY_MODE", "HLS_MODULE_ID"):
        os.environ.pop(var, None)


def events():
    from habana_frameworks import EVENTS

    return EVENTS


def backend_for(cls=HpuBackend, local_world=1, **own):
    b = cls(DeviceOptions(device="hpu"), HpuOptions.build(own), 0, local_world)
    b.prepare()
    return b


# ---- the mode: not forced ---------------------------------------------------------------------------

@pytest.mark.parametrize("release,env,mode", [("1.23.0", None, "eager"), ("1.19.0", None, "lazy"),
                                              ("1.23.0", "1", "lazy"), ("1.19.0", "0", "eager")])
def test_without_hpu_mode_the_variable_or_the_release_default_decides(habana, release, env, mode):
    habana.setenv("FAKE_BRIDGE_RELEASE", release)
    if env is not None:
        habana.setenv("PT_HPU_LAZY_MODE", env)
    b = backend_for()
    assert b.mode == mode
    assert os.environ.get("PT_HPU_LAZY_MODE") == env  # 0.1 set it to 1 whatever the release
    d = b.describe()
    assert d["hpu_mode"] == mode and d["PT_HPU_LAZY_MODE"] == env
    assert d["hpu_mode_from"] == ("PT_HPU_LAZY_MODE as set" if env else "the release's default")


@pytest.mark.parametrize("mode,flag", [("lazy", "1"), ("eager", "0"), ("compile", "0")])
def test_hpu_mode_sets_the_variable_before_habana_is_imported(habana, mode, flag):
    b = backend_for(hpu_mode=mode)
    import habana_frameworks.torch.core as core

    assert core.LAZY_MODE_AT_IMPORT == flag
    assert b.describe()["PT_HPU_LAZY_MODE"] == flag and b.describe()["hpu_mode"] == mode
    assert b.describe()["hpu_mode_from"] == "--hpu-mode"


def test_a_bridge_for_stock_pytorch_refusing_lazy_mode_is_device_unavailable(habana):
    habana.setenv("FAKE_BRIDGE_STOCK_TORCH", "1")
    with pytest.raises(DeviceUnavailable, match="refused to load.*Stock PyTorch.*--hpu-mode eager"):
        backend_for(hpu_mode="lazy")  # 0.1: an AssertionError traceback
    forget("habana_frameworks")
    assert backend_for(hpu_mode="eager").mode == "eager"


def test_auto_picks_hpu_when_habana_is_importable(habana):
    assert detect() == "hpu"


def test_sync_in_lazy_mode_is_mark_step_then_device_sync(habana):
    b = backend_for(hpu_mode="lazy")
    events().clear()
    b.synchronize()
    assert events() == ["mark_step", "hpu.synchronize"]


def test_eager_mode_has_no_mark_steps(habana):
    b = backend_for(hpu_mode="eager")
    events().clear()
    b.synchronize()
    b.after_backward()
    b.after_optimizer_step()
    assert events() == ["hpu.synchronize"]


class OnCpu(HpuBackend):
    """The real HpuBackend hooks and syncs, with tensors kept on the CPU (no Gaudi here)."""

    def device_str(self):
        return "cpu"


def test_training_step_marks_steps_after_backward_and_optimizer_and_syncs_before_clocks(habana, monkeypatch):
    from workloads.blender_finetune import BlenderFinetune, FinetuneOptions

    b = backend_for(cls=OnCpu, hpu_mode="lazy")
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
        if e in ("backward", "optimizer.step"):
            assert log[i + 1] == "mark_step"
    assert log.count("backward") == 1 + 3 + 3  # warm-up, measured steps, the fingerprint's fixed steps
    assert log.count("optimizer.step") == 1 + 3  # the fingerprint builds its own optimizer (not wrapped here)
    assert result.memory.device_peak_bytes == 123 * 2**20 and result.memory.device_total_bytes == 96 * 2**30


def _wrap_step(optimizer, log):
    real = optimizer.step

    def step(*a, **k):
        out = real(*a, **k)
        log.append("optimizer.step")
        return out

    optimizer.step = step


# ---- HPU graphs ----------------------------------------------------------------------------------------

def test_an_hpu_graph_replays_without_running_the_python_forward(habana):
    """The fake's caching rule, as the bridge's graphs.py: same shapes -> no forward, same outputs."""
    habana.setenv("PT_HPU_LAZY_MODE", "1")
    import habana_frameworks.torch.hpu as hthpu

    calls = []

    class M(torch.nn.Module):
        def forward(self, x, cache):
            calls.append(cache.step)
            return x * (cache.step + 1)

    class Cache:  # like transformers' cache objects: hashed by identity, mutated from step to step
        step = 0

    m = hthpu.wrap_in_hpu_graph(M())
    cache = Cache()
    first = m(torch.ones(2), cache=cache)
    cache.step = 1
    second = m(torch.ones(2), cache=cache)  # same shapes, same object (hashed by identity): the same key
    assert calls == [0] and second is first  # the forward did not run: step one's outputs again
    m(torch.ones(3), cache=cache)  # a new shape is a new graph
    assert calls == [0, 1]


def test_hpu_graphs_with_generation_are_refused_before_anything_runs(habana, tmp_path):
    with pytest.raises(ConfigError, match="--hpu-graphs: not with blender-generate, retrieve-refine"):
        check_before_run(run_config("--device", "hpu", "--hpu-graphs", "--hpu-mode", "lazy", "--out", tmp_path))
    with pytest.raises(ConfigError, match="add --hpu-mode lazy"):  # newer releases default to eager
        check_before_run(run_config("--device", "hpu", "--hpu-graphs", "--workload", "retrieval-encode",
                                    "--out", tmp_path))
    cfg = check_before_run(run_config("--device", "hpu", "--hpu-graphs", "--hpu-mode", "lazy", "--workload",
                                      "retrieval-encode", "--out", tmp_path))
    assert cfg.device_own.hpu_graphs


def test_hpu_graphs_wrap_inference_models_in_lazy_mode(habana):
    b = backend_for(hpu_graphs=True, hpu_mode="lazy")
    assert b.wrap_inference(torch.nn.Linear(2, 2))._wrapped_in_hpu_graph is True


def test_compile_mode_uses_the_hpu_backend(habana, monkeypatch):
    seen = {}
    monkeypatch.setattr(torch, "compile", lambda m, **k: seen.update(k) or m)
    b = backend_for(hpu_mode="compile")
    b.wrap_train(torch.nn.Linear(2, 2))
    assert seen == {"backend": "hpu_backend"}
    seen.clear()
    model = torch.nn.Linear(2, 2)
    assert b.wrap_inference(model) is model  # forward compiled in place: generate() uses it
    assert seen == {"backend": "hpu_backend", "dynamic": True}


def test_fp16_and_mode_clashes_are_refused_before_anything_runs(habana, tmp_path):
    with pytest.raises(ConfigError, match="--precision fp16: hpu runs fp32 or bf16"):
        check_before_run(run_config("--device", "hpu", "--precision", "fp16", "--out", tmp_path))
    with pytest.raises(ConfigError, match="--hpu-graphs: HPU graphs need lazy mode, not --hpu-mode eager"):
        check_before_run(run_config("--device", "hpu", "--hpu-graphs", "--hpu-mode", "eager", "--out", tmp_path))
    with pytest.raises(ConfigError, match="--compile: on hpu use --hpu-mode compile"):
        check_before_run(run_config("--device", "hpu", "--compile", "--out", tmp_path))


def test_no_device_present_is_an_error(habana):
    habana.setenv("FAKE_HPU_COUNT", "0")
    with pytest.raises(DeviceUnavailable, match="no Gaudi device"):
        backend_for()


def test_peak_and_description(habana):
    b = backend_for(hpu_mode="lazy")
    peak, source = b.peak_flops("bf16")
    assert peak == 432e12 and "GAUDI2" in source
    assert b.peak_flops("fp32")[0] is None
    d = b.describe()
    assert d["device_name"] == "GAUDI2" and d["device_count"] == 1
    assert d["software"] == "habana-torch-plugin 1.23.0"  # the bridge's wheel (the fake's dist-info)


def test_switching_lazy_mode_after_import_is_refused(habana):
    backend_for(hpu_mode="lazy")
    with pytest.raises(ConfigError, match="new process"):
        backend_for(hpu_mode="eager")


# ---- which card: module IDs, not indices ---------------------------------------------------------------

CARDS = [  # HLML index -> module ID differ, as in Habana's `hl-smi -Q index,module_id` example
    {"index": 0, "module_id": 5, "uuid": "00P1-A", "name": "HL-225", "util": 96, "mem_used": 60 * 2**30,
     "mem_total": 96 * 2**30, "power_mw": 550000, "energy_mj": 10**6, "temp": 60, "throttle": 0},
    {"index": 1, "module_id": 2, "uuid": "00P1-B", "name": "HL-225", "util": 0, "mem_used": 2**29,
     "mem_total": 96 * 2**30, "power_mw": 95000, "energy_mj": 10**6, "temp": 35, "throttle": 0x2},
    {"index": 2, "module_id": 7, "uuid": "00P1-C", "name": "HL-225", "util": 0, "mem_used": 2**29,
     "mem_total": 96 * 2**30, "power_mw": 96000, "energy_mj": 10**6, "temp": 34, "throttle": 0x1},
    {"index": 3, "module_id": 0, "uuid": "00P1-D", "name": "HL-225", "util": 88, "mem_used": 40 * 2**30,
     "mem_total": 96 * 2**30, "power_mw": 500000, "energy_mj": 10**6, "temp": 58, "throttle": 0},
]


@pytest.fixture
def pyhlml(monkeypatch):
    """The fake habana-pyhlml with CARDS (also for subprocesses, through PYTHONPATH)."""

    def use(version="1.24.2", lib=True, cards=CARDS):
        monkeypatch.setenv("FAKE_PYHLML", json.dumps({"version": version, "lib": lib, "cards": cards}))
        monkeypatch.syspath_prepend(VENDOR)
        forget("pyhlml")
        import pyhlml as fake

        return fake

    yield use
    forget("pyhlml")


def test_one_process_is_pinned_to_the_lowest_idle_module_before_import(pyhlml, monkeypatch):
    pyhlml()
    for var in ("HLS_MODULE_ID", "HABANA_VISIBLE_MODULES"):
        monkeypatch.delenv(var, raising=False)
    env, why = pin_module(1)
    assert env == {"HLS_MODULE_ID": "2"} and "lowest idle" in why  # not index 0, which 0.1 watched
    monkeypatch.setenv("HABANA_VISIBLE_MODULES", "7,5")
    assert pin_module(1)[0] == {"HLS_MODULE_ID": "7"}
    monkeypatch.setenv("HLS_MODULE_ID", "5")
    assert pin_module(1) == ({}, "module 5 (HLS_MODULE_ID as set)")
    monkeypatch.delenv("HLS_MODULE_ID")
    assert pin_module(2)[0] == {}  # several ranks: the bridge pins rank r itself


def test_without_telemetry_the_choice_is_the_bridges_and_said_so(pyhlml, monkeypatch, no_accelerators):
    monkeypatch.delitem(sys.modules, "pyhlml")
    pyhlml(lib=False)
    monkeypatch.delenv("HLS_MODULE_ID", raising=False)
    env, why = pin_module(1)
    assert env == {} and "chosen by the bridge" in why and "hlmlInit failed" in why


def test_the_collector_reads_the_card_of_its_module_not_of_its_index(pyhlml):
    pyhlml()
    from bench.devices.hpu.collectors import HlmlCollector

    c = HlmlCollector({"devices": [{"module_id": 2}]})
    c.open()
    s = c.sample()
    assert s["hpu1.util_percent"] == 0.0 and s["hpu1.power_w"] == 95.0  # index 1 holds module 2
    assert not any(k.startswith("hpu0.") for k in s)
    assert c.sources() == {"hpu1": {"role": "accelerator", "device": "hpu", "index": 1, "module_id": 2,
                                    "uuid": "00P1-B", "name": "HL-225"}}


@pytest.mark.parametrize("version", ["1.10.0", "1.16.0", "1.18.0", "1.19.0", "1.24.2"])
def test_both_utilization_shapes_and_the_shared_handle_of_old_releases(pyhlml, version):
    fake = pyhlml(version)
    assert isinstance(fake.hlmlDeviceGetUtilizationRates.__call__, object)
    from bench.devices.hpu.collectors import HlmlCollector

    c = HlmlCollector({"devices": [{"module_id": 5}, {"module_id": 0}]})
    c.open()
    s = c.sample()
    assert s["hpu0.util_percent"] == 96.0 and s["hpu3.util_percent"] == 88.0  # 0.1: every sample failed <= 1.18
    assert s["hpu0.temp_c"] == 60 and s["hpu3.temp_c"] == 58  # <= 1.16: handles alias; looked up per query


def test_throttle_reasons_are_sampled_and_judged_by_the_gaudi_mask(pyhlml):
    pyhlml()
    from bench.devices.hpu.collectors import HlmlCollector
    from bench.measure.validity import telemetry_checks
    from bench.model.report import Phase, Repeat, Result, Telemetry, TelemetrySource, Timing

    c = HlmlCollector({"devices": [{"module_id": 2}, {"module_id": 7}]})
    c.open()
    s = c.sample()
    assert s["hpu1.throttle_reasons"] == 0x2 and s["hpu2.throttle_reasons"] == 0x1

    def judged(reasons):
        r = Result("w", "ok", timing=Timing([Repeat(0, step_times_s=[0.2] * 10, step_samples=[1] * 10,
                                                       step_tokens=[1] * 10)]))
        samples = [{"t": i / 10, "hpu1.util_percent": 90.0, "hpu1.throttle_reasons": reasons} for i in range(30)]
        tel = Telemetry(10, sources={"hpu1": TelemetrySource("accelerator", "hpu", 1)}, samples=samples,
                        phases=[Phase("w", "measure", 0.0, 2.9)])
        telemetry_checks(r, tel, SPEC)
        return r

    assert "throttled" in judged(0x2).codes() and "thermal" in judged(0x2).warnings[0].message
    assert "throttled" not in judged(0x1).codes()  # at its power limit: what a loaded card does


def test_several_ranks_take_the_bridges_module_and_telemetry_follows(habana, monkeypatch):
    monkeypatch.setenv("FAKE_HPU_CARDS", json.dumps([{"index": 0, "module_id": 4}, {"index": 1, "module_id": 6}]))
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("HABANA_VISIBLE_MODULES", "4,6")
    b = backend_for(hpu_mode="eager", local_world=2)
    assert b.module_id == 6 and "hccl.import" in events() and "acquired:6" in events()
    # the card it holds, by module ID: without HLML nothing links its device node to an HLML index
    assert b.collector_specs()[-1] == {"name": "habana", "devices": [{"module_id": 6}]}


# ---- one process per card: the card the bridge acquired, whatever was pinned -------------------------

def cards(*held_modules):
    """The bridge's view of CARDS (index -> module as HLML has them), some held by other processes."""
    return json.dumps([{"index": c["index"], "module_id": c["module_id"], "held": c["module_id"] in held_modules}
                       for c in CARDS])


def test_a_pinned_card_held_by_an_idle_process_is_left_for_the_bridges_choice_and_watched(habana, pyhlml):
    pyhlml()
    env, _ = pin_module(1)
    assert env == {"HLS_MODULE_ID": "2"}  # idle by HLML: another process holds it all the same
    habana.setenv("HLS_MODULE_ID", "2")
    habana.setenv("FAKE_HPU_CARDS", cards(2, 5, 0))  # only module 7 (index 2) is free
    b = backend_for(hpu_mode="lazy")
    assert "acquired:7" in events()  # the bridge fell back by type, as device.cpp does
    assert b.collector_specs()[-1] == {"name": "habana", "devices": [{"index": 2}]}  # 0.1: module 2's card
    d = b.describe()
    assert d["module_id"] == 7 and d["card_index"] == 2 and d["module_requested"] == 2
    assert "module 2 was not free" in d["module_fallback"]
    from bench.devices.hpu.collectors import HlmlCollector

    c = HlmlCollector(b.collector_specs()[-1])
    c.open()
    assert c.sources()["hpu2"]["module_id"] == 7


def test_a_held_card_the_bridge_may_not_replace_is_a_clear_error(habana):
    habana.setenv("HLS_MODULE_ID", "2")
    habana.setenv("HABANA_VISIBLE_MODULES", "2,7")  # device.cpp: no fallback when the modules are restricted
    habana.setenv("FAKE_HPU_CARDS", cards(2))
    with pytest.raises(DeviceUnavailable, match="could not acquire a Gaudi card.*one process per card"):
        backend_for(hpu_mode="lazy")


def test_the_cards_memory_is_not_the_allocators_pool(habana):
    import habana_frameworks.torch.hpu as fake

    b = backend_for(hpu_mode="lazy")
    m = b.memory_stats()
    assert m["device_total_bytes"] == 96 * 2**30 == fake.DRAM  # synDeviceInfo dramSize (0.1: the pool)
    assert m["device_pool_bytes"] == fake.POOL < fake.DRAM


@pytest.mark.parametrize("nodes,visible,expected", [
    (["hl0", "hl1", "accel/accel0", "accel/accel1"], None, 2),  # one card, two nodes: counted once (0.1: 4)
    (["accel/accel0", "accel/accel1", "accel/accel2"], None, 3),
    (["hl0", "hl1", "hl2", "hl3", "hl_controlD0"], "1,3", 2),  # HABANA_VISIBLE_MODULES limits what we may use
    ([], None, None)])
def test_the_gaudi_count_counts_cards_once_and_honours_visible_modules(monkeypatch, tmp_path, nodes, visible, expected):
    import glob

    from bench.devices.hpu import spec

    for n in nodes:
        (tmp_path / n).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / n).touch()
    real = glob.glob
    monkeypatch.setattr(spec.glob, "glob", lambda pattern: real(pattern.replace("/dev", str(tmp_path), 1)))
    if visible is None:
        monkeypatch.delenv("HABANA_VISIBLE_MODULES", raising=False)
    else:
        monkeypatch.setenv("HABANA_VISIBLE_MODULES", visible)
    assert spec.count() == expected


# ---- compiles, the recipe cache --------------------------------------------------------------------------

class GraphWorkload:
    """Steps through an HPU graph whose input shape changes at step `new_shape_at` (a shape warm-up missed)."""

    name, serves, figures, memory_flags = "graphs", False, (), ("--batch-size",)
    tokens_are, main_metric = "rows", "samples_per_s"

    def __init__(self, backend, new_shape_at=None):
        self.backend, self.new_shape_at, self.calls = backend, new_shape_at, 0

    def setup(self):
        self.model = self.backend.wrap_inference(torch.nn.Linear(4, 4))

    def step(self):
        from workloads.base import StepResult

        self.calls += 1
        rows = 3 if self.calls == self.new_shape_at else 2
        self.model(torch.ones(rows, 4))
        return StepResult(samples=rows, tokens=rows)

    def params(self):
        return {}

    def flops_per_step(self):
        return None

    def start_measuring(self): ...
    def record(self, step): return {}
    def series(self): return {}
    def verify(self): return None, {}
    def teardown(self): ...


def test_compiles_are_counted_per_phase_and_a_compile_while_measuring_is_a_warning(habana):
    b = backend_for(cls=OnCpu, hpu_mode="lazy", hpu_graphs=True)
    result = Measurement(GraphWorkload(b, new_shape_at=4), b, measure(steps=3, warmup=2)).run().result
    [rep] = result.timing.repeats
    by_phase = {c.phase: c for c in rep.compiles}
    assert by_phase["warmup"].graphs == 1 and by_phase["warmup"].seconds == pytest.approx(0.25)  # TotalTime in µs
    assert by_phase["measure"].graphs == 1 and "graph_compilation" in by_phase["measure"].source
    assert by_phase["setup"].graphs == 0 and by_phase["verify"].graphs == 0
    [w] = [w for w in result.warnings if w.code == "compiled_while_measuring"]
    assert "1 graph(s) compiled during the measured steps" in w.message
    quiet = Measurement(GraphWorkload(b), b, measure(steps=3, warmup=1)).run().result
    assert "compiled_while_measuring" not in quiet.codes()


def test_eager_mode_says_the_bridge_does_not_count_its_compiles(habana):
    b = backend_for(cls=OnCpu, hpu_mode="eager")
    stats = b.compile_stats()
    assert stats["graphs"] is None and "not counted" in stats["source"]


def test_the_recipe_cache_reaches_the_bridge_before_it_loads_and_the_report(habana, tmp_path):
    from bench.devices.hpu.spec import worker_env

    cache = tmp_path / "recipes"
    env, _ = worker_env(2, HpuOptions.build({"hpu_recipe_cache": str(cache), "hpu_mode": "eager"}))
    assert env == {"PT_HPU_RECIPE_CACHE_CONFIG": f"{cache},false,4096", "PT_HPU_LAZY_MODE": "0"}  # before `import torch`
    b = backend_for(hpu_mode="lazy", hpu_recipe_cache=str(cache))
    assert cache.is_dir() and b.describe()["recipe_cache"] == f"{cache},false,4096"
    with pytest.raises(ConfigError, match="--hpu-recipe-cache.*comma"):
        check_before_run(run_config("--device", "hpu", "--hpu-recipe-cache", str(tmp_path / "a,b"), "--out", tmp_path))


@pytest.mark.parametrize("inference,rank,suffix", [(None, None, ""), ("1", None, "0"), ("true", "3", "3"), ("0", "3", "")])
def test_the_recipe_cache_has_a_size_and_records_the_directory_the_bridge_uses(habana, tmp_path, inference, rank,
                                                                              suffix):
    """The bridge (1.19 recipe_cache_config.cpp) caps the cache at 1024 MB unless PT_HPU_RECIPE_CACHE_CONFIG
    gives a size, and in inference mode (PT_HPU_INFERENCE_MODE) appends the rank (RANK, else 0) to the path.
    0.1 left the size unsaid and recorded a directory the bridge did not use."""
    for var, value in (("PT_HPU_INFERENCE_MODE", inference), ("RANK", rank)):
        if value is None:
            habana.delenv(var, raising=False)
        else:
            habana.setenv(var, value)
    cache = tmp_path / "recipes"
    b = backend_for(hpu_mode="lazy", hpu_recipe_cache=str(cache), hpu_recipe_cache_mb=2048)
    d = b.describe()
    assert d["recipe_cache"] == f"{cache},false,2048" and d["recipe_cache_mb"] == 2048
    assert d["recipe_cache_dir"] == f"{cache}{suffix}" and Path(d["recipe_cache_dir"]).is_dir()


# ---- releases, out of memory, the bridge at `import torch` ------------------------------------------------

def bridge_release(monkeypatch, tmp_path, version):
    """Make importlib.metadata find habana-torch-plugin at this version first."""
    import importlib

    dist = tmp_path / f"habana_torch_plugin-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: habana-torch-plugin\nVersion: {version}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()


@pytest.mark.parametrize("version,ok", [("1.12.1", False), ("1.13.0", True), ("1.22.2", True)])
def test_a_gaudi_release_older_than_the_minimum_is_refused(habana, tmp_path, version, ok):
    bridge_release(habana, tmp_path, version)
    if ok:
        assert backend_for(hpu_mode="lazy").describe()["software"] == f"habana-torch-plugin {version}"
    else:
        with pytest.raises(DeviceUnavailable, match=r"1\.12\.1 is older than 1\.13"):
            backend_for(hpu_mode="lazy")


def test_the_bridges_out_of_memory_is_recognised(habana):
    import habana_frameworks.torch.hpu as fake

    b = backend_for(cls=OnCpu, hpu_mode="lazy")
    with pytest.raises(RuntimeError) as info:
        fake.allocate(200 * 2**30)
    assert b.is_oom(info.value)  # 0.1: "Allocation failed for size" was a plain failure

    class Greedy(GraphWorkload):
        def step(self):
            fake.allocate(200 * 2**30)

    result = Measurement(Greedy(b), b, measure(steps=2, warmup=1)).run().result
    assert result.status == "failed" and result.error.startswith("out of device memory")


def test_an_hpu_graphs_key_holds_the_autocast_state_and_the_view(habana):
    """graphs.py input_hash: the same shapes under autocast, or as another view, are another graph."""
    habana.setenv("PT_HPU_LAZY_MODE", "1")
    import habana_frameworks.torch.hpu as hthpu

    m = hthpu.wrap_in_hpu_graph(torch.nn.Linear(4, 4))
    x = torch.ones(4, 4)
    m(x)
    m(x)
    with torch.autocast(device_type="hpu", dtype=torch.bfloat16):
        m(x)
    m(torch.ones(4, 4).t())  # same shape, a transposed view
    assert events().count("hpu_graph.capture") == 3 and events().count("hpu_graph.replay") == 1


@pytest.mark.slow
def test_the_bridges_assert_at_import_torch_is_a_clear_error(tmp_path):
    """PT_HPU_AUTOLOAD=1: torch imports the bridge itself (its torch.backends entry point); a bridge for
    stock PyTorch asserts in lazy mode, and torch wraps that in a RuntimeError."""
    import subprocess

    import bench as under_test

    env = {**os.environ, "PYTHONPATH": f"{FAKE}{os.pathsep}{Path(under_test.__file__).parent.parent}",
           "PT_HPU_AUTOLOAD": "1", "PT_HPU_LAZY_MODE": "1", "FAKE_BRIDGE_STOCK_TORCH": "1"}
    cmd = [sys.executable, "-c", "import sys; from bench.entry import main; sys.argv[0] = 'bench'; main()"]
    listed = subprocess.run([*cmd, "list", "--json"], capture_output=True, text=True, env=env, timeout=900)
    assert listed.returncode == 0, listed.stderr[-2000:]  # 0.1: "internal error: RuntimeError"
    cuda = {d["device"]: d for d in json.loads(listed.stdout)["devices"]}["cuda"]
    assert "Stock PyTorch" in cuda["reason"] and "PT_HPU_AUTOLOAD=0" in cuda["reason"]
    ran = subprocess.run([*cmd, "run", "--device", "hpu", "--workload", "blender-finetune", "--preset", "tiny",
                          "--steps", "1", "--warmup", "0", "--repeats", "1", "--sample-hz", "0", "--out", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=900)
    assert "Traceback" not in ran.stderr and "Stock PyTorch" in ran.stdout + ran.stderr


def test_the_lazy_fake_runs_its_graph_at_a_host_read_as_the_bridge_does():
    """A value read on the host (.item(), .tolist(), .cpu()) runs the graph queued before it (bridge 1.19
    habana_kernels/lazy_kernels.cpp _local_scalar_dense_hpu_lazy: "Trigger point execution"): three graphs
    here. 0.1's fake closed a graph only at a sync, and counted one."""
    from fakes import shape_counting_backend

    b = shape_counting_backend()
    with b.queue:
        x = torch.ones(4) * 2
        total = x.sum().item()
        (x + total).tolist()
        (x - 1).cpu()
        b.synchronize()
    assert [[op[0] for op in g] for g in b.graphs] == [["ones", "mul", "sum"], ["add"], ["sub"]]


def test_the_card_is_found_by_its_device_nodes_minor_number_not_taken_as_the_hlml_index(habana, pyhlml):
    """A container given two of a host's cards: HLML enumerates them 0 and 1, their nodes keep the host's
    numbers, accel4 and accel5 (habana-pyhlml 1.24 hlmlDeviceGetMinorNumber: the node file's number). 0.1
    took node 5 as HLML index 5, a card HLML does not have, and watched nothing."""
    inside = [dict(CARDS[i], index=i, minor=4 + i, module_id=4 + i) for i in range(2)]
    pyhlml(cards=inside)
    habana.setenv("FAKE_HPU_CARDS", json.dumps([{k: c[k] for k in ("index", "module_id", "minor")} for c in inside]))
    habana.setenv("HLS_MODULE_ID", "5")
    b = backend_for(hpu_mode="lazy")
    d = b.describe()
    assert (d["card_index"], d["card_node"], d["module_id"]) == (1, 5, 5)
    assert b.collector_specs()[-1] == {"name": "habana", "devices": [{"index": 1}]}



def test_the_bridges_autocast_lists_are_recorded_and_files_replace_them(habana, tmp_path):
    """bridge 1.19 hpu_ops/autocast_helpers.h: bf16 autocast lowers softmax, log_softmax and layer_norm (CUDA
    keeps them in fp32); a file named by PT_HPU_AUTOCAST_LOWER_PRECISION_OPS_LIST (or 1.19's deprecated
    FP32_LIST for the other list) replaces a list, one op a line; an unreadable one leaves the default."""
    a = backend_for(hpu_mode="lazy").arithmetic()
    assert {"softmax", "log_softmax", "layer_norm", "mul", "mean"} <= set(a["autocast_lower_ops"])
    assert {"embedding", "div", "exp", "pow"} <= set(a["autocast_fp32_ops"]) and "default" in a["autocast_source"]
    lower = tmp_path / "lower.txt"
    lower.write_text("linear\nmatmul\n")
    habana.setenv("PT_HPU_AUTOCAST_LOWER_PRECISION_OPS_LIST", str(lower))
    habana.setenv("FP32_LIST", str(tmp_path / "missing.txt"))
    forget("habana_frameworks")
    a = backend_for(hpu_mode="lazy").arithmetic()
    assert a["autocast_lower_ops"] == ["linear", "matmul"] and f"PT_HPU_AUTOCAST_LOWER_PRECISION_OPS_LIST={lower}" \
        in a["autocast_source"]
    assert "embedding" in a["autocast_fp32_ops"] and "could not be read" in a["autocast_source"]
