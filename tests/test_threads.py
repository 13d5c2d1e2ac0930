"""CPU threads chosen from what is free — the affinity mask, the cgroup's CPU quota, other load
measured at the start — said in the run line and recorded; --threads given by the user wins; a
--scaling sweep keeps the threads per rank the same at every world size, or is refused."""

from __future__ import annotations

import pytest
from conftest import cli_run, run_inline

from bench.core.errors import ConfigError
from bench.measure import threads
from bench.measure.threads import HostState, check_sweep, choose, contended_advice, quota_cpus


@pytest.mark.parametrize("host, ranks, expected, reason", [
    (HostState(2, 2, None, 0.0), 1, 2, "free"),
    (HostState(2, 2, None, 0.2), 1, 2, "free"),  # a little noise takes no core
    (HostState(2, 2, None, 0.3), 1, 1, "other_load"),  # above the 0.25 core contention calls shared
    (HostState(2, 2, None, 1.0), 1, 1, "other_load"),  # a process spinning on one core
    (HostState(2, 2, None, 1.6), 1, 1, "other_load"),
    (HostState(2, 2, None, 7.5), 1, 1, "other_load"),  # never below one
    (HostState(8, 8, None, 2.0), 1, 6, "other_load"),
    (HostState(8, 8, None, 0.0), 2, 4, "free"),  # shared among the ranks of the node
    (HostState(8, 8, None, 1.0), 4, 1, "other_load"),
    (HostState(4, 4, 1.5, 0.0), 1, 1, "quota"),  # the cgroup allows 1.5 CPUs
    (HostState(16, 2, None, 0.0), 1, 2, "affinity"),  # taskset -c 0,1 on a 16-CPU machine
    (HostState(2, 2, None, None), 1, 2, "free"),  # load not measured: the CPUs alone decide
])
def test_the_threads_are_the_free_cores(host, ranks, expected, reason):
    c = choose(host, ranks)
    assert (c.threads, c.reason, c.ranks) == (expected, reason, ranks)
    assert c.cpus == host.cpus and c.other_load_cores == host.other_load_cores


