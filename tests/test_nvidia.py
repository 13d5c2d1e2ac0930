"""cuda backend and NVIDIA collectors against fakes: a fake pynvml raising the real error classes'
shapes, fake nvidia-smi / hl-smi executables on PATH printing captured text, a fake torch.cuda."""

import json
import os
import re
import sys
import time
import types
from pathlib import Path

import pytest
import torch
from conftest import measure, sampled, wait_until
from fakes import CountingWorkload, logging_clock

from bench.devices.collectors import CollectorUnavailable
from bench.devices.registry import build_collector
from bench.devices.cuda.backend import CudaBackend
from bench.devices.options import DeviceOptions
from bench.devices.cuda.peaks import cuda_peak
from bench.devices.hpu.peaks import hpu_peak
from bench.measure.runner import Measurement
from bench.measure.sampler import Sampler

FIX = Path(__file__).parent / "fixtures"


VENDOR = str(Path(__file__).parent / "fake_vendor")
UUIDS = ["GPU-aaaaaaaa-0000-0000-0000-000000000000", "GPU-bbbbbbbb-0000-0000-0000-000000000000",
         "GPU-cccccccc-0000-0000-0000-000000000000", "GPU-dddddddd-0000-0000-0000-000000000000"]
MIG = "MIG-eeeeeeee-0000-0000-0000-000000000000"


def gpu(index, **over):
    g = {"index": index, "uuid": UUIDS[index], "name": "NVIDIA H100 80GB HBM3", "util": 97, "mem_util": 40,
         "mem_used": 20 * 2**30, "mem_total": 80 * 2**30, "power_mw": 650_000, "energy_mj": 1_234_000, "temp": 61,
         "clock_mhz": 1980, "reasons": 0x20, "mig_mode": 0, "processes": []}
    g.update(over)
    return g


@pytest.fixture
def nvml(monkeypatch):
    """The fake nvidia-ml-py (tests/fake_vendor/pynvml.py), here and in subprocesses."""

    def use(gpus=None, lib=True, lacks=(), container=False):
        monkeypatch.setenv("FAKE_PYNVML", json.dumps({"lib": lib, "lacks": list(lacks), "container": container,
                                                      "gpus": gpus if gpus is not None else [gpu(0)]}))
        monkeypatch.syspath_prepend(VENDOR)
        monkeypatch.delitem(sys.modules, "pynvml", raising=False)
        import pynvml as fake

        return fake

    yield use
    sys.modules.pop("pynvml", None)


def test_nvml_sample_maps_units(nvml):
    nvml()
    c = build_collector({"name": "nvml", "devices": [{"uuid": UUIDS[0]}]})
    s = c.sample()
    assert c.source == "nvidia-ml-py"
    assert s["gpu0.util_percent"] == 97.0 and s["gpu0.mem_used_bytes"] == 20 * 2**30
    assert s["gpu0.power_w"] == 650.0 and s["gpu0.energy_j"] > 1234.0
    assert s["gpu0.temp_c"] == 61 and s["gpu0.sm_clock_hz"] == 1980e6 and s["gpu0.throttle_reasons"] == 0x20
    assert c.sources()["gpu0"] == {"role": "accelerator", "device": "cuda", "index": 0, "uuid": UUIDS[0],
                                   "name": "NVIDIA H100 80GB HBM3", "mig": False}


def test_nvml_not_supported_is_null_and_not_asked_again(nvml):
    fake = nvml([gpu(0, not_supported=["energy", "power"])])
    c = build_collector({"name": "nvml", "devices": [{"index": 0}]})
    s1, s2 = c.sample(), c.sample()
    assert s1["gpu0.energy_j"] is None and s1["gpu0.power_w"] is None and s2["gpu0.util_percent"] == 97.0
    assert fake.CALLS.count("nvmlDeviceGetPowerUsage") == 1 and fake.CALLS.count("nvmlDeviceGetTotalEnergyConsumption") == 1


def test_a_driver_without_clock_event_reasons_falls_back_to_throttle_reasons(nvml):
    fake = nvml([gpu(0, reasons=0x40)], lacks=["nvmlDeviceGetCurrentClocksEventReasons"])
    c = build_collector({"name": "nvml", "devices": [{"index": 0}]})
    assert c.sample()["gpu0.throttle_reasons"] == 0x40  # 0.1: None for the whole run
    assert c.sample()["gpu0.throttle_reasons"] == 0x40
    assert fake.CALLS.count("nvmlDeviceGetCurrentClocksEventReasons") == 1  # asked once, then the older call


def test_permission_errors_are_null_not_failures(nvml):
    nvml([gpu(0, no_permission=["processes", "temp"])])
    c = build_collector({"name": "nvml", "devices": [{"index": 0}]})
    s = c.sample()
    assert s["gpu0.processes"] is None and s["gpu0.temp_c"] is None and s["gpu0.util_percent"] == 97.0


