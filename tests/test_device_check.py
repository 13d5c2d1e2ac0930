"""benchmarks/device_check.py's checks, on the fakes where no device is at hand: the NVIDIA ones against
the fake nvidia-ml-py and a fake nvidia-smi, the Gaudi ones against the fake bridge and habana-pyhlml."""

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
from conftest import cpu_backend
from test_hpu import CARDS, habana, pyhlml  # noqa: F401 - fixtures
from test_serving_devices import gaudi_box  # noqa: F401 - a fixture
from test_nvidia import UUIDS, fake_cuda, gpu, nvml, write_tool  # noqa: F401 - fixtures

from bench.devices.cuda.backend import CudaBackend
from bench.devices.options import DeviceOptions

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dc():
    spec = importlib.util.spec_from_file_location("device_check", ROOT / "benchmarks" / "device_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["device_check"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def row(util, parity="same"):
    return {"workload": "w", "precision": "fp32", "util": util, "parity": parity}


def test_an_accelerator_row_without_a_utilization_sample_fails_the_check(dc):
    assert dc.problems([row(None)], [], accelerator=True) == ["w fp32: no utilization sample: telemetry did not "
                                                              "watch the card"]
    assert dc.problems([row(None)], [], accelerator=False) == []  # the CPU has no utilization to sample
    assert dc.problems([row(80.0)], [dc.fact("oom", "not recognised", False)], True) == ["oom: not recognised"]
    assert dc.problems([row(80.0, parity="loss differs")], [], True) == ["w fp32: parity loss differs"]
    assert dc.problems([], [], False) == ["no check ran"]


def test_the_oom_check_provokes_and_recognises_an_out_of_memory(dc):
    f = dc.check_oom(cpu_backend())
    assert f["ok"] is True and f["check"] == "oom"


def cuda_backend(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    b = CudaBackend(DeviceOptions(device="cuda"))
    b.prepare()
    return b


@pytest.mark.parametrize("processes,container,ok,said", [
    (["me"], True, True, "our PID not among them (another PID namespace); bench: unknown"),
    (["me"], False, True, "our PID among them; bench: 0 other(s)"),
    (["me", 4242], True, False, "bench: 1 other(s)")])
def test_the_process_check_compares_nvmls_pids_with_ours(dc, fake_cuda, nvml, monkeypatch,  # noqa: F811
                                                         processes, container, ok, said):
    pids = [os.getpid() if p == "me" else p for p in processes]
    nvml([gpu(2, processes=pids)], container=container)  # CUDA ordinal 0 is UUIDS[2]
    f = dc.check_processes(cuda_backend(monkeypatch))
    assert f["ok"] is ok and said in f["result"]


@pytest.mark.parametrize("listed,ok", [(UUIDS[2], True), (UUIDS[3], False)])
def test_the_uuid_check_looks_for_ours_in_nvidia_smi_list(dc, fake_cuda, nvml, monkeypatch, tmp_path,  # noqa: F811
                                                          listed, ok):
    nvml([gpu(2)])
    write_tool(tmp_path, "nvidia-smi", f"echo 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: {listed})'")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    f = dc.check_uuid(cuda_backend(monkeypatch))
    assert f["ok"] is ok and UUIDS[2] in f["result"]


def test_the_peak_check_names_the_entry_the_device_matched(dc, fake_cuda, nvml, monkeypatch):  # noqa: F811
    nvml([gpu(2)])
    f = dc.check_peak(cuda_backend(monkeypatch), "bf16")
    assert f["ok"] is True and "989.4 TFLOP/s bf16" in f["result"] and "H100 SXM" in f["result"]


def test_a_gaudi_card_is_pinned_and_the_card_acquired_is_checked(dc, habana, pyhlml):  # noqa: F811
    from bench.devices.hpu.backend import HpuBackend
    from bench.devices.hpu.spec import SPEC, HpuOptions

    pyhlml()
    habana.setenv("FAKE_HPU_CARDS", json.dumps([{"index": c["index"], "module_id": c["module_id"]} for c in CARDS]))
    assert "lowest idle" in dc.pin_card(SPEC) and os.environ["HLS_MODULE_ID"] == "2"  # 0.1 pinned nothing
    b = HpuBackend(DeviceOptions(device="hpu"), HpuOptions.build({"hpu_mode": "lazy"}))
    b.prepare()
    f = dc.check_uuid(b)
    assert f["ok"] is True and f["result"] == "card 1 (module 2; asked for 2)"
    assert b.collector_specs()[-1] == {"name": "habana", "devices": [{"index": 1}]}  # telemetry has a card


@pytest.mark.slow
def test_the_gather_check_runs_two_ranks_on_cpu(dc):
    from bench.devices.cpu.spec import SPEC

    f = dc.check_gather("cpu", SPEC)
    assert f["ok"] is True, f["result"]


def test_the_autocast_row_judges_the_dtypes_against_the_lists_recorded(dc):
    from bench.devices.cuda.autocast import autocast_lists as cuda_lists
    from bench.devices.hpu.autocast import autocast_lists as hpu_lists

    gaudi = {"softmax": "bfloat16", "log_softmax": "bfloat16", "layer_norm": "bfloat16", "linear": "bfloat16"}
    assert dc.judge_autocast(gaudi, hpu_lists({}))["ok"] is True
    f = dc.judge_autocast(gaudi, cuda_lists())  # CUDA keeps softmax, log_softmax and layer_norm in fp32
    assert f["ok"] is False and "softmax, log_softmax, layer_norm" in f["result"]
    assert dc.judge_autocast(gaudi, None)["ok"] is None


def test_the_hlml_row_compares_the_cards_node_with_its_minor_number(dc, habana, pyhlml):  # noqa: F811
    from bench.devices.hpu.backend import HpuBackend
    from bench.devices.hpu.spec import HpuOptions

    inside = [dict(c, index=i, minor=4 + i) for i, c in enumerate(CARDS[:2])]
    pyhlml(cards=inside)
    habana.setenv("FAKE_HPU_CARDS", json.dumps([{k: c[k] for k in ("index", "module_id", "minor")} for c in inside]))
    habana.setenv("HLS_MODULE_ID", str(inside[1]["module_id"]))
    b = HpuBackend(DeviceOptions(device="hpu"), HpuOptions.build({"hpu_mode": "lazy"}))
    b.prepare()
    f = dc.check_hlml_minor(b)
    assert f["ok"] is True and f["result"] == "node 5; HLML index 1 has minor number 5"


def test_the_rows_only_a_gpu_or_gaudi_settles_say_n_a_elsewhere(dc):
    from bench.devices.cpu.spec import SPEC

    b = cpu_backend()
    assert [dc.check_hlml_minor(b)["ok"], dc.check_own_server(b)["ok"], dc.check_warmup("cpu", SPEC)["ok"]] == \
        [None, None, None]
    assert [f["ok"] for f in dc.serving_checks("cpu", SPEC)] == [None, None]


def test_the_served_card_row_runs_bench_serve_on_a_one_card_gaudi_and_watches_its_card(dc, gaudi_box):  # noqa: F811
    """The fake Gaudi of tests/test_serving_devices.py, one card: the row's `bench run --engine http` completes,
    holding no card, and reports the card bench serve said it used, with its utilization and energy."""
    from bench.devices import registry

    gaudi_box(1)
    f = dc.check_served_card("fakehpu", registry.spec("fakehpu"))
    assert f["ok"] is True, f["result"]
    assert f["result"].startswith("index 0 (said by bench serve") and "watched hpu0" in f["result"]


def test_the_hpu_graphs_row_counts_replays_and_compiles_while_serving(dc, gaudi_box):  # noqa: F811
    """On the fake bridge (a CPU cannot replay a graph's ops: a replay returns the captured outputs, so the tokens
    differ there, as they would on a device whose replays were wrong): every decode step a replay, none compiled."""
    from bench.devices import registry

    gaudi_box(1)
    f = dc.check_hpu_graphs("fakehpu", registry.spec("fakehpu"))
    assert "HPU-graph replays, the Python forward run 0 times, 0 graph(s) compiled" in f["result"], f["result"]
    assert f["ok"] is False and "NOT as without graphs" in f["result"]
    assert dc.judge_hpu_graphs(["True", "20", "0", "0", "True"])["ok"] is True
    assert dc.judge_hpu_graphs(["True", "20", "20", "0", "True"])["ok"] is False  # the forward ran: no replay
    assert dc.judge_hpu_graphs([], "Traceback")["ok"] is False
