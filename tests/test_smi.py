"""nvidia-smi and hl-smi: header-reading parsers on real layouts (tests/fixtures/smi/README.md says
where each comes from), and the bounded tool runner on tools that misbehave."""

import os
import time
from pathlib import Path

import psutil
import pytest
from conftest import wait_until

from bench.devices.cuda.collectors import NvidiaSmiCollector, parse_nvidia_smi
from bench.devices.hpu.collectors import HlSmiCollector, parse_hl_smi
from bench.devices.smi import ParseError
from bench.devices.tools import ToolError, run_tool

SMI = Path(__file__).parent / "fixtures" / "smi"
MiB = 2**20


def fixture(name):
    return (SMI / name).read_text()


def test_header_with_units_and_values_with_units():
    [row] = parse_nvidia_smi(fixture("nvidia-smi-h100-units.csv"))
    assert row == {"timestamp": "2026/07/14 08:12:53.353", "name": "NVIDIA H100 80GB HBM3", "index": 0.0,
                   "utilization.gpu": 100.0, "memory.used": 19818 * MiB, "memory.total": 81559 * MiB,
                   "power.draw": 631.95, "temperature.gpu": 59.0}


def test_nounits_header_gives_the_unit_of_bare_values():
    rows = parse_nvidia_smi(fixture("nvidia-smi-v100x3-nounits.csv"))
    assert len(rows) == 3
    assert rows[1]["power.draw"] == 383.55 and rows[1]["utilization.gpu"] == 98.0
    assert rows[1]["memory.used"] == 11149 * MiB and rows[1]["memory.free"] == 21351 * MiB
    assert rows[1]["uuid"] == "GPU-3410aa41-502b-5cf1-d8c4-58dc1c22fbc9" and rows[0]["temperature.gpu"] == 30.0


def test_missing_markers_become_none_and_other_cells_keep_their_values():
    [row] = parse_nvidia_smi(fixture("nvidia-smi-requires-reset.csv"))
    assert row == {"index": 0.0, "temperature.gpu": None, "utilization.gpu": None, "memory.used": 0.0}
    rows = parse_nvidia_smi(fixture("nvidia-smi-unknown-error-3gpu.csv"))
    assert all(v is None for v in rows[1].values())
    assert rows[0]["clocks.current.sm"] == 1695e6 and rows[2]["clocks.current.sm"] == 1700e6  # MHz -> Hz
    for marker in ("[N/A]", "N/A", "[Not Supported]", "[Unknown Error]", "Unknown Error", "ERR!", "[Requires Reset]",
                   "[GPU is lost]", "[Insufficient Permissions]"):
        assert parse_nvidia_smi(f"index, power.draw [W]\n0, {marker}\n") == [{"index": 0.0, "power.draw": None}]


@pytest.mark.parametrize("cell,header,expected", [
    ("3 GiB", "memory.used [MiB]", 3 * 2**30),      # 0.1 read 3 GiB as 3 MiB
    ("250000 mW", "power.draw [W]", 250.0),          # 0.1 read 250,000 mW as 250,000 W
    ("1.98 GHz", "clocks.current.sm [MHz]", 1.98e9),
    ("512", "memory.used [KiB]", 512 * 1024),
    ("36", "temperature.aip [C]", 36.0),
    ("15 %", "utilization.aip [%]", 15.0),
])
def test_values_come_out_in_base_units(cell, header, expected):
    [row] = parse_hl_smi(f"index, {header}\n0, {cell}\n")
    assert row[header.split(" [")[0]] == pytest.approx(expected)


@pytest.mark.parametrize("text,why", [
    ("", "no output"),
    ("index, power.draw [W]\n", "no device rows"),
    ("0, 103, 36, 15\n", "no CSV header"),                                  # output without a header
    (fixture("nvidia-smi-table.txt"), "no CSV header"),                      # the human table
    ("index, power.draw [W]\n0, 103, 36\n", "a row of 3 fields"),            # ragged
    ("index, power.draw [furlong]\n0, 3\n", "unknown unit"),                 # unknown unit in the header
    ("index, power.draw [W]\n0, 3 parsecs\n", "unknown unit"),              # unknown unit in a value
    ("index, power.draw [W]\n0, 3 MiB\n", "not in W"),                       # the wrong kind of unit
    ("index, power.draw [W]\n0, fast\n", "not a number in W"),
    ("\x00\x01\x02 binary \ufffd\n", "no CSV header"),
])
def test_anything_else_is_a_parse_error(text, why):
    with pytest.raises(ParseError, match=why):
        parse_nvidia_smi(text)


def test_hl_smi_layouts():
    rows = parse_hl_smi(fixture("hl-smi-hl205x8-nounits.csv"))
    assert len(rows) == 8 and rows[7]["temperature.aip"] == 38.0 and rows[0]["memory.total"] == 32768 * MiB
    assert rows[2]["power.draw"] == 96.0 and rows[2]["utilization.aip"] == 12.0
    pairs = [(r["index"], r["module_id"]) for r in parse_hl_smi(fixture("hl-smi-index-module.csv"))]
    assert pairs[:2] == [(3.0, 6.0), (1.0, 4.0)]