def test_other_processes_on_the_card_are_counted(nvml):
    nvml([gpu(0, processes=[os.getpid(), 999_999])])
    c = build_collector({"name": "nvml", "devices": [{"index": 0}], "own_pid": os.getpid()})
    s = c.sample()
    assert s["gpu0.processes"] == 2 and s["gpu0.other_processes"] == 1


def test_mig_is_detected_and_labelled(nvml):
    nvml([gpu(0, mig_mode=1, migs=[{"uuid": MIG, "mem_used": 5 * 2**30, "mem_total": 10 * 2**30}])])
    c = build_collector({"name": "nvml", "devices": [{"uuid": MIG}]})
    s = c.sample()
    assert s["gpu0.util_percent"] is None  # not supported on MIG
    assert s["gpu0.mem_total_bytes"] == 10 * 2**30  # the instance's memory
    assert s["gpu0.power_w"] == 650.0  # the whole GPU's, labelled so
    assert c.sources()["gpu0"]["mig"] is True and c.sources()["gpu0"]["uuid"] == MIG


def test_a_handle_lookup_error_neither_fails_workloads_nor_bench_list(fake_cuda, nvml, monkeypatch, capsys,
                                                                       no_accelerators):
    nvml([gpu(3)])  # the GPU torch reports is not one NVML knows: every handle lookup fails
    monkeypatch.delitem(sys.modules, "pynvml")
    import pynvml  # noqa: F401 - the fake, back after no_accelerators hid it

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # fake_cuda's GPUs, which no_accelerators hid
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    b = CudaBackend(DeviceOptions(device="cuda"))
    b.prepare()
    assert b.energy_meter() is None  # no counter, not a failed workload (0.1: the exception failed it)
    from bench import cli

    assert cli.cli(["list", "--json"]) == 0  # 0.1: a traceback
    nvml_row = {c["collector"]: c for c in json.loads(capsys.readouterr().out)["collectors"]}["nvml"]
    assert nvml_row["usable"] is False and "no handle" in nvml_row["reason"]


def test_a_handle_lookup_error_falls_back_to_nvidia_smi(nvml, monkeypatch, tmp_path):
    nvml([gpu(0)])
    write_tool(tmp_path, "nvidia-smi", "echo 'index, uuid, utilization.gpu [%], power.draw [W]'; "
                                       "echo '7, GPU-99999999-0000-0000-0000-000000000000, 50, 300'")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    c = build_collector({"name": "nvml", "devices": [{"uuid": "GPU-99999999-0000-0000-0000-000000000000"}]})
    assert c.source == "nvidia-smi" and "no handle" in c.fallback_reasons[0]  # 0.1: unavailable, no fall-back
    assert c.sample() == {"gpu7.util_percent": 50.0, "gpu7.power_w": 300.0}


def write_tool(dirpath: Path, name: str, body: str) -> None:
    tool = dirpath / name
    tool.write_text("#!/bin/sh\n" + body + "\n")
    tool.chmod(0o755)


def test_nvml_missing_library_falls_back_to_nvidia_smi(nvml, monkeypatch, tmp_path):
    nvml(lib=False)
    write_tool(tmp_path, "nvidia-smi", "echo 'index, name, utilization.gpu [%], memory.used [MiB], power.draw [W]'; "
                                       "echo '0, NVIDIA H100 80GB HBM3, 100, 19818, 631.95'")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    c = build_collector({"name": "nvml", "indices": [0]})
    assert c.source == "nvidia-smi" and "Shared Library Not Found" in c.fallback_reasons[0]
    s = c.sample()
    assert s["gpu0.util_percent"] == 100.0 and s["gpu0.power_w"] == 631.95 and s["gpu0.mem_used_bytes"] == 19818 * 2**20


NODRIVER = str(Path(__file__).parent / "fake_nodriver")


@pytest.fixture
def no_gaudi_driver(monkeypatch):
    """pyhlml that finds no libhlml.so, in this process and in the sampler's (tests/fake_nodriver)."""
    monkeypatch.syspath_prepend(NODRIVER)
    monkeypatch.delitem(sys.modules, "pyhlml", raising=False)
    monkeypatch.setenv("PYTHONPATH", f"{NODRIVER}:{os.environ.get('PYTHONPATH', '')}")


