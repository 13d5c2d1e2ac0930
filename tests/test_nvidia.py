"""cuda backend and NVIDIA collectors against fakes: a fake pynvml raising the real error classes'
shapes, fake nvidia-smi / hl-smi executables on PATH printing captured text, a fake torch.cuda."""

import os
import sys
import time
import types
from pathlib import Path

import pytest
import torch
from fakes import CountingWorkload, logging_clock

from conftest import measure

from bench.devices.collectors import CollectorUnavailable
from bench.devices.registry import build_collector
from bench.devices.cuda.backend import CudaBackend
from bench.devices.options import DeviceOptions
from bench.devices.cuda.peaks import cuda_peak
from bench.devices.hpu.peaks import hpu_peak
from bench.measure.runner import Measurement
from bench.measure.sampler import Sampler

FIX = Path(__file__).parent / "fixtures"


def fake_pynvml(init_error=None, unsupported=()):
    m = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):
        pass

    class NVMLError_LibraryNotFound(NVMLError):
        pass

    m.NVMLError, m.NVMLError_NotSupported, m.NVMLError_LibraryNotFound = NVMLError, NVMLError_NotSupported, NVMLError_LibraryNotFound
    m.NVML_TEMPERATURE_GPU, m.NVML_CLOCK_SM, m.nvmlMemory_v2 = 0, 1, 2
    m.calls = []

    def call(name, value):
        def fn(*args, **kw):
            m.calls.append(name)
            if name in unsupported:
                raise NVMLError_NotSupported()
            return value
        return fn

    def init():
        if init_error:
            raise {"lib": NVMLError_LibraryNotFound}[init_error]("NVML Shared Library Not Found")

    m.nvmlInit, m.nvmlShutdown = init, lambda: None
    m.nvmlDeviceGetHandleByIndex = lambda i: f"handle{i}"
    m.nvmlDeviceGetUtilizationRates = call("util", types.SimpleNamespace(gpu=97, memory=40))
    m.nvmlDeviceGetMemoryInfo = call("mem", types.SimpleNamespace(used=20 * 2**30, total=80 * 2**30))
    m.nvmlDeviceGetPowerUsage = call("power", 650_000)
    m.nvmlDeviceGetTotalEnergyConsumption = call("energy", 1_234_000)
    m.nvmlDeviceGetTemperature = call("temp", 61)
    m.nvmlDeviceGetClockInfo = call("clock", 1980)
    m.nvmlDeviceGetCurrentClocksEventReasons = call("reasons", 0x20)
    return m


