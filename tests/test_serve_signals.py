"""`bench serve --report` ended by any catchable stop signal: no traceback, every request it took
answered and its record closed (complete, or `server_stopped`), the report written and loadable.
The drain signals let the requests in flight finish; the stop signals (and a second signal during a
drain) cut them at once. Each case waits for its events — the server says it listens, a stream is
in flight — never for a time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from bench.measure.signals import CATCHABLE
from bench.serve.server import STOP_NOW

HANG_S = 900
DRAIN = [s for s in ("SIGINT", *CATCHABLE) if s not in STOP_NOW and hasattr(signal, s)]
STOP = [s for s in STOP_NOW if hasattr(signal, s)]
FAST = {"SIGHUP", "SIGQUIT", "SIGXCPU", "SIGUSR2"}  # one run each in the fast suite; the others are slow


def members(names):
    return [pytest.param(n, marks=() if n in FAST else pytest.mark.slow) for n in names]


class Serve:
    """`bench serve --preset tiny --report` in a process of its own, up and listening."""

    def __init__(self, out, *args):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        self.proc = subprocess.Popen([sys.executable, "-m", "bench", "serve", "--device", "cpu", "--preset", "tiny",
                                      "--port", "0", "--threads", "1", "--report", "--out", str(out),
                                      "--sample-hz", "2", *map(str, args)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.out, self.url = out, None
        for line in self.proc.stdout:
            if "listening on " in line:
                self.url = line.split("listening on ")[1].split()[0]
                break
        assert self.url, self.proc.stderr.read()

    def streams(self, n: int, max_tokens: int = 500):
        import httpx

        body = {"model": "tiny", "prompt": [5, 6, 7], "max_tokens": max_tokens, "ignore_eos": True, "stream": True}
        return [httpx.stream("POST", self.url + "/v1/completions", json=body, timeout=HANG_S) for _ in range(n)]

    def wait_closed(self) -> None:
        import socket
        import time

        host, port = self.url.rsplit("//", 1)[1].rsplit(":", 1)
        deadline = time.monotonic() + HANG_S
        while time.monotonic() < deadline:
            try:
                socket.create_connection((host, int(port)), timeout=HANG_S).close()
            except ConnectionRefusedError:
                return
            time.sleep(0.02)
        raise AssertionError("the server still listens")

    def finish(self) -> tuple[int, str, object]:
        from bench.model.io import load_report

        code = self.proc.wait(HANG_S)
        err = self.proc.stderr.read()
        [path] = self.out.glob("*.json")
        return code, err, load_report(path).results[0]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(HANG_S)


def events_of(lines) -> list[str]:
    return [line[6:] for line in lines if line.startswith("data: ")]


def run_signalled(tmp_path, names: list[str], *args, max_batch: int = 2):
    """A stream in flight and one more (waiting, with --max-batch 1), then the signals: (exit code,
    stderr, the report's result, each stream's events)."""
    serve = Serve(tmp_path, "--max-batch", max_batch, *args)
    try:
        with contextlib_exits(serve.streams(2)) as responses:
            first = responses[0].iter_lines()
            head = [next(first) for _ in range(3)]  # in flight
            for i, name in enumerate(names):
                if i:  # the first was taken: the server no longer listens (two of a kind would merge if pending)
                    serve.wait_closed()
                serve.proc.send_signal(getattr(signal, name))
            events = [events_of(head + list(first)), events_of(responses[1].iter_lines())]
        code, err, result = serve.finish()
    finally:
        serve.kill()
    return code, err, result, events


def contextlib_exits(streams):
    import contextlib

    stack = contextlib.ExitStack()
    responses = [stack.enter_context(s) for s in streams]

    @contextlib.contextmanager
    def held():
        with stack:
            yield responses

    return held()


def check_clean(code: int, err: str, result) -> list:
    assert code == 0, err
    assert "Traceback" not in err and "Exception in ASGI" not in err, err
    assert result.status == "ok", result.error
    log = result.timing.repeats[0].requests
    assert len(log.arrival_s) == 2
    return log.error


@pytest.mark.parametrize("name", members(DRAIN))
def test_a_drain_signal_lets_the_requests_in_flight_finish_and_keeps_the_report(tmp_path, name):
    code, err, result, events = run_signalled(tmp_path, [name])
    errors = check_clean(code, err, result)
    assert errors == [None, None]
    for stream in events:
        assert stream[-1] == "[DONE]" and sum(1 for e in stream[:-1] if "error" not in json.loads(e)) == 500  # the
        # finish reason rides on the last token's chunk


@pytest.mark.parametrize("name", members(STOP))
def test_a_stop_signal_answers_and_closes_every_request_at_once_and_keeps_the_report(tmp_path, name):
    code, err, result, events = run_signalled(tmp_path, [name], max_batch=1)  # one running, one waiting
    assert check_clean(code, err, result) == ["server_stopped", "server_stopped"]
    for stream in events:
        assert stream[-1] == "[DONE]" and json.loads(stream[-2])["error"]["code"] == "server_stopped"
    assert "2 of 2 requests failed (2 server_stopped)" in [w.message for w in result.warnings]


@pytest.mark.parametrize("names", [("SIGTERM", "SIGTERM"), pytest.param(("SIGHUP", "SIGINT"), marks=pytest.mark.slow)])
def test_a_second_signal_during_a_drain_stops_at_once(tmp_path, names):
    code, err, result, events = run_signalled(tmp_path, list(names), "--drain-s", 3600)
    assert check_clean(code, err, result) == ["server_stopped", "server_stopped"]


def test_a_drain_that_runs_out_of_time_cuts_what_is_left(tmp_path):
    code, err, result, events = run_signalled(tmp_path, ["SIGTERM"], "--drain-s", 0)
    assert check_clean(code, err, result) == ["server_stopped", "server_stopped"]
    assert all(json.loads(stream[-2])["error"]["code"] == "server_stopped" for stream in events)


def test_a_bench_serve_a_run_starts_is_told_to_end_with_it_without_code_run_between_fork_and_exec(monkeypatch):
    """Python's subprocess docs: preexec_fn is not safe in a process with threads (the CUDA driver's, the
    Gaudi bridge's run in the worker that starts bench serve); the child asks for PR_SET_PDEATHSIG itself."""
    from bench.core.proc import PARENT_ENV
    from bench.serve import spawn

    seen = {}

    def popen(argv, **kwargs):
        seen.update(kwargs)
        raise OSError("stop here")

    monkeypatch.setattr(spawn.subprocess, "Popen", popen)
    with pytest.raises(OSError):
        spawn.LocalServer(["--device", "cpu"]).start()
    assert "preexec_fn" not in seen and seen["env"][PARENT_ENV] == str(os.getpid())


@pytest.mark.parametrize("parent, code", [("ours", 0), ("another", 1)])
def test_a_child_told_to_end_with_its_starter_ends_at_once_if_the_starter_is_gone(parent, code):
    """The starter gone before the child set PR_SET_PDEATHSIG (the signal would never come): it exits, and
    the variable does not reach its own children."""
    from bench.core.proc import PARENT_ENV

    pid = os.getpid() if parent == "ours" else 1
    code_ = ("import os; from bench.core.proc import die_with_the_starter; die_with_the_starter(); "
             f"print(os.environ.get({PARENT_ENV!r}))")
    done = subprocess.run([sys.executable, "-c", code_], env=dict(os.environ, **{PARENT_ENV: str(pid)},
                          PYTHONPATH=os.pathsep.join(sys.path)), capture_output=True, text=True, timeout=HANG_S)
    assert done.returncode == code and (code or done.stdout.strip() == "None")