def test_hl_smi_fallback_with_captured_output(monkeypatch, tmp_path, no_gaudi_driver):
    write_tool(tmp_path, "hl-smi", f"cat {FIX / 'smi' / 'hl-smi-hl205-nounits.csv'} | sed '1s/^/index, /; 2s/^/0, /'")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    c = build_collector({"name": "habana", "indices": [0]})  # pyhlml finds no libhlml.so here
    assert c.source == "hl-smi" and "hlmlInit failed" in c.fallback_reasons[0]
    assert c.sample() == {"hpu0.util_percent": 15.0, "hpu0.mem_used_bytes": 512 * 2**20,
                          "hpu0.mem_total_bytes": 32768 * 2**20, "hpu0.power_w": 103.0, "hpu0.temp_c": 36.0}
    assert c.sources() == {"hpu0": {"role": "accelerator", "device": "hpu", "index": 0}}


@pytest.mark.parametrize("body,reason", [("sleep 600", "did not answer within"), ("echo 'garbage!'", "no CSV header"),
                                         ("echo boom >&2; exit 3", "exited 3")])
@pytest.mark.slow
def test_a_hanging_or_garbled_tool_is_bounded_and_explained(monkeypatch, tmp_path, body, reason, no_gaudi_driver):
    write_tool(tmp_path, "hl-smi", body)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    start = time.monotonic()
    with pytest.raises(CollectorUnavailable, match=reason):
        build_collector({"name": "habana", "indices": [0]})
    assert time.monotonic() - start < 300  # bounded (2 s): far below the tool's 600 s, far above any loaded machine


@pytest.mark.slow
def test_sampler_goes_on_when_a_collector_is_unavailable(monkeypatch, tmp_path, no_gaudi_driver):
    write_tool(tmp_path, "hl-smi", "sleep 30")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    s = Sampler(20, time.monotonic_ns()).start([{"name": "host", "pid": os.getpid()}, {"name": "habana", "indices": [0]}])
    wait_until(lambda: sampled(s, collector="habana"), "a sample after the hanging tool gave up")  # 2 s, or more
    status, samples, _ = s.stop()
    assert status["habana"]["available"] is False and "did not answer" in status["habana"]["reason"]
    assert status["host"]["available"] and samples


class CUuuid:
    """torch._C._CUuuid: str() is the hex UUID without NVML's "GPU-" prefix (torch/csrc/cuda/Module.cpp)."""

    def __init__(self, nvml_uuid):
        self.text = nvml_uuid.removeprefix("GPU-").removeprefix("MIG-")

    def __str__(self):
        return self.text


# CUDA enumerates fastest first by default, NVML by PCI bus: here CUDA ordinal 0 is NVML index 2
CUDA_ORDER = [UUIDS[2], UUIDS[0]]


@pytest.fixture
def fake_cuda(monkeypatch):
    log = []
    cuda = torch.cuda

    def props(i=0):
        return types.SimpleNamespace(name="NVIDIA H100 80GB HBM3", major=9, minor=0, total_memory=80 * 2**30,
                                     uuid=CUuuid(CUDA_ORDER[i]))

    for name, value in {"is_available": lambda: True, "device_count": lambda: 2, "set_device": lambda i: log.append(f"set{i}"),
                        "synchronize": lambda device=None: log.append("sync" if device == "cuda:1" else f"sync {device}"), "get_device_name": lambda i=0: props(i).name,
                        "get_device_properties": props, "max_memory_allocated": lambda *a: 5 * 2**30,
                        "max_memory_reserved": lambda *a: 6 * 2**30,
                        "reset_peak_memory_stats": lambda *a: log.append("reset")}.items():
        monkeypatch.setattr(cuda, name, value)
    return log


def test_cuda_backend_syncs_before_every_clock_read(fake_cuda, monkeypatch, tmp_path):
    b = CudaBackend(DeviceOptions(device="cuda"), local_rank=1)
    b.prepare()
    assert fake_cuda[-1] == "set1" and b.device_str() == "cuda:1"
    logging_clock(monkeypatch, fake_cuda)
    result = Measurement(CountingWorkload(backend=b, log=fake_cuda), b, measure(steps=3, warmup=1)).run().result
    assert result.status == "ok"
    for i, e in enumerate(fake_cuda):
        if e == "clock":  # synced on rank 1's GPU by name: the current device is per thread
            assert fake_cuda[i - 1] == "sync"
    assert result.memory.device_peak_bytes == 5 * 2**30
    peak, source = b.peak_flops("bf16")
    assert peak == pytest.approx(989.4e12) and "H100 Tensor Core GPU datasheet" in source
    d = b.describe()
    assert d["capability"] == "9.0" and d["tf32_matmul"] is False  # torch's default


def test_cuda_peak_follows_the_tf32_setting(fake_cuda, monkeypatch, tmp_path):
    b = CudaBackend(DeviceOptions(device="cuda"))
    b.prepare()
    matmul = torch.backends.cuda.matmul  # a module-like object: its flags are set, not patched
    try:
        matmul.allow_tf32 = True
        assert b.describe()["tf32_matmul"] is True
        peak, source = b.peak_flops("fp32")
        assert peak == pytest.approx(494.7e12) and source.endswith("dense (H100 SXM, tf32)")
    finally:
        matmul.allow_tf32 = False
    assert b.peak_flops("fp32")[0] == pytest.approx(67e12)


