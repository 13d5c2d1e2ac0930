import itertools
import os
import time
import types

import pytest
from conftest import sampled, wait_until

from bench.model.report import Phase
from bench.devices.collectors import CollectorUnavailable
from bench.devices.registry import build_collector
from bench.devices.cpu.collectors import Rapl
from bench.measure.sampler import Sampler
from bench.model.samples import energy_from_samples, phase_summaries, summarize



class FakeClock:
    """time.monotonic for the host collector: moves only when the test says (its period is what is tested,
    not how fast this machine runs the lines between two readings)."""

    def __init__(self, monkeypatch):
        from bench.devices.cpu import collectors

        self.now = 1000.0
        monkeypatch.setattr(collectors, "time", types.SimpleNamespace(monotonic=lambda: self.now))

    def advance(self, seconds):
        self.now += seconds


def test_host_collector_samples_this_process_at_its_own_period(monkeypatch):
    clock = FakeClock(monkeypatch)
    c = build_collector({"name": "host", "pid": os.getpid(), "period_s": 0.3})
    assert c.sample() == {}  # the first reading comes a period after priming, not microseconds after
    clock.advance(0.29)
    assert c.sample() == {}
    clock.advance(0.06)
    s = c.sample()
    assert c.sample() == {}  # not due again yet
    clock.advance(0.29)
    assert c.sample() == {}
    clock.advance(0.02)
    assert "host.cpu_percent" in c.sample()
    assert s["host.rss_bytes"] > 10 * 2**20
    assert len(s["host.percpu_percent"]) == os.cpu_count()
    assert 0 <= s["host.mem_percent"] <= 100


def test_a_process_is_read_a_period_after_it_was_primed_never_at_once(monkeypatch):
    """psutil's cpu_percent(None) divides by the time since the previous call: read microseconds after
    priming, one 10 ms tick becomes thousands of percent (a first host sample of 1,439 % on 2 cores)."""
    import subprocess
    import sys

    import psutil

    clock = FakeClock(monkeypatch)
    calls: list[tuple[int, float]] = []
    real = psutil.Process.cpu_percent

    def spy(self, interval=None):
        calls.append((self.pid, clock.now))
        return real(self, interval)

    monkeypatch.setattr(psutil.Process, "cpu_percent", spy)
    c = build_collector({"name": "host", "pid": os.getpid(), "period_s": 0.05})
    busy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])  # a child: found at a refresh
    try:
        for _ in range(100):  # 6 s of the collector's time: its child refresh (1 s) and three readings fit
            if sum(1 for pid, _ in calls if pid == busy.pid) >= 3:
                break
            clock.advance(0.06)
            c.sample()
    finally:
        busy.kill()
        busy.wait()
    for pid in {os.getpid(), busy.pid}:
        times = [t for p, t in calls if p == pid]
        assert len(times) >= 3, pid
        assert min(b - a for a, b in itertools.pairwise(times)) >= 0.05  # a period apart, from the prime on


def test_missing_collector_library_or_tool_says_why(no_accelerators):
    with pytest.raises(CollectorUnavailable, match="nvidia-smi not found"):
        build_collector({"name": "nvml", "indices": [0]})
    with pytest.raises(CollectorUnavailable, match="hl-smi not found"):
        build_collector({"name": "habana", "indices": [0]})


def rapl_domain(root, n, name, energy, max_uj=1000000):
    dom = root / f"intel-rapl:{n}"
    dom.mkdir()
    (dom / "name").write_text(name + "\n")
    (dom / "max_energy_range_uj").write_text(str(max_uj))
    (dom / "energy_uj").write_text(str(energy))
    return dom


def test_rapl_counts_package_domains_only(tmp_path):
    # client Intel: psys (the platform) already contains the package; summing both counted it twice
    rapl_domain(tmp_path, 0, "package-0", 1000)
    rapl_domain(tmp_path, 1, "psys", 5000)
    sub = tmp_path / "intel-rapl:0:0"  # a sub-domain (core): inside the package
    sub.mkdir()
    rapl = Rapl(str(tmp_path / "intel-rapl:*"))
    assert [d["path"] for d in rapl.domains] == [str(tmp_path / "intel-rapl:0" / "energy_uj")]
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("3000")
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("9000")
    assert rapl.read_j() == pytest.approx(0.002)


