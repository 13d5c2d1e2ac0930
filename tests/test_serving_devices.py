"""A serving run over HTTP takes no accelerator: the server holds it, and the run watches the server's.

Against the fake Gaudi bridge (tests/fake_habana, after bridge 1.19 synapse_helpers/device.cpp: a card is
acquired at the bridge's first init, by module ID, by type only where HABANA_VISIBLE_MODULES is unset, one
process per card — its node opened exclusively, here a lock held across the processes that share the box's
device directory) and the fake habana-pyhlml (tests/fake_vendor/pyhlml, after the 1.24 wheel: a card found
by its node's minor number). The device is the `fakehpu` plug-in of tests/test_distributed.py: the real hpu
backend over the fake bridge, its tensors on the CPU."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from conftest import cli_run, wait_until
from plugins import plugin_site
from test_distributed import FAKE_HPU_DEVICE
from test_hpu import FAKE, VENDOR, forget, habana  # noqa: F401 - a fixture
from test_nvidia import UUIDS, gpu, nvml  # noqa: F401 - a fixture

from bench.model.io import load_report

BOX = [  # HLML index, module ID (another number) and the node's minor number of each card
    {"index": 0, "module_id": 4, "minor": 0, "uuid": "00P1-A", "name": "HL-225", "util": 0, "mem_used": 2**29,
     "mem_total": 96 * 2**30, "power_mw": 95000, "energy_mj": 10**6, "temp": 35, "throttle": 0},
    {"index": 1, "module_id": 6, "minor": 1, "uuid": "00P1-B", "name": "HL-225", "util": 0, "mem_used": 2**29,
     "mem_total": 96 * 2**30, "power_mw": 96000, "energy_mj": 10**6, "temp": 34, "throttle": 0},
    {"index": 2, "module_id": 2, "minor": 2, "uuid": "00P1-C", "name": "HL-225", "util": 0, "mem_used": 2**29,
     "mem_total": 96 * 2**30, "power_mw": 97000, "energy_mj": 10**6, "temp": 33, "throttle": 0},
]


@pytest.fixture
def gaudi_box(habana, tmp_path):  # noqa: F811
    """A Gaudi box of `n` cards for this process and the ones it starts (a `fakehpu` device, the bridge, HLML);
    `held`: module IDs another process holds."""

    def make(n: int = 1, held=(), **env):
        cards = BOX[:n]
        site = plugin_site(tmp_path, {"bench.devices": {"fakehpu": "fakehpu:SPEC"}}, {"fakehpu": FAKE_HPU_DEVICE})
        for path in (VENDOR, str(site)):
            habana.syspath_prepend(path)
        habana.setenv("PYTHONPATH", os.pathsep.join([str(site), FAKE, VENDOR, os.environ.get("PYTHONPATH", "")]))
        habana.setenv("FAKE_HPU_CARDS", json.dumps([{k: c[k] for k in ("index", "module_id", "minor")}
                                                    | {"held": c["module_id"] in held} for c in cards]))
        habana.setenv("FAKE_PYHLML", json.dumps({"version": "1.24.2", "lib": True, "cards": cards}))
        habana.setenv("PT_HPU_LAZY_MODE", "1")
        for k, v in env.items():
            habana.setenv(k, v)
        forget("pyhlml")
        return cards

    yield make
    forget("pyhlml")


def serve_run(capsys, tmp_path, *flags):
    out = tmp_path / "out"
    code, _, err = cli_run(capsys, "run", "--device", "fakehpu", "--preset", "tiny", "--workload", "blender-serve",
                           "--repeats", "1", "--warmup", "1", "--qps", "40", "--requests", "12", "--max-batch", "2",
                           "--new-tokens", "4", "--context-len", "32", "--sample-hz", "20", "--in-process",
                           "--out", out, *flags)
    [result] = load_report(next(out.glob("*.json"))).results
    return code, err, result, load_report(next(out.glob("*.json")))


def accelerators(report) -> dict:
    return {p: (s.index, s.module_id) for p, s in report.telemetry.sources.items() if s.role == "accelerator"}


# ---- the fake holds a card across processes, as the bridge does ---------------------------------------------------

ACQUIRE = "import habana_frameworks.torch.hpu as h; h.get_device_properties(); print('acquired')"


def test_the_fake_bridge_refuses_a_card_another_process_holds(gaudi_box):
    gaudi_box(2)
    import habana_frameworks.torch.hpu as hthpu

    hthpu.get_device_properties()  # this process takes the first card (by type)

    def other(**env):
        return subprocess.run([sys.executable, "-c", ACQUIRE], capture_output=True, text=True, timeout=900,
                              env={**os.environ, **env})

    assert "acquired" in other().stdout  # by type: the second card
    refused = other(HLS_MODULE_ID="4", HABANA_VISIBLE_MODULES="4,6")  # ours, with no fall-back
    assert refused.returncode != 0 and "Device acquire failed" in refused.stderr
    hthpu.get_device_properties()  # this process asks again: the card is still its own
    assert "acquired" in other(HLS_MODULE_ID="4").stdout  # by module fails, then by type takes the free one


# ---- --engine http: the worker takes no card, bench serve takes it and says which ---------------------------------

@pytest.mark.parametrize("n,held,env,index", [
    (1, (), {}, 0),  # one card: the server could not start while the worker held it
    (1, (), {"HABANA_VISIBLE_MODULES": "4"}, 0),  # no fall-back by type: the same
    (3, (4,), {}, 2),  # a larger box: the worker held the lowest idle module, the server ran on another card
])
def test_an_engine_http_run_on_gaudi_takes_no_card_and_watches_the_servers(gaudi_box, capsys, tmp_path, n, held, env,
                                                                           index):
    gaudi_box(n, held, **env)
    code, err, result, report = serve_run(capsys, tmp_path, "--engine", "http")
    assert code == 0 and result.status == "ok", (err, result.error)
    assert report.environment.device["device_held"] is False
    assert accelerators(report) == {f"hpu{index}": (index, BOX[index]["module_id"])}  # the server's card only
    device = result.served_by.device
    assert device.startswith(f"index {index} (said by bench serve") and "no_server_telemetry" not in result.codes()
    assert any(f"hpu{index}.util_percent" in s for s in report.telemetry.samples)


# ---- --endpoint at a server on this machine: its card found by its process, or named -------------------------------

@pytest.fixture
def local_server(gaudi_box, tmp_path):
    """`bench serve` on the fake Gaudi, started apart from the run (as a server someone else started): its URL."""
    gaudi_box(2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "bench", "serve", "--device", "fakehpu", "--preset", "tiny",
                             "--max-batch", "2", "--context-len", "32", "--port", str(port), "--quiet"],
                            stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
    try:
        wait_until(lambda: proc.poll() is not None or "listening on" in proc.stdout.readline(), "bench serve listens")
        assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        proc.wait(timeout=900)
        log.close()


def test_a_local_endpoints_card_is_the_one_its_process_holds(local_server, capsys, tmp_path):
    url, proc = local_server
    code, err, result, report = serve_run(capsys, tmp_path, "--endpoint", url, "--endpoint-serves", "tiny")
    assert code == 0 and result.status == "ok", (err, result.error)
    assert accelerators(report) == {"hpu0": (0, 4)}  # the server's card (the first: it started first)
    assert result.served_by.device == f"index 0 (process {proc.pid} holds device node 0: HLML index 0, module 4)"


def test_a_local_endpoints_card_is_named_where_its_process_cannot_be_seen(local_server, capsys, tmp_path,
                                                                         monkeypatch):
    from bench.serve import remote

    url, _ = local_server
    monkeypatch.setattr(remote, "listening_pid", lambda port: None)  # another user's: its sockets are not ours to see
    code, _, unnamed, _ = serve_run(capsys, tmp_path / "a", "--endpoint", url, "--endpoint-serves", "tiny")
    assert code == 0 and "no_server_telemetry" in unnamed.codes() and unnamed.served_by.device.startswith("not found")
    code, err, result, report = serve_run(capsys, tmp_path / "b", "--endpoint", url, "--endpoint-serves", "tiny",
                                          "--endpoint-device", "module:4")
    assert code == 0 and result.status == "ok", (err, result.error)
    assert accelerators(report) == {"hpu0": (0, 4)}
    assert result.served_by.device == "module_id 4 (named with --endpoint-device)"


@pytest.mark.parametrize("flags,said", [
    (["--endpoint-device", "module:4"], "--endpoint-device: only applies over HTTP"),
    (["--engine", "http", "--endpoint-device", "index:0"], "--endpoint-device: the bench serve that --engine http"),
    (["--endpoint", "http://127.0.0.1:9", "--endpoint-device", "slot:1"], "give index:N, module:M or uuid:U"),
    (["--endpoint", "http://10.1.2.3:9", "--endpoint-device", "index:1"], "not on this machine"),
    (["--endpoint", "http://127.0.0.1:9", "--endpoint-device", "index:1"], "the run's device is cpu, not an accel"),
])
def test_a_named_device_is_refused_where_it_would_not_be_watched(capsys, tmp_path, flags, said):
    code, _, err = cli_run(capsys, "run", "--device", "cpu", "--workload", "blender-serve", "--out", tmp_path, *flags)
    assert code == 2 and said in err, err


# ---- on NVIDIA: the GPU whose NVML process list holds the server ------------------------------------------------

def test_a_gpu_servers_card_is_the_one_nvml_lists_its_process_on(nvml):  # noqa: F811
    """nvidia-ml-py (tests/fake_vendor/pynvml.py): each GPU lists its compute processes by host PID."""
    from bench.devices.cuda.spec import cards_of

    nvml([gpu(0, processes=[111]), gpu(1, processes=[4242, 7])])
    assert cards_of([4242]) == ([{"uuid": UUIDS[1]}], f"NVML lists process 4242 on {UUIDS[1]}")
    found, why = cards_of([5555])  # a container without --pid=host: NVML's PIDs are the host's
    assert found == [] and "--pid=host" in why
    nvml(lib=False)
    assert cards_of([4242]) == ([], "NVML could not list the GPUs' processes")