@pytest.mark.parametrize("override,cublas,tf32,mode,peak", [
    (None, None, True, "tf32", 494.7e12), ("0", None, True, "ieee", 67e12),  # cuBLAS runs IEEE whatever torch asks
    ("1", None, False, "ieee", 67e12), (None, "1", False, "tf32", 494.7e12), ("0", "1", False, "ieee", 67e12)])
def test_the_mfu_peak_follows_the_matmul_precision_that_ran(fake_cuda, monkeypatch, override, cublas, tf32, mode, peak):
    """NVIDIA_TF32_OVERRIDE=0 makes cuBLAS run IEEE fp32 whatever torch asks; TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1
    starts torch with TF32 matmuls on (pytorch#77114). 0.1 divided an IEEE run's FLOPs by TF32's peak (7x low)."""
    for var, value in (("NVIDIA_TF32_OVERRIDE", override), ("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", cublas)):
        if value is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, value)
    b = CudaBackend(DeviceOptions(device="cuda"))
    b.prepare()
    matmul = torch.backends.cuda.matmul
    try:
        matmul.allow_tf32 = tf32
        assert b.peak_flops("fp32")[0] == pytest.approx(peak)
        a = b.arithmetic()
        assert a["matmul_fp32"] == mode and b.describe()["matmul_fp32"] == mode
    finally:
        matmul.allow_tf32 = False
    assert {"softmax", "log_softmax", "layer_norm", "group_norm"} <= set(a["autocast_fp32_ops"])
    assert "linear" in a["autocast_lower_ops"] and "softmax" not in a["autocast_lower_ops"]


def test_a_rank_is_watched_by_the_uuid_torch_reports_not_by_its_ordinal(fake_cuda, nvml, monkeypatch):
    nvml([gpu(i, util=10 * i) for i in range(4)])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    b = CudaBackend(DeviceOptions(device="cuda"), local_rank=0)
    b.prepare()
    assert b.collector_specs()[-1] == {"name": "nvml", "devices": [{"uuid": UUIDS[2]}]}  # 0.1: index 0
    c = build_collector(b.collector_specs()[-1])
    assert c.sample()["gpu2.util_percent"] == 20.0  # the GPU this rank computes on
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{UUIDS[2]},{UUIDS[0]}")  # UUIDs in the variable: 0.1 fell back to 0/1
    b = CudaBackend(DeviceOptions(device="cuda"), local_rank=1)
    b.prepare()
    assert b.identity() == {"uuid": UUIDS[0]}
    assert b.energy_meter()() > 1234.0  # the counter of that GPU, read in-process


def test_a_mig_instance_in_cuda_visible_devices_is_watched_as_one(fake_cuda, nvml, monkeypatch):
    nvml([gpu(0, mig_mode=1, migs=[{"uuid": MIG, "mem_used": 2**30, "mem_total": 10 * 2**30}])])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", MIG)
    b = CudaBackend(DeviceOptions(device="cuda"), local_rank=0)
    b.prepare()
    assert b.identity() == {"uuid": MIG} and b.describe()["mig"] is True


def test_tf32_is_read_through_the_new_api_once_it_was_used():
    matmul = torch.backends.cuda.matmul
    if not hasattr(matmul, "fp32_precision"):
        pytest.skip("torch < 2.9: no fp32_precision API")
    from bench.devices.cuda.backend import tf32_matmul

    before = matmul.fp32_precision
    try:
        matmul.fp32_precision = "tf32"  # as transformers' TF32 helper does on torch >= 2.9
        with pytest.raises(RuntimeError, match="mix of the legacy and new APIs"):
            matmul.allow_tf32  # what 0.1 read: it raises  # noqa: B018
        assert tf32_matmul(torch) is True
        matmul.fp32_precision = "ieee"
        assert tf32_matmul(torch) is False
    finally:
        matmul.fp32_precision = before


def test_cuda_fp16_training_gets_a_grad_scaler(fake_cuda, tmp_path):
    b = CudaBackend(DeviceOptions(device="cuda"))
    b.prepare()
    assert b.grad_scaler("fp16") is not None and b.grad_scaler("bf16") is None