def write_tool(dirpath: Path, name: str, body: str) -> None:
    tool = dirpath / name
    tool.write_text("#!/bin/sh\n" + body + "\n")
    tool.chmod(0o755)


def test_the_collector_picks_its_gpus_by_uuid_among_non_zero_indices(monkeypatch, tmp_path):
    write_tool(tmp_path, "nvidia-smi", f"cat {SMI / 'nvidia-smi-unknown-error-3gpu.csv'}")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    c = NvidiaSmiCollector({"devices": [{"uuid": "GPU-66666666-7777-8888-9999-000000000000"}]})
    c.open()
    s = c.sample()
    assert s == {"gpu5.util_percent": 31.0, "gpu5.mem_used_bytes": 9751 * MiB, "gpu5.power_w": 350.0,
                 "gpu5.sm_clock_hz": 1700e6, "gpu5.throttle_reasons": 4}
    assert c.sources() == {"gpu5": {"role": "accelerator", "device": "cuda", "index": 5}}


def test_hl_smi_collector_by_module_id(monkeypatch, tmp_path):
    (tmp_path / "out.csv").write_text("index, module_id, utilization.aip [%], power.draw [W]\n0, 5, 3, 90\n3, 0, 97, 350\n")
    write_tool(tmp_path, "hl-smi", f"cat {tmp_path / 'out.csv'}")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    c = HlSmiCollector({"devices": [{"module_id": 0}]})
    c.open()
    assert c.sample() == {"hpu3.util_percent": 97.0, "hpu3.power_w": 350.0}


# ---- the bounded tool runner ------------------------------------------------------------------------

# The tools below sleep over 600 s; a bounded run returns in about its timeout (1-2 s). Whether it was bounded is
# told apart far from both: a loaded machine never makes the bound take this long, an unbounded run always does.
BOUNDED_S = 300


def leftovers(marker: str) -> list:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        if marker in " ".join(p.info["cmdline"] or []):
            out.append(p)
    return out


@pytest.mark.parametrize("body,why", [
    ("head -c 300000000 /dev/zero", "printed more than 1024 KiB"),
    ("sleep 617", "did not answer within"),
    ("sh -c 'sleep 618'", "did not answer within"),  # hangs in a grandchild
    ("echo boom >&2; exit 3", "exited 3: boom"),
])
def test_a_misbehaving_tool_is_bounded_and_leaves_nothing_running(tmp_path, body, why):
    write_tool(tmp_path, "tool", body)
    start = time.monotonic()
    with pytest.raises(ToolError, match=why):
        run_tool([str(tmp_path / "tool")], timeout_s=1.0)
    assert time.monotonic() - start < BOUNDED_S
    wait_until(lambda: leftovers("sleep 61") == [], "the killed tool gone")  # SIGKILLed: gone within moments


def test_binary_output_is_decoded_without_error(tmp_path):
    write_tool(tmp_path, "tool", r"printf 'index\377\376\000 power'")
    assert "\ufffd" in run_tool([str(tmp_path / "tool")])


@pytest.mark.parametrize("body,why", [
    ("cat {binary}", "no CSV header"),
    ("head -c 300000000 /dev/zero", "printed more than"),
    ("sh -c 'sleep 619'", "did not answer"),
])
def test_bench_list_with_a_hostile_nvidia_smi(tmp_path, monkeypatch, capsys, body, why, no_accelerators):
    import json
    import shutil

    from bench import cli

    import random

    binary = tmp_path / "noise.bin"  # 2000 random bytes, the same every run
    binary.write_bytes(random.Random(7).randbytes(2000).replace(b"\n", b"\x00"))
    write_tool(tmp_path, "nvidia-smi", body.format(binary=binary))
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: str(tmp_path / name) if name == "nvidia-smi" else None)
    start = time.monotonic()
    code = cli.cli(["list", "--json"])
    out = capsys.readouterr().out
    assert code == 0 and time.monotonic() - start < BOUNDED_S
    nvml = {c["collector"]: c for c in json.loads(out)["collectors"]}["nvml"]
    assert nvml["usable"] is False and why in nvml["reason"]
    wait_until(lambda: leftovers("sleep 619") == [], "the killed tool gone")


# nvidia-smi refuses a field it does not know, and exits non-zero (huggingface/candle#733's message)
SMI_FIELDS = r'''
case "$1" in *{refused}*) echo 'Field "{refused}" is not a valid field to query.'; exit 2;; esac
echo 'index, uuid, clocks.current.sm [MHz], {printed}'
echo '0, GPU-aaaaaaaa-0000-0000-0000-000000000000, 1980, 0x0000000000000040'
'''


@pytest.mark.parametrize("refused,printed", [
    ("clocks_throttle_reasons.active", "clocks_event_reasons.active"),  # a driver past the deprecated name
    ("clocks_event_reasons.active", "clocks_throttle_reasons.active")])  # one from before the new name
def test_the_clock_event_reasons_are_read_under_either_name(monkeypatch, tmp_path, refused, printed):
    write_tool(tmp_path, "nvidia-smi", SMI_FIELDS.format(refused=refused, printed=printed))
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    c = NvidiaSmiCollector({"devices": [{"index": 0}]})
    c.open()  # 0.1 asked for the deprecated name only
    assert c.sample()["gpu0.throttle_reasons"] == 0x40