def test_threads_the_user_gives_win():
    c = choose(HostState(2, 2, None, 1.9), 1, given=2)
    assert (c.threads, c.reason) == (2, "given")


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu.max": "200000\n"}, 2.0),  # the period left out: its default
    ({"cpu.max": "garbage here"}, None),
    ({"cpu.max": "0 100000"}, None),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # v1, no quota
    ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),
    ({"cpu,cpuacct/cpu.cfs_quota_us": "300000", "cpu,cpuacct/cpu.cfs_period_us": "100000"}, 3.0),
    ({"cpu/cpu.cfs_quota_us": "1e400", "cpu/cpu.cfs_period_us": "1"}, None),  # infinite: no number
    ({}, None),
])
def test_the_cgroup_quota_v2_and_v1(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert quota_cpus(tmp_path) == expected


def test_a_sweep_keeps_threads_per_rank_or_is_refused():
    free2 = choose(HostState(2, 2, None, 0.0), ranks=2)
    assert free2.threads == 1
    check_sweep(free2, (1, 2))  # 1 thread a rank at both sizes
    with pytest.raises(ConfigError, match="--scaling 1,2,4: world size 4 at 1 thread a rank needs 4 CPUs"):
        check_sweep(choose(HostState(2, 2, None, 0.0), ranks=4), (1, 2, 4))
    with pytest.raises(ConfigError, match="lower --threads"):
        check_sweep(choose(HostState(2, 2, None, 0.0), ranks=2, given=2), (1, 2))


def test_a_contended_run_says_what_would_help():
    two = choose(HostState(2, 2, None, 0.0))
    assert contended_advice([1.5, 1.7], 2, two) == "other load used 1.6 of 2 cores: --threads 1"
    assert "a quieter machine would help" in contended_advice([1.6], 1, two)  # one thread is already the least
    assert contended_advice([], 2, two) is None


@pytest.fixture
def busy(monkeypatch):
    """This machine as one whose other load holds one of its two CPUs."""
    monkeypatch.setattr(threads, "host_state", lambda: HostState(2, 2, None, 1.0))


@pytest.mark.slow
def test_a_run_uses_the_threads_chosen_and_records_why(busy):
    report = run_inline("--workload", "blender-finetune")
    assert report.environment.threads.threads == 1 and report.environment.threads.reason == "other_load"
    assert [r.threads for r in report.results[0].timing.repeats] == [1]
    given = run_inline("--workload", "blender-finetune", "--threads", "2")
    assert given.environment.threads.reason == "given" and given.results[0].timing.repeats[0].threads == 2


@pytest.mark.slow
def test_the_run_line_says_what_was_chosen_and_why(busy, capsys, tmp_path):
    code, _, err = cli_run(capsys, "run", "--device", "cpu", "--workload", "blender-finetune", "--steps", 3,
                           "--warmup", 1, "--repeats", 1, "--in-process", "--sample-hz", 0, "--out", tmp_path)
    assert code == 0
    assert "cpu: 1 thread (other load used 1.0 of 2 CPUs, measured at the start); --threads N chooses otherwise" in err


@pytest.mark.parametrize(("other", "cpus", "need", "shared"), [
    (1.0, 2, 1, False),  # one thread on two cores beside one busy process: it had its core
    (1.2, 2, 1, False),
    (1.4, 2, 1, True),  # more than the spare core: someone took the run's
    (0.3, 2, 2, True), (0.2, 2, 2, False), (2.5, 4, 2, True), (0.0, 2, 2, False)])
def test_other_load_counts_against_the_cores_the_threads_left_free(other, cpus, need, shared):
    from bench.measure.contention import HostSnapshot, contention

    a = HostSnapshot(at=0.0, busy=0.0, total=0.0, steal=0.0, own=0.0, cpus=cpus)
    b = HostSnapshot(at=10.0, busy=10.0 * (other + 1.0), total=10.0 * cpus, steal=0.0, own=10.0, cpus=cpus)
    c = contention(a, b, need)
    assert c.other_load_cores == pytest.approx(other) and bool(c.reasons) is shared
    assert c.free_cores == cpus - need and c.own_cores == pytest.approx(1.0)


def test_the_cores_a_cpu_run_needs_are_its_threads_on_every_rank():
    from bench.measure.contention import needed_cores

    assert needed_cores(1) == 1 and needed_cores(2, ranks=2) == 4 and needed_cores(None) is None


# ---- accelerator hosts: many cores, daemons, containers (fake /proc text) -----------------------------------

def proc_stat(busy: dict[int, int], cpus: int = 64) -> str:
    """/proc/stat (proc(5)): the total line, then per CPU "cpuN user nice system idle iowait irq softirq steal
    guest guest_nice" in USER_HZ ticks; `busy` gives each CPU's user ticks, the rest of 1000 is idle."""
    rows = [f"cpu{i} {busy.get(i, 0)} 0 0 {1000 - busy.get(i, 0)} 0 0 0 0 0 0" for i in range(cpus)]
    return "\n".join([f"cpu  {sum(busy.values())} 0 0 0 0 0 0 0 0 0", *rows, "intr 1 2 3", "ctxt 4"]) + "\n"


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A fake /proc and clock: `host.window(busy, own_s, cpus)` takes a snapshot, lets 10 s pass in which each
    CPU of `busy` ran that many ticks and the run's own processes `own_s` CPU seconds, and takes another."""
    import types

    import bench.measure.contention as cm

    proc, state = tmp_path / "proc", {"t": 100.0, "own": 50.0}
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text("22 1 0:21 / /proc rw - proc proc rw\n")
    monkeypatch.setattr(cm, "time", types.SimpleNamespace(monotonic=lambda: state["t"]))
    monkeypatch.setattr(cm, "_tree_cpu", lambda pid: state["own"] if pid else None)
    monkeypatch.setattr(cm, "USER_HZ", 100)

    def window(busy: dict[int, int], own_s: float, cpus: int = 64, mask=None, need=None):
        monkeypatch.setattr(cm, "run_cpus", lambda: mask)
        (proc / "stat").write_text(proc_stat({}, cpus))
        a = cm.HostSnapshot.take(1, proc=proc)
        (proc / "stat").write_text(proc_stat(busy, cpus))
        state["t"] += 10.0
        state["own"] += own_s
        return cm.contention(a, cm.HostSnapshot.take(1, proc=proc), need)

    return types.SimpleNamespace(window=window, proc=proc)


def test_an_idle_accelerator_run_on_a_64_core_host_with_daemons_is_not_contended(host):
    """Daemons (persistenced, a DCGM exporter, kubelet) keep 2 of 64 cores busy; the run's host process feeds
    the GPU with 1.1 cores. 0.1 gave an accelerator run no free cores: any load over 0.25 core was shared, every
    repeat, and --target-ci redid repeats until its bound."""
    c = host.window({0: 1000, 1: 1000, 2: 1000, 3: 100}, own_s=11.0)
    assert c.other_load_cores == pytest.approx(2.0) and c.own_cores == pytest.approx(1.1)
    assert c.free_cores == 63 and c.cpus == 64 and not c.reasons
    assert (c.cpu_scope, c.in_container) == ("host", False)
    busy = host.window({i: 1000 for i in range(64)}, own_s=5.0)  # every core taken: the run got half of one
    assert busy.reasons and "more than the 63 of 64 the run left free" in busy.reasons[0]


def test_other_load_outside_the_runs_cpu_mask_is_not_its_contention(host):
    """A run pinned to CPUs 2 and 3 (taskset, a cpuset) with its two threads; a tenant keeps CPUs 0 and 1 busy.
    0.1 summed every CPU of the machine: 2 cores of other load against none free, shared."""
    c = host.window({0: 1000, 1: 1000, 2: 1000, 3: 1000}, own_s=20.0, mask={2, 3}, need=2.0)
    assert c.cpus == 2 and c.other_load_cores == pytest.approx(0.0) and not c.reasons


def test_the_scope_of_proc_stat_is_detected_and_recorded(host):
    """LXCFS mounts a container's own view over /proc/stat (its CPUs renumbered from 0): then every CPU line is
    the container's and all are summed; and a runtime's marker file says the run is in a container."""
    (host.proc / "self" / "mountinfo").write_text("22 1 0:21 / /proc rw - proc proc rw\n"
                                                  "95 22 0:52 /proc/stat /proc/stat rw - fuse.lxcfs lxcfs rw\n")
    (host.proc.parent / ".dockerenv").write_text("")
    c = host.window({0: 500}, own_s=5.0, cpus=4, mask={17, 18, 19, 20})
    assert (c.cpu_scope, c.in_container, c.cpus) == ("container", True, 4) and not c.reasons