@pytest.mark.parametrize("name,precision,tf32,expected", [
    ("Tesla P100-PCIE-16GB", "fp32", False, 9.3e12), ("Tesla P100-SXM2-16GB", "fp16", False, 21.2e12),
    ("Tesla V100-SXM2-32GB", "fp16", False, 125e12), ("Tesla V100-PCIE-16GB", "fp32", False, 14e12),
    ("Tesla V100S-PCIE-32GB", "fp32", False, 16.4e12), ("Tesla V100S-PCIE-32GB", "fp16", False, 130e12),
    ("Tesla T4", "fp16", False, 65e12), ("NVIDIA A10", "bf16", False, 125e12), ("NVIDIA L4", "bf16", False, 121e12),
    ("NVIDIA L40S", "bf16", False, 362.05e12), ("NVIDIA L40", "bf16", False, 181.05e12),
    ("NVIDIA L40", "fp32", True, 90.5e12), ("NVIDIA A100-SXM4-80GB", "fp32", True, 156e12),
    ("NVIDIA A100-SXM4-80GB", "fp32", False, 19.5e12), ("NVIDIA A100 80GB PCIe", "bf16", False, 312e12),
    ("NVIDIA H100 PCIe", "bf16", False, 756e12), ("NVIDIA H100 80GB HBM3", "bf16", False, 989.4e12),
    ("NVIDIA H200", "bf16", False, 989.4e12), ("NVIDIA H200 NVL", "bf16", False, 835e12),
    ("NVIDIA B200", "bf16", False, 2250e12),
    ("Tesla P100-PCIE-16GB", "bf16", False, None), ("NVIDIA Mystery 9000", "fp32", False, None),
    ("NVIDIA RTX A1000", "bf16", False, None), ("NVIDIA GH200 480GB", "bf16", False, None),
    ("NVIDIA A10G", "bf16", False, None),
])
def test_cuda_peak_table(name, precision, tf32, expected):
    """Every figure names its document; V100S is not a V100 PCIe, RTX A1000 not an A100, GH200 not an H200."""
    peak, source = cuda_peak(name, precision, tf32)
    key = "tf32" if tf32 else precision
    if expected:
        assert peak == pytest.approx(expected)
        assert "datasheet" in source or "specifications" in source
        assert re.search(r"\b(19|20)\d\d\b", source) and source.endswith(f", {key})")  # document and date
    elif name.endswith(("Mystery 9000", "RTX A1000")):
        assert peak is None and source == f"{name!r} is not in the peak table; pass --peak-tflops"
    elif name.endswith(("GH200 480GB", "A10G")):
        assert peak is None and "--peak-tflops" in source and source.startswith(f"no peak for {name}: ")
    else:
        assert peak is None and source == f"no {key} peak listed for {name}"


def test_every_peak_table_entry_names_its_source():
    from bench.devices.cuda.peaks import CUDA_PEAKS
    from bench.devices.hpu.peaks import HPU_PEAKS

    for _, _, table, source in CUDA_PEAKS:
        assert source and (table is None or re.search(r"\b(19|20)\d\d\b", source))
    for table, source in HPU_PEAKS.values():
        assert source and (table is None or re.search(r"\b(19|20)\d\d\b", source))


def test_hpu_peak_table():
    assert hpu_peak("GAUDI3", "bf16")[0] == 1835e12 and "white paper (April 2024)" in hpu_peak("GAUDI3", "bf16")[1]
    peak, reason = hpu_peak("GAUDI", "bf16")
    assert peak is None and "--peak-tflops" in reason and "first-generation" in reason


# ---- process identity across PID namespaces --------------------------------------------------------------

def test_in_a_container_our_own_host_pid_is_unknown_not_another_job(nvml):
    nvml([gpu(0, processes=[os.getpid()])], container=True)  # NVML gives the host's PID for our worker
    c = build_collector({"name": "nvml", "devices": [{"index": 0}], "own_pid": os.getpid()})
    s = c.sample()
    assert s["gpu0.processes"] == 1 and s["gpu0.other_processes"] is None  # 0.1: 1, so every run was contended


def test_in_a_container_more_processes_than_ours_are_others(nvml):
    nvml([gpu(0, processes=[os.getpid(), 4242, 4343])], container=True)
    c = build_collector({"name": "nvml", "devices": [{"index": 0}], "own_pid": os.getpid()})
    assert c.sample()["gpu0.other_processes"] == 2  # at most one of three is ours


def test_once_nvml_lists_our_pid_every_other_pid_is_another_job(nvml):
    nvml([gpu(0, processes=[os.getpid(), 1 << 23])])  # ours seen: NVML speaks our namespace
    c = build_collector({"name": "nvml", "devices": [{"index": 0}], "own_pid": os.getpid()})
    assert c.sample()["gpu0.other_processes"] == 1


SERVER = 4242  # a local server's PID as the run found it (by its port) or as the user named it