def test_rapl_unwraps_the_counter(tmp_path):
    dom = rapl_domain(tmp_path, 0, "package-0", 900000)
    rapl = Rapl(str(tmp_path / "intel-rapl:[0-9]*"))
    (dom / "energy_uj").write_text("950000")
    assert rapl.read_j() == pytest.approx(0.05)
    (dom / "energy_uj").write_text("100000")  # wrapped past 1,000,000
    assert rapl.read_j() == pytest.approx(0.2)
    assert Rapl(str(tmp_path / "absent*")).read_j() is None


@pytest.mark.slow
def test_sampler_process_samples_and_stops():
    t0 = time.monotonic_ns()
    s = Sampler(20, t0).start([{"name": "host", "pid": os.getpid(), "period_s": 0.05}, {"name": "no-such-collector"}])
    wait_until(lambda: sampled(s, 5), "five samples")  # its start alone can take a second on a loaded machine
    seen_s = (time.monotonic_ns() - t0) / 1e9
    status, samples, _ = s.stop()
    assert status["host"]["available"] is True
    assert status["no-such-collector"]["available"] is False
    assert "unknown collector" in status["no-such-collector"]["reason"]
    assert len(samples) >= 5 and all("host.cpu_percent" in x for x in samples)
    ts = [x["t"] for x in samples]
    assert ts == sorted(ts) and 0 <= ts[0] <= seen_s  # seconds since t0, taken before they were seen
    assert s.proc is None


def test_phase_summaries_split_samples_by_phase():
    samples = [{"t": t / 10, "gpu0.util_percent": 0.0 if t < 10 else 90.0} for t in range(30)]
    phases = [Phase("w", "setup", 0, 0.95), Phase("w", "measure", 1.0, 2.9)]
    s = phase_summaries(samples, phases, "w")
    assert s["setup"]["gpu0.util_percent"]["mean"] == 0.0
    assert s["measure"]["gpu0.util_percent"]["mean"] == 90.0
    assert summarize([{"t": 0, "x": [1, 2], "y": "s"}]) == {}


def test_energy_from_counter_interpolates_the_window_edges():
    samples = [{"t": t, "gpu0.energy_j": 100.0 * t, "gpu0.power_w": 100.0} for t in range(0, 11)]
    e = energy_from_samples(samples, 2.5, 7.5, "gpu0.")
    assert e["method"] == "energy counter" and e["joules"] == pytest.approx(500.0)


def test_energy_falls_back_to_integrated_power_then_null():
    samples = [{"t": t / 2, "gpu0.power_w": 200.0} for t in range(0, 21)]
    e = energy_from_samples(samples, 1.0, 9.0, "gpu0.")
    assert e["joules"] == pytest.approx(1600.0) and "estimate" in e["method"]
    assert energy_from_samples(samples, 1.0, 1.5, "gpu0.")["joules"] is None  # window < 1 s
    e = energy_from_samples([{"t": 0}, {"t": 5}], 1.0, 4.0, "gpu0.")
    assert e["joules"] is None and "no energy counter" in e["reason"]


def test_the_power_fallback_integrates_the_instantaneous_field_where_it_was_sampled():
    """A Hopper GPU without an energy counter reading: 100 W, then 600 W from t = 4 s. NVML's power reading
    is a 1-s average (it lags the step by a second); NVML_FI_DEV_POWER_INSTANT (field 186) is the draw
    itself, and the collector samples both (tests/fake_vendor/pynvml.py). 0.1 integrated the average."""
    samples = [{"t": t / 10, "gpu0.power_instant_w": 100.0 if t < 40 else 600.0,
                "gpu0.power_w": 100.0 if t < 50 else 600.0} for t in range(0, 81)]
    e = energy_from_samples(samples, 0.0, 8.0, "gpu0.")
    assert e["joules"] == pytest.approx(4 * 100 + 4 * 600, rel=0.01) and "instantaneous" in e["method"]


def test_the_launcher_reads_the_samples_written_so_far_whole_lines_only(tmp_path):
    from bench.measure.sampler import Sampler

    s = Sampler(10, 0)
    s.path = str(tmp_path / "samples.jsonl")
    with open(s.path, "w", encoding="utf-8") as fh:
        fh.write('{"status": {}}\n{"t": 0.1, "gpu0.other_processes": 0}\n{"t": 0.2, "gpu0.oth')
    assert s.since() == [{"t": 0.1, "gpu0.other_processes": 0}]  # the line being written waits
    with open(s.path, "a", encoding="utf-8") as fh:
        fh.write('er_processes": 1}\n')
    assert s.since() == [{"t": 0.2, "gpu0.other_processes": 1}] and s.since() == []