def test_nvml_sample_maps_units(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    c = build_collector({"name": "nvml", "indices": [0]})
    s = c.sample()
    assert c.source == "nvidia-ml-py"
    assert s["gpu0.util_percent"] == 97.0 and s["gpu0.mem_used_bytes"] == 20 * 2**30
    assert s["gpu0.power_w"] == 650.0 and s["gpu0.energy_j"] == 1234.0
    assert s["gpu0.temp_c"] == 61 and s["gpu0.sm_clock_hz"] == 1980e6 and s["gpu0.throttle_reasons"] == 0x20


def test_nvml_not_supported_is_null_and_not_asked_again(monkeypatch):
    fake = fake_pynvml(unsupported=("energy", "power"))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    c = build_collector({"name": "nvml", "indices": [0]})
    s1, s2 = c.sample(), c.sample()
    assert s1["gpu0.energy_j"] is None and s1["gpu0.power_w"] is None and s2["gpu0.util_percent"] == 97.0
    assert fake.calls.count("energy") == 1 and fake.calls.count("power") == 1


def write_tool(dirpath: Path, name: str, body: str) -> None:
    tool = dirpath / name
    tool.write_text("#!/bin/sh\n" + body + "\n")
    tool.chmod(0o755)


def test_nvml_missing_library_falls_back_to_nvidia_smi(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(init_error="lib"))
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


@pytest.mark.parametrize("body,reason", [("sleep 30", "did not answer within"), ("echo 'garbage!'", "no CSV header"),
                                         ("echo boom >&2; exit 3", "exited 3")])
@pytest.mark.slow
def test_a_hanging_or_garbled_tool_is_bounded_and_explained(monkeypatch, tmp_path, body, reason, no_gaudi_driver):
    write_tool(tmp_path, "hl-smi", body)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    start = time.monotonic()
    with pytest.raises(CollectorUnavailable, match=reason):
        build_collector({"name": "habana", "indices": [0]})
    assert time.monotonic() - start < 10


@pytest.mark.slow
def test_sampler_goes_on_when_a_collector_is_unavailable(monkeypatch, tmp_path, no_gaudi_driver):
    write_tool(tmp_path, "hl-smi", "sleep 30")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    s = Sampler(20, time.monotonic_ns()).start([{"name": "host", "pid": os.getpid()}, {"name": "habana", "indices": [0]}])
    time.sleep(3.5)
    status, samples = s.stop()
    assert status["habana"]["available"] is False and "did not answer" in status["habana"]["reason"]
    assert status["host"]["available"] and samples


@pytest.fixture
def fake_cuda(monkeypatch):
    log = []
    cuda = torch.cuda
    props = types.SimpleNamespace(name="NVIDIA H100 80GB HBM3", major=9, minor=0, total_memory=80 * 2**30)
    for name, value in {"is_available": lambda: True, "device_count": lambda: 2, "set_device": lambda i: log.append(f"set{i}"),
                        "synchronize": lambda *a: log.append("sync"), "get_device_name": lambda i=0: props.name,
                        "get_device_properties": lambda i=0: props, "max_memory_allocated": lambda *a: 5 * 2**30,
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
        if e == "clock":
            assert fake_cuda[i - 1] == "sync"
    assert result.memory.device_peak_bytes == 5 * 2**30
    peak, source = b.peak_flops("bf16")
    assert peak == pytest.approx(989.4e12) and "datasheet" in source
    d = b.describe()
    assert d["capability"] == "9.0" and d["tf32_matmul"] is False  # torch's default


def test_cuda_peak_follows_the_tf32_setting(fake_cuda, monkeypatch, tmp_path):
    b = CudaBackend(DeviceOptions(device="cuda"))
    b.prepare()
    matmul = torch.backends.cuda.matmul  # a module-like object: its flags are set, not patched
    try:
        matmul.allow_tf32 = True
        assert b.describe()["tf32_matmul"] is True
        assert b.peak_flops("fp32") == (pytest.approx(494.7e12), "NVIDIA datasheet, dense (H100, tf32)")
    finally:
        matmul.allow_tf32 = False
    assert b.peak_flops("fp32")[0] == pytest.approx(67e12)


def test_cuda_rank_maps_through_cuda_visible_devices(fake_cuda, monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    b = CudaBackend(DeviceOptions(device="cuda"), local_rank=1)
    b.prepare()
    assert b.collector_specs()[-1] == {"name": "nvml", "indices": [5]}


def test_cuda_fp16_training_gets_a_grad_scaler(fake_cuda, tmp_path):
    b = CudaBackend(DeviceOptions(device="cuda"))
    b.prepare()
    assert b.grad_scaler("fp16") is not None and b.grad_scaler("bf16") is None


@pytest.mark.parametrize("name,precision,tf32,expected", [
    ("Tesla P100-PCIE-16GB", "fp32", False, 9.3e12), ("Tesla P100-SXM2-16GB", "fp16", False, 21.2e12),
    ("Tesla V100-SXM2-32GB", "fp16", False, 125e12), ("Tesla T4", "fp16", False, 65e12),
    ("NVIDIA A10G", "bf16", False, 70e12), ("NVIDIA L4", "bf16", False, 121e12),
    ("NVIDIA A100-SXM4-80GB", "fp32", True, 156e12), ("NVIDIA A100-SXM4-80GB", "fp32", False, 19.5e12),
    ("NVIDIA H100 PCIe", "bf16", False, 756e12), ("NVIDIA H200", "bf16", False, 989.4e12),
    ("Tesla P100-PCIE-16GB", "bf16", False, None), ("NVIDIA Mystery 9000", "fp32", False, None),
])
def test_cuda_peak_table(name, precision, tf32, expected):
    peak, source = cuda_peak(name, precision, tf32)
    key = "tf32" if tf32 else precision
    if expected:
        assert peak == pytest.approx(expected)
        assert source.startswith("NVIDIA datasheet, dense (") and source.endswith(f", {key})")
    elif "Mystery" in name:
        assert peak is None and source == f"{name!r} is not in the peak table; pass --peak-tflops"
    else:
        assert peak is None and source == f"no {key} peak listed for {name}"


def test_hpu_peak_table():
    assert hpu_peak("GAUDI3", "bf16")[0] == 1835e12
    peak, reason = hpu_peak("GAUDI", "bf16")
    assert peak is None and "--peak-tflops" in reason