def test_a_server_the_run_claims_on_its_gpu_is_not_another_job(nvml):
    """A local --endpoint server (vLLM, TGI, bench serve) on the run's GPU, found by its port: NVML lists the
    worker and the server. 0.1 counted the server as another job: contended, every verdict withheld."""
    nvml([gpu(0, processes=[os.getpid(), SERVER])])
    c = build_collector({"name": "nvml", "devices": [{"index": 0}], "own_pid": os.getpid()})
    assert c.sample()["gpu0.other_processes"] == 1  # before the run claims it
    c.claim([SERVER], on_device=1)
    assert c.sample()["gpu0.other_processes"] == 0
    spec = {"name": "nvml", "devices": [{"index": 0}], "own_pid": os.getpid(), "own_pids": [SERVER],
            "own_on_device": 1}
    assert build_collector(spec).sample()["gpu0.other_processes"] == 0  # a claim made before the watch


def test_in_a_container_the_claimed_server_leaves_the_count_unknown_and_a_third_process_is_another_job(nvml):
    """In a container NVML gives host PIDs (tests/fake_vendor/pynvml.py: pid + HOST_PID_OFFSET): neither the
    worker's nor the server's is one the run can see. The worker and the server it claimed on the GPU may
    both be listed: two processes are unknown, a third is another job's. 0.1: one other, contended."""
    nvml([gpu(0, processes=[os.getpid(), SERVER])], container=True)
    c = build_collector({"name": "nvml", "devices": [{"index": 0}], "own_pid": os.getpid()})
    assert c.sample()["gpu0.other_processes"] == 1
    c.claim([SERVER], on_device=1)
    assert c.sample()["gpu0.other_processes"] is None
    nvml([gpu(0, processes=[os.getpid(), SERVER, 4343])], container=True)
    c = build_collector({"name": "nvml", "devices": [{"index": 0}], "own_pid": os.getpid(), "own_pids": [SERVER],
                         "own_on_device": 1})
    assert c.sample()["gpu0.other_processes"] == 1


def test_a_pid_named_as_nvml_lists_it_is_ours_in_a_container(nvml):
    """A user who names the server's PID as the host (and NVML) knows it: that listed PID is the run's own,
    and the one left may be our worker (unknown, not another job)."""
    fake = nvml([gpu(0, processes=[os.getpid(), SERVER])], container=True)
    c = build_collector({"name": "nvml", "devices": [{"index": 0}], "own_pid": os.getpid(),
                         "own_pids": [SERVER + fake.HOST_PID_OFFSET]})
    assert c.sample()["gpu0.other_processes"] is None


def test_a_claim_travels_from_the_repeat_through_the_launcher_to_the_collectors(tmp_path):
    """Measurement.claim -> the sink's `own` (the worker's event) -> the launcher -> the sampler's `own`
    command -> every collector's claim; a watch opened later carries it; the next repeat claims anew."""
    from conftest import run_config

    from bench.launch.launcher import Launcher
    from bench.measure.runner import NullSink
    from bench.measure.sampler import _claim

    told, sent = [], []

    class Sink(NullSink):
        def own(self, pids, on_device):
            told.append((pids, on_device))

    m = Measurement(CountingWorkload(backend=None), None, measure(), sink=Sink())
    m.claim([SERVER, SERVER], on_device=1)
    assert m.own_pids == (SERVER,) and told == [((SERVER,), 1)]  # its CPU is the run's too (HostSnapshot)

    class Recorder:
        def watch(self, spec):
            sent.append(("watch", spec))

        def own(self, pids, on_device):
            sent.append(("own", list(pids), on_device))

    launcher = Launcher(run_config("--device", "cpu", "--out", tmp_path))
    launcher.sampler = Recorder()
    nvml_spec = {"name": "nvml", "devices": [{"index": 0}]}
    launcher.on_event({"event": "started", "rank": 0, "watch": [nvml_spec]})
    launcher.on_event({"event": "own", "rank": 0, "pids": [SERVER], "on_device": 1})
    launcher.on_event({"event": "started", "rank": 0, "watch": [{"name": "nvml", "devices": [{"index": 1}]}]})
    assert sent[0] == ("watch", {**nvml_spec, "own_pid": os.getpid(), "own_pids": [], "own_on_device": 0})
    assert sent[1] == ("own", [SERVER], 1) and sent[2] == ("own", [], 0)  # the next repeat's worker claims anew

    class Collector:
        def claim(self, pids, on_device=0):
            told.append(("collector", pids, on_device))

    _claim({"pids": [SERVER, "x", True], "on_device": 1}, {"nvml": Collector()})
    assert told[-1] == ("collector", [SERVER], 1)


