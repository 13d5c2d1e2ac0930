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


@pytest.mark.parametrize(("other", "spare", "shared"), [
    (1.0, 1.0, False),  # one thread on two cores beside one busy process: it had its core
    (1.2, 1.0, False),
    (1.4, 1.0, True),  # more than the spare core: someone took the run's
    (0.3, 0.0, True), (0.2, 0.0, False), (2.5, 2.0, True), (0.0, 0.0, False)])
def test_other_load_counts_against_the_cores_the_threads_left_free(other, spare, shared):
    from bench.measure.contention import HostSnapshot, contention

    a = HostSnapshot(at=0.0, busy=0.0, total=0.0, steal=0.0, own=0.0)
    b = HostSnapshot(at=10.0, busy=10.0 * (other + 1.0), total=40.0, steal=0.0, own=10.0)
    c = contention(a, b, spare)
    assert c.other_load_cores == pytest.approx(other) and bool(c.reasons) is shared


def test_spare_cores_are_the_cpus_less_the_threads_of_every_rank(monkeypatch):
    import bench.measure.threads as threads

    monkeypatch.setattr(threads, "affinity", lambda: 4)
    monkeypatch.setattr(threads, "quota_cpus", lambda: None)
    assert threads.spare_cores(1) == 3 and threads.spare_cores(2, ranks=2) == 0 and threads.spare_cores(None) == 0
    monkeypatch.setattr(threads, "quota_cpus", lambda: 2.5)
    assert threads.spare_cores(1) == pytest.approx(1.5) and threads.spare_cores(4) == 0