def test_each_repeat_is_judged_by_its_accelerators_own_process_list(tmp_path):
    """Another job on the GPU during repeat 0's measured steps (NVML listed it), none during repeat 1's: repeat 0
    is contended by the device's own count, and --target-ci would redo it (derive.repeat_flags)."""
    from conftest import run_config

    from bench.launch.launcher import Launcher
    from bench.model.derive import repeat_flags
    from bench.model.report import Phase, Repeat, Result, Timing

    class Samples:
        def since(self):
            return [{"t": 1.5, "gpu0.other_processes": 1}, {"t": 2.5, "gpu0.other_processes": 3},  # between
                    {"t": 3.5, "gpu0.other_processes": 0}, {"t": 3.6, "gpu0.other_processes": None}]

    launcher = Launcher(run_config("--device", "cpu", "--out", tmp_path))
    launcher.sampler = Samples()
    launcher.phases = [Phase("w", "measure", 1.0, 2.0, 0), Phase("w", "measure", 3.0, 4.0, 1)]
    result = Result("w", "ok", timing=Timing([Repeat(0, step_times_s=[0.1]), Repeat(1, step_times_s=[0.1])]))
    launcher.judge_device(result)
    first, second = result.timing.repeats
    assert first.contention.device_processes == 1 and "accelerator" in first.contention.reasons[0]
    assert second.contention.device_processes == 0 and not second.contention.reasons
    assert repeat_flags(first, []) == first.contention.reasons


def test_processes_nobody_can_attribute_are_not_judged_rather_than_contended():
    from bench.measure.validity import telemetry_checks
    from test_validity import result_with_steps, telemetry

    from bench.devices.cuda.spec import SPEC as CUDA

    r = result_with_steps()
    telemetry_checks(r, telemetry(util=99.0, extra={"gpu0.processes": 1, "gpu0.other_processes": None}), CUDA)
    assert "contended" not in r.codes()
    assert any(w.code == "not_judged" and "unknown" in w.message for w in r.warnings)


def test_a_run_in_a_container_is_not_contended(fake_cuda, nvml, monkeypatch, tmp_path):
    from plugins import plugin_site, workload_eps

    from bench.launch.config import check_before_run
    from bench.launch.launcher import launch
    from conftest import run_config

    monkeypatch.syspath_prepend(str(plugin_site(tmp_path, workload_eps("counting"))))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    nvml([gpu(2, processes=[os.getpid()])], container=True)  # CUDA ordinal 0 is this GPU (CUDA_ORDER)
    monkeypatch.setenv("PYTHONPATH", f"{VENDOR}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")  # the sampler's
    real_watch = Sampler.watch

    def watch(self, spec):  # the worker goes on once the sampler has read its GPU: the sampler's own start (a
        real_watch(self, spec)  # second on a loaded machine) never eats the 1.5 s the test reads samples from
        wait_until(lambda: sampled(self, collector=spec["name"]), f"a sample from {spec['name']}")

    monkeypatch.setattr(Sampler, "watch", watch)
    # a GPU whose step takes a millisecond: an empty step ran ~250,000 times in the 1.5 s, all of them recorded,
    # checked and written for nothing this test reads
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: time.sleep(0.001))
    cfg = check_before_run(run_config("--device", "cuda", "--in-process", "--workload", "counting", "--repeats", 1,
                                      "--time-budget", 1.5, "--warmup", 1, "--sample-hz", 10, "--out", tmp_path / "o"))
    report = launch(cfg)
    [res] = report.results
    assert res.status == "ok", res.error
    assert res.telemetry_summary["measure"]["gpu2.processes"].max == 1
    arithmetic = report.environment.arithmetic  # recorded by the worker, a record in the report
    assert arithmetic.matmul_fp32 == "ieee" and "layer_norm" in arithmetic.autocast_fp32_ops
    assert report.to_json()["environment"]["arithmetic"]["matmul_fp32"] == "ieee"
    shared = [w.message for w in res.warnings if w.code == "contended" and "accelerator" in w.message]
    assert not shared  # 0.1: contended, so no verdict for any CUDA run in a container (this machine's CPU may be)
    assert any(w.code == "not_judged" and "PID namespace" in w.message for w in res.warnings)


# ---- which device is ours: MIG slices, abbreviated UUIDs, a parent that refuses ------------------------

def mig_gpu(**over):
    return gpu(0, mig_mode=1, migs=[{"uuid": MIG, "mem_used": 2**30, "mem_total": 10 * 2**30}], **over)


@pytest.mark.parametrize("variable,value", [("NVIDIA_VISIBLE_DEVICES", MIG),  # the Kubernetes device plugin
                                            ("CUDA_VISIBLE_DEVICES", MIG[:12]),  # an abbreviated UUID
                                            ("CUDA_VISIBLE_DEVICES", "0")])
def test_a_mig_slice_is_found_however_it_was_named(fake_cuda, nvml, monkeypatch, variable, value):
    nvml([mig_gpu()])
    monkeypatch.setitem(globals(), "CUDA_ORDER", [MIG, UUIDS[0]])  # torch: the slice's UUID, without NVML's prefix
    for name in ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, value)
    b = CudaBackend(DeviceOptions(device="cuda"))
    b.prepare()
    assert b.identity() == {"uuid": MIG} and b.describe()["mig"] is True  # 0.1: GPU-<slice>, which NVML has not
    assert build_collector(b.collector_specs()[-1]).sample()["gpu0.mem_total_bytes"] == 10 * 2**30


def test_an_abbreviated_gpu_uuid_is_completed(fake_cuda, nvml, monkeypatch):
    nvml([gpu(i) for i in range(3)])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{UUIDS[2][:10]},{UUIDS[0][:10]}")
    b = CudaBackend(DeviceOptions(device="cuda"), local_rank=1)
    b.prepare()
    assert b.identity() == {"uuid": UUIDS[0]}


def test_in_a_mig_container_the_slice_is_watched_though_its_parent_refuses(nvml):
    nvml([mig_gpu(mig_container=True)])  # the parent GPU's handle: NoPermission but for its UUID and slices
    c = build_collector({"name": "nvml", "devices": [{"uuid": MIG}]})
    assert c.source == "nvidia-ml-py"  # 0.1: "no handle" (nvmlDeviceGetIndex of the parent), no NVIDIA telemetry
    s = c.sample()
    assert s["gpu0.mem_total_bytes"] == 10 * 2**30 and s["gpu0.mem_used_bytes"] == 2**30  # the slice's own
    assert s["gpu0.power_w"] is None and s["gpu0.energy_j"] is None  # the parent's: refused, so null
    assert c.sources()["gpu0"]["mig"] is True and c.sources()["gpu0"]["uuid"] == MIG


def test_hoppers_instantaneous_power_is_kept_beside_the_one_second_average(nvml):
    fake = nvml([gpu(0, power_instant_mw=712_000), gpu(1)])
    c = build_collector({"name": "nvml", "devices": [{"index": 0}, {"index": 1}]})
    s = c.sample()
    assert s["gpu0.power_instant_w"] == 712.0 and s["gpu0.power_w"] == 650.0  # NVML_FI_DEV_POWER_INSTANT, avg
    assert s["gpu1.power_instant_w"] is None  # no such field before Hopper: null, never the average
    c.sample()
    assert fake.CALLS.count("nvmlDeviceGetFieldValues") == 3  # gpu1's refusal is not asked again


@pytest.mark.parametrize("lacks", [["nvmlDeviceGetTemperature"], ["nvmlDeviceGetTemperatureV"]])
def test_temperature_through_the_current_call_or_the_deprecated_one(nvml, lacks):
    nvml([gpu(0)], lacks=lacks)  # a driver past CUDA 13's removal, or one before the V call
    c = build_collector({"name": "nvml", "devices": [{"index": 0}]})
    assert c.sample()["gpu0.temp_c"] == 61 and c.sample()["gpu0.temp_c"] == 61


def test_fp16_falls_back_to_the_older_grad_scaler_where_torch_amp_has_none(fake_cuda, monkeypatch):
    """torch 2.1 and 2.2 (which bench accepts) have torch.cuda.amp.GradScaler, not torch.amp.GradScaler."""
    b = CudaBackend(DeviceOptions(device="cuda"))
    b.prepare()
    import warnings

    monkeypatch.delattr(torch.amp, "GradScaler", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch >= 2.4 deprecates the old class; 2.1 does not
        scaler = b.grad_scaler("fp16")  # 0.1: AttributeError
    assert isinstance(scaler, torch.cuda.amp.GradScaler)


def test_the_variables_that_change_timings_are_recorded(monkeypatch):
    """Synchronous launches, TF32 overrides, the CUDA allocator, Gaudi's shape-agnostic eager graphs, inference
    mode and autocast lists, and HCCL's scale-out settings (every HCCL_*); 0.1 recorded none of them."""
    from bench.measure.environment import collect_env_vars

    wanted = {"CUDA_LAUNCH_BLOCKING": "1", "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE": "1", "NVIDIA_TF32_OVERRIDE": "0",
              "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True", "PT_HPU_EAGER_SHAPE_AGNOSTIC_GRAPH": "0",
              "PT_HPU_INFERENCE_MODE": "1", "PT_HPU_AUTOCAST_LOWER_PRECISION_OPS_LIST": "/lists/lower.txt",
              "HCCL_OVER_OFI": "1", "HCCL_SOCKET_IFNAME": "eth0"}
    for k, v in wanted.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("UNRELATED_SETTING", "x")
    got = collect_env_vars()
    assert {k: got.get(k) for k in wanted} == wanted and "UNRELATED_SETTING" not in got
