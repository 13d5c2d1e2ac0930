"""The load generator, its command line and its outputs as network software (issue 31, round 4): a
key goes only where the user pointed it and is never shown; a server that lies is counted by what it
streamed and a report that lies is recomputed from its own log; every wait on a peer ends; input no
plan should start is refused before any work; every output asked for is written or refused.

Each class is tried through the HTTP client against peers that misbehave on purpose (tests/fake_peer.py,
faults placed by their answers, never by timing), and through `bench run` / `bench compare` in this
process (tests/conftest.py cli_run: no traceback may reach the user). Deadlines in these tests are
made short so that a case ends soon; each asserts that the wait ended and how, never how fast."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

import pytest
from conftest import cli_run
from fake_peer import MODELS, Answer, Peer, completion

from bench.core.errors import BenchError, ConfigError
from bench.model.io import dump_report, load_report
from bench.model.report import Repeat, RequestLog, ServedBy
from bench.serve import endpoint
from bench.serve.endpoint import probe
from bench.serve.http import Endpoint, HttpClient, count_disagreements
from bench.serve.maths.metrics import serving_metrics
from bench.serve.plan import ServingPlan
from bench.serve.session import request_log, run_session

SECRET = "sk-secret-7f3a9c"  # a key that must reach no screen, file or host other than the one named
RUN = ["run", "--device", "cpu", "--preset", "tiny", "--workload", "blender-serve", "--repeats", "1",
       "--sample-hz", "0", "--threads", "1"]


def models_peer(routes=None):
    return Peer({("GET", "/v1/models"): Answer(body=MODELS), **(routes or {})})


def one_request(url, key=None, max_tokens=4, watch=None, n=1):
    """Requests of max_tokens each through the HTTP client, on the real clock: their traces."""
    client = HttpClient(Endpoint(url, "completions", "fake", key, timeout_s=HANG_GUARD_S), time.monotonic,
                        watch=watch)
    plan = ServingPlan((0.0,) * n, tuple((5, 6, 7) for _ in range(n)), (max_tokens,) * n)
    try:
        return run_session(plan, client, time.monotonic)
    finally:
        client.close()


HANG_GUARD_S = 900.0


# ==== class 3: secrets leave ================================================================================
@pytest.mark.parametrize("status", [301, 302, 303, 308])
def test_the_probe_follows_no_redirect_and_names_only_where_it_points(status):
    other = Peer({("GET", "/v1/models"): Answer(body=MODELS)}, host="127.0.0.2")
    with other as elsewhere:
        moved = Answer(status, headers={"Location": f"{elsewhere}/v1/models?token={SECRET}"})
        with Peer({("GET", "/v1/models"): moved}) as url:
            with pytest.raises(ConfigError, match=f"answered {status}, a redirect to http://127.0.0.2") as caught:
                probe(url, SECRET)
    assert SECRET not in str(caught.value) and other.seen == []


def test_a_streamed_request_follows_no_redirect_with_its_key():
    other = Peer({("POST", "/v1/completions"): Answer(body=completion([[1]]))}, host="127.0.0.2")
    with other as elsewhere:
        peer = Peer({("POST", "/v1/completions"): Answer(307, headers={"Location": elsewhere + "/v1/completions"})})
        with peer as url:
            [trace] = one_request(url, SECRET)
    assert trace.error == "http_307" and peer.auth_seen() == [f"Bearer {SECRET}"] and other.seen == []


def test_no_request_reaches_a_host_the_user_did_not_name():
    """Redirects on both paths, and a proxy named by the environment: the other host sees nothing."""
    other = Peer({("GET", "/v1/models"): Answer(body=MODELS), ("POST", "/v1/completions"): Answer(body=b"")},
                 host="127.0.0.2")
    with other as elsewhere:
        with Peer({("GET", "/v1/models"): Answer(307, headers={"Location": elsewhere + "/v1/models"}),
                   ("POST", "/v1/completions"): Answer(308, headers={"Location": elsewhere + "/v1/completions"})}) as url:
            with pytest.raises(ConfigError):
                probe(url, SECRET)
            assert one_request(url, SECRET)[0].error == "http_308"
        with models_peer() as url, pytest.MonkeyPatch.context() as mp:
            for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
                mp.setenv(name, elsewhere)
            mp.delenv("NO_PROXY", raising=False)
            mp.delenv("no_proxy", raising=False)
            assert probe(url, SECRET)["models"] == ["fake"]  # straight to the server named, no proxy
    assert other.seen == []


@pytest.mark.parametrize("key", [SECRET + "\r\n", SECRET + "\n", SECRET + " ", "sk secret-7f3a9c",
                                 SECRET + "\x1b[2J", "sk-sécret-7f3a9c", "x" * 9000])
def test_a_key_that_is_not_a_bearer_token_is_refused_and_never_shown(key, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_TEST_KEY", key)
    with models_peer() as url:
        code, out, err = cli_run(capsys, *RUN, "--endpoint", url, "--api-key-env", "BENCH_TEST_KEY", "--out", tmp_path)
    assert code == 2 and "--api-key-env BENCH_TEST_KEY: its value is not a bearer token" in err
    assert "sk-secret" not in out + err and "sk" + " secret" not in out + err and "xxxxxxxx" not in err
    assert not list(tmp_path.glob("*.json"))


def test_a_key_is_in_no_repr_and_no_error_about_the_server():
    e = Endpoint("http://127.0.0.1:1", key=SECRET)
    assert SECRET not in repr(e) and e.headers() == {"Authorization": f"Bearer {SECRET}"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        with pytest.raises(ConfigError) as caught:
            probe(f"http://127.0.0.1:{s.getsockname()[1]}", SECRET)
    assert SECRET not in str(caught.value)


ENVIRON = f"PATH=/usr/bin\0OPENAI_API_KEY={SECRET}\0HOME=/root\0".encode()


@pytest.mark.parametrize("content", [ENVIRON, f"OPENAI_API_KEY={SECRET}\n".encode(),
                                     f"OPENAI_API_KEY {SECRET}\n".encode(), f"0.5 {SECRET}\n".encode(),
                                     f"{SECRET} 12\n".encode(), f"0.5 12 {SECRET}\n".encode(),
                                     f"0 5\n1e400 {SECRET}\n".encode()])
def test_an_arrivals_file_given_by_mistake_is_refused_without_quoting_it(content, capsys, tmp_path):
    f = tmp_path / "arrivals.txt"
    f.write_bytes(content)
    code, out, err = cli_run(capsys, *RUN, "--arrivals", f, "--out", tmp_path)
    assert code == 2 and "--arrivals" in err and SECRET not in out + err, err
    assert not list(tmp_path.glob("*.json"))


def test_proc_self_environ_is_refused_as_binary_without_a_byte_of_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_TEST_SECRET", SECRET)
    code, out, err = cli_run(capsys, *RUN, "--arrivals", "/proc/self/environ", "--out", tmp_path)
    assert code == 2 and "a binary file" in err and SECRET not in out + err


@pytest.mark.parametrize("line", [f"OPENAI_API_KEY={SECRET}", f"AWS_SECRET={SECRET}/8", f"={SECRET}"])
def test_a_prices_file_given_by_mistake_is_refused_without_quoting_it(line, capsys, tmp_path, two_serving):
    prices = tmp_path / ".env"
    prices.write_text(f"# settings\n{line}\n")
    code, out, err = cli_run(capsys, "compare", *two_serving, "--prices", prices)
    assert code == 2 and ".env:2" in err and SECRET not in out + err, err


@pytest.mark.parametrize("flag", ["--markdown", "--csv", "--json", "--html", "--vllm-json", None])
def test_credentials_in_a_loaded_reports_endpoint_are_shown_nowhere(flag, capsys, tmp_path):
    leaky = serving_report("leaky", served=ServedBy("http", "vllm", f"http://admin:{SECRET}@10.0.0.9:8000", "completions",
                                                    "m", False, telemetry="not sampled"))
    leaky.label = f"see https://u:{SECRET}@example.com/x"
    leaky.results[0].warnings.append(_warning(f"at ftp://{SECRET}@h/"))
    path = dump_report(leaky, tmp_path / "leaky.json")
    args = [flag, "-"] if flag else ["--width", "300"]
    code, out, err = cli_run(capsys, "compare", path, *args)
    assert code == 0, err
    assert SECRET not in out + err
    assert "***@" in out + err or "\\*\\*\\*@" in out  # Markdown escapes the stars


def _warning(message):
    from bench.model.report import ResultWarning

    return ResultWarning("request_errors", message)


# ==== class 4: a server can lie =============================================================================
LIES = {  # (what the server streams, its usage) -> (counted, kept ids, the warning says)
    "claims 2^31-1 for 4": ([[10], [11], [12], [13]], {"completion_tokens": 2**31 - 1}, 4, 4, "2,147,483,647 claimed"),
    "claims 0 for 4": ([[10], [11], [12], [13]], {"completion_tokens": 0}, 4, 4, "0 claimed, 4 streamed"),
    "50 ids in one chunk for 4 asked": ([list(range(50))], {"completion_tokens": 50}, 4, 4, "more tokens than asked"),
    "9 chunks for 4 asked": ([[i] for i in range(9)], {"completion_tokens": 4}, 4, 4, "more tokens than asked"),
    "usage that is no count": ([[10], [11], [12], [13]], {"completion_tokens": -3}, 4, 4, None),
    "usage a float": ([[10], [11], [12], [13]], {"completion_tokens": 4.0e9}, 4, 4, None),
    "usage true": ([[10], [11], [12], [13]], {"completion_tokens": True}, 4, 4, None),
    "honest": ([[10], [11, 12], [13]], {"completion_tokens": 4}, 4, 4, None),
}


@pytest.mark.parametrize("case", list(LIES))
def test_a_reply_counts_what_was_streamed_up_to_what_was_asked(case):
    chunks, usage, counted, kept, said = LIES[case]
    with Peer({("POST", "/v1/completions"): Answer(body=completion(chunks, usage))}) as url:
        [trace] = one_request(url, max_tokens=4)
    assert trace.error is None and trace.new_tokens == counted and len(trace.tokens) == kept
    assert len(trace.token_s) <= counted
    warning = count_disagreements([trace])
    assert (warning is None) if said is None else (said in warning), warning
    if case == "50 ids in one chunk for 4 asked":  # its usage says what it streamed: one cause, said once
        assert "usage.completion_tokens" not in warning
    log = request_log([trace], session_start_s=trace.arrival_s)
    m = serving_metrics([Repeat(0, requests=log)], {"qps": 1.0})
    span = trace.finish_s - trace.arrival_s
    assert m["new_tokens_per_s"] == pytest.approx(counted / span)  # never 2^31 over a few milliseconds


def test_a_server_without_ids_is_counted_by_its_chunks_not_its_claim():
    body = completion([[1], [2], [3]], {"completion_tokens": 1000}, with_ids=False)
    with Peer({("POST", "/v1/completions"): Answer(body=body)}) as url:
        [trace] = one_request(url, max_tokens=8)
    assert trace.new_tokens == 3 and trace.usage_tokens == 1000 and "1,000 claimed, 3 streamed" in count_disagreements(
        [trace])


# -- a stored report that lies is recomputed from its own request log ---------------------------------------------
def _log(n=20, failed=(), offset=0.0):
    rows = []
    for i in range(n):
        a = offset + i * 0.25
        tokens = [] if i in failed else [a + 0.1, a + 0.15, a + 0.2]
        rows.append((a, tokens, "timeout" if i in failed else None))
    return RequestLog(arrival_s=[r[0] for r in rows], start_s=[None] * n,
                      first_token_s=[r[1][0] if r[1] else None for r in rows],
                      finish_s=[r[1][-1] if r[1] else None for r in rows], prompt_tokens=[3] * n,
                      new_tokens=[len(r[1]) for r in rows], batch=[None] * n, token_s=[list(r[1]) for r in rows],
                      sent_s=[r[0] for r in rows], error=[r[2] for r in rows], measured=[True] * n,
                      session_start_s=offset)


def serving_report(label, failed=(), served=None, seed=0, repeats=3, slo_ttft_s=0.5):
    """A blender-serve result whose figures are what its request logs say (as bench writes them)."""
    from reportgen import make_report

    from bench.launch.launcher import repeat_figures
    from bench.serve.workload import BlenderServe

    r = make_report(label, 0.05, repeats=repeats, workload="blender-serve", seed=seed, params={"qps": 4.0},
                    figures=BlenderServe.figures)
    res = r.results[0]
    res.variant = {"qps": [4.0]}
    for rep in res.timing.repeats:
        rep.requests = _log(failed=failed, offset=rep.index * 10.0)
    options = BlenderServe.Options.build({"qps": "4", "requests": "20", "slo_ttft_ms": str(slo_ttft_s * 1000)})
    res.workload_metrics = BlenderServe.metrics(res.timing.measured, res.params, options)
    repeat_figures(res, BlenderServe, options)
    res.served_by = served or ServedBy("in-process", static_shapes=False)
    r.to_json()
    return r


@pytest.fixture
def two_serving(tmp_path):
    a = dump_report(serving_report("a"), tmp_path / "a.json")
    b = dump_report(serving_report("b", seed=1), tmp_path / "b.json")
    return str(a), str(b)


def _lie(report, key, value):
    report.results[0].workload_metrics[key] = value
    return report


STORED_LIES = {  # a figure of the file -> a value its own request log does not bear out
    "requests": 1_000_000,
    "goodput_rps": 40.0,
    "new_tokens_per_s": 11.4e9,
    "errors": 0,
    "slo.met": False,
    "slo_attainment": 0.1,
}


@pytest.mark.parametrize("key", list(STORED_LIES))
def test_a_reports_serving_figures_are_recomputed_from_its_log_and_the_lie_noted(key, tmp_path, capsys):
    honest = serving_report("honest", failed=(3, 7) if key == "errors" else ())
    truth = honest.results[0].workload_metrics[key]
    path = dump_report(_lie(honest, key, STORED_LIES[key]), tmp_path / "lie.json")
    code, out, err = cli_run(capsys, "compare", path, "--json", "-")
    doc = __import__("json").loads(out)
    [row] = doc["workloads"][0]["rows"]
    assert code == 0 and "its stored serving figures disagree with its own request log" in err, err
    assert f"{key} " in err
    [note] = [n for n in doc["notes"] if n["code"] == "recomputed"]
    assert note["values"]["figures"][0][0] == key and note["values"]["figures"][0][2] == truth
    if key == "requests":
        assert doc["serving"][0]["points"][0]["requests"] == 60  # 20 records in each of 3 repeats
    if key in ("goodput_rps", "new_tokens_per_s", "errors", "slo_attainment"):
        assert row[key] == pytest.approx(truth)


def test_an_achieved_rate_and_a_tail_from_unmeasured_requests_are_the_logs():
    from bench.analysis.runs import rechecked
    from bench.model.report import Interval, Summary

    r = serving_report("x")
    res = r.results[0]
    true_ttft, true_rate = res.workload_metrics["ttft_s"], res.workload_metrics["achieved_qps"]
    res.workload_metrics["ttft_s"] = Summary(n=60, median=0.001, p99=0.001)
    res.workload_metrics["achieved_qps"] = Interval(400.0, 390.0, 410.0, 0.95, "t")
    fixed, differ = rechecked(res)
    assert {d[0] for d in differ} == {"ttft_s", "achieved_qps"}
    assert fixed.workload_metrics["ttft_s"].p99 == pytest.approx(true_ttft.p99)
    assert fixed.workload_metrics["achieved_qps"].value == pytest.approx(true_rate.value)
    assert res.workload_metrics["ttft_s"].p99 == 0.001  # the loaded report itself is left as it was
    assert rechecked(serving_report("honest").results[0])[1] == []


def test_a_log_claiming_more_tokens_than_a_request_could_ask_is_counted_up_to_that(tmp_path, capsys):
    """The log itself can lie: 2^31 - 1 tokens for a request of a session that asked for 8 each."""
    from bench.launch.launcher import repeat_figures
    from bench.serve.workload import BlenderServe

    r = serving_report("inflated")
    res = r.results[0]
    res.params.update(new_tokens=8, output_len="fixed")
    honest = BlenderServe.metrics(res.timing.measured, res.params, None)["new_tokens_per_s"]
    res.timing.repeats[0].requests.new_tokens[0] = 2**31 - 1
    res.workload_metrics = BlenderServe.metrics(res.timing.measured, res.params, None)  # written from the lie
    repeat_figures(res, BlenderServe, None)
    code, out, err = cli_run(capsys, "compare", dump_report(r, tmp_path / "x.json"), "--json", "-")
    [row] = __import__("json").loads(out)["workloads"][0]["rows"]
    assert code == 0 and "requests.new_tokens 2,147,483,647 stored, 8 from the log" in err, err
    assert row["new_tokens_per_s"] < 2 * honest  # counted at most 8 for that request, not two billion


def test_a_gate_reads_each_repeats_figure_from_its_log_not_the_files_claim(tmp_path, capsys):
    base = serving_report("base")
    worse = serving_report("worse", failed=(1, 2, 3, 4, 5), seed=1)
    for rep in worse.results[0].timing.repeats:
        rep.figure_values["workload_metrics.errors"] = 0.0  # the file says none failed
    worse.results[0].workload_metrics["errors"] = 0
    a, b = dump_report(base, tmp_path / "a.json"), dump_report(worse, tmp_path / "b.json")
    code, _, err = cli_run(capsys, "compare", a, b, "--fail-on", "errors:5%")
    assert code != 0 and "errors" in err, err


# ==== class 6: waits without bound (the client) ==============================================================
def _silent_listener():
    """A socket that accepts connections (the kernel does) and never answers a byte."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s


STALLS = {
    "a byte every 0.05 s, forever": lambda: Answer(body=b'{"data": [', drip=0.05),  # the issue's, faster
    "headers, then nothing": lambda: Answer(body=b"", hold=True),
    "part of a promised length, then nothing": lambda: Answer(body=b'{"data"', hold=True,
                                                              headers={"Content-Length": "100000"}),
}


@pytest.mark.parametrize("case", list(STALLS))
def test_the_probe_has_a_total_deadline_whatever_the_server_does(case):
    with Peer({("GET", "/v1/models"): STALLS[case]()}) as url:
        with pytest.raises(ConfigError, match="was not answered in full within 0.3 s"):
            probe(url, None, timeout_s=0.3)


def test_a_server_that_accepts_and_never_answers_is_refused_before_any_work(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(endpoint, "PROBE_S", 0.3)
    with _silent_listener() as s:
        code, _, err = cli_run(capsys, *RUN, "--endpoint", f"http://127.0.0.1:{s.getsockname()[1]}", "--out", tmp_path)
    assert code == 2 and "was not answered in full within 0.3 s" in err


def test_a_dripping_model_list_is_refused_through_the_cli(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(endpoint, "PROBE_S", 0.3)
    with Peer({("GET", "/v1/models"): Answer(body=b"{", drip=0.05)}) as url:
        code, _, err = cli_run(capsys, *RUN, "--endpoint", url, "--out", tmp_path)
    assert code == 2 and "--endpoint" in err and "within 0.3 s" in err


def test_a_session_whose_server_stopped_fails_what_is_in_flight_at_once():
    """`watch` says the server was stopped once it holds a request: the request fails with that code
    (not after --request-timeout-s), and one sent later fails at once."""
    peer = Peer({("POST", "/v1/completions"): Answer(hold=True)})
    with peer as url:
        def watch():
            return "server_stopped" if peer.received.is_set() else None

        client = HttpClient(Endpoint(url, "completions", "fake", timeout_s=HANG_GUARD_S), time.monotonic, watch=watch)
        plan = ServingPlan((0.0, 0.0), ((5,), (6,)), (2, 2), concurrency=None)
        try:
            traces = run_session(ServingPlan((0.0,), ((5,),), (2,)), client, time.monotonic)
            later = run_session(plan, client, time.monotonic)
        finally:
            client.close()
    assert [t.error for t in traces + later] == ["server_stopped"] * 3


FAKE_SERVE = {  # a stand-in for `python -m bench serve`: what it does once started
    "stops itself while it starts": "import os, signal; os.kill(os.getpid(), signal.SIGSTOP)",
    "exits while it starts": "import sys; sys.exit(3)",
    "says where it listens, then stops itself": ("import os, signal, sys; print('listening on http://127.0.0.1:1', "
                                                 "flush=True); os.kill(os.getpid(), signal.SIGSTOP)"),
    "says where it listens, then exits": "print('listening on http://127.0.0.1:1', flush=True)",
}


def _local_server(monkeypatch, case):
    from bench.serve import spawn

    monkeypatch.setattr(spawn, "python_argv", lambda *args: [sys.executable, "-c", FAKE_SERVE[case]])
    return spawn.LocalServer([], start_timeout_s=HANG_GUARD_S)


@pytest.mark.parametrize("case,said", [("stops itself while it starts", "it was stopped"),
                                       ("exits while it starts", "it exited with code 3")])
def test_a_server_that_stops_or_exits_while_it_starts_ends_the_wait(case, said, monkeypatch):
    server = _local_server(monkeypatch, case)
    with pytest.raises(BenchError, match=said):
        server.start()  # a hang guard of 900 s: only the process's state can end this wait early
    assert server.proc.poll() is not None  # stopped, it was continued and ended


@pytest.mark.parametrize("case,problem", [("says where it listens, then stops itself", "server_stopped"),
                                          ("says where it listens, then exits", "server_exited")])
def test_a_started_server_that_stops_or_exits_is_seen_and_still_ends(case, problem, monkeypatch):
    server = _local_server(monkeypatch, case)
    assert server.start() == "http://127.0.0.1:1"
    deadline = time.monotonic() + HANG_GUARD_S
    while server.problem() != problem and time.monotonic() < deadline:
        time.sleep(0.01)  # waits for the event (the process's state), not for a time
    assert server.problem() == problem
    code = server.stop()  # SIGTERM with SIGCONT: a stopped process takes it
    assert code in (0, -signal.SIGTERM)


def test_a_warm_up_the_server_does_not_answer_ends_the_run_saying_so(capsys, tmp_path):
    with models_peer({("POST", "/v1/completions"): Answer(503, body={"error": {"message": "busy"}})}) as url:
        code, out, err = cli_run(capsys, *RUN, "--endpoint", url, "--out", tmp_path)
    report = load_report(next(tmp_path.glob("*.json")))
    assert code == 1 and report.results[0].status == "failed"
    assert "did not answer the warm-up" in report.results[0].error and "http_503" in report.results[0].error


# ==== class 8: input refused before any work ====================================================================
BAD_URLS = ["http://127.0.0.1:8000/v 1", "http://127.0.0.1:8000/\x1b[31m", "http://127.0.0.1\r\n:8000",
            "http://127.0.0.1:8000/\tx", "http://127.0.0.1:8000/\u200bv1", "http://127.0.0.1:8000/\u202ev1",
            "http://exa mple.com", "http://127.0.0.1:99999", "http://[::1", "http://a..b:1"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_an_endpoint_url_with_a_space_or_a_control_character_is_refused(url, capsys, tmp_path):
    code, out, err = cli_run(capsys, *RUN, "--endpoint", url, "--out", tmp_path)
    assert code == 2 and "--endpoint" in err and "internal error" not in err and "\x1b" not in out + err, err


MODEL_LISTS = {
    "an id that is an object": {"data": [{"id": {"nested": {"deeper": [1, 2, 3]}}}]},
    "data an object": {"data": {"id": "fake"}},
    "a list at the top": [{"id": "fake"}],
    "no models": {"data": []},
    "an id with an escape": {"data": [{"id": "fake\x1b[2J"}]},
    "an id of 100 kB": {"data": [{"id": "m" * 100_000}]},
    "an entry that is a number": {"data": [7]},
    "null": None,
}


@pytest.mark.parametrize("case", list(MODEL_LISTS) + ["nested 100000 deep", "not JSON", "2 MB"])
def test_a_model_list_that_is_not_one_is_refused_naming_the_endpoint(case, capsys, tmp_path):
    body = {"nested 100000 deep": b"[" * 100_000, "not JSON": b"<html>hi</html>",
            "2 MB": b'{"data": [' + b" " * (2 << 20) + b"]}"}.get(case, MODEL_LISTS.get(case))
    body = body if isinstance(body, bytes) else __import__("json").dumps(body).encode()
    with Peer({("GET", "/v1/models"): Answer(body=body)}) as url:
        code, out, err = cli_run(capsys, *RUN, "--endpoint", url, "--out", tmp_path)
    assert code == 2 and f"--endpoint {url}" in err and "internal error" not in err, err
    assert "\x1b" not in out + err and len(err) < 2000


@pytest.mark.parametrize("name", ["other", "fake ", "FAKE", "fake\x1b[2J"])
def test_an_endpoint_model_the_server_does_not_list_is_refused(name, capsys, tmp_path):
    with models_peer() as url:
        code, _, err = cli_run(capsys, *RUN, "--endpoint", url, "--endpoint-model", name, "--out", tmp_path)
    assert code == 2 and "--endpoint-model" in err and "does not list it; it serves fake" in err and "\x1b" not in err


REFUSED = [  # (flags, what the error names)
    (["--max-tokens-in-flight", "20"], "--max-tokens-in-flight 20: below what a request"),
    (["--max-tokens-in-flight", "40", "--output-len", "normal:3"], "--max-tokens-in-flight 40"),
    (["--conversations", "100000", "--turns", "1000"], "100,000,000 requests"),
    (["--conversations", "2000", "--turns", "1000"], "2,000,000 requests"),
    (["--qps", "1e-5"], "--qps 1e-05: 480 requests at that rate would arrive over"),
    (["--qps", "0.005"], "a day"),
    (["--qps", "1", "--conversations", "10", "--turns", "100", "--think-time-s", "3600"], "--qps 1:"),
    (["--qps", "1,2", "--find-capacity", "--slo-ttft-ms", "100"], "--qps: --find-capacity starts from one rate"),
    (["--max-repeats", "5"], "--max-repeats: only applies with --target-ci"),
    (["--max-time", "60"], "--max-time: only applies with --target-ci"),
    (["--turns", "4"], "--turns: only applies with --conversations"),
    (["--think-time-s", "1"], "--think-time-s: only applies with --conversations"),
    (["--request-timeout-s", "5"], "--request-timeout-s: only applies over HTTP"),
    (["--api-key-env", "X"], "--api-key-env: only applies over HTTP"),
    (["--endpoint-model", "m"], "--endpoint-model: only applies over HTTP"),
    (["--engine", "http", "--api-key-env", "X"], "--api-key-env: the bench serve that --engine http starts"),
    (["--engine", "http", "--endpoint-model", "m"], "--endpoint-model: --engine http serves the run's own model"),
    (["--batch-wait-ms", "5"], "--batch-wait-ms: only applies with --batching static"),
    (["--max-probes", "4"], "--max-probes: only applies with --find-capacity"),
    (["--max-probe-s", "60"], "--max-probe-s: only applies with --find-capacity"),
    (["--load", "constant", "--arrivals-as-drawn"], "--arrivals-as-drawn: only applies to drawn arrivals"),
    (["--load", "concurrency:2", "--qps", "3"], "--qps: unused: a closed loop"),
    (["--endpoint", "http://127.0.0.1:1", "--batching", "static"], "--batching: bench's engine does not run"),
    (["--endpoint", "http://127.0.0.1:1", "--max-tokens-in-flight", "64"], "--max-tokens-in-flight: bench's engine"),
]


@pytest.mark.parametrize("args,said", REFUSED, ids=[" ".join(a)[:50] for a, _ in REFUSED])
def test_input_no_plan_should_start_is_refused_naming_it(args, said, capsys, tmp_path):
    started = time.monotonic()
    code, _, err = cli_run(capsys, *RUN, *args, "--out", tmp_path)
    assert code == 2 and said in err, err
    assert not list(tmp_path.glob("*.json"))
    assert time.monotonic() - started < HANG_GUARD_S  # no plan was built: a guard, not a speed limit


ARRIVALS = {  # a line of an arrivals file -> what the refusal says
    "0.5 1000000000": "a prompt has 1 to 1,048,576 tokens",
    "0.5 1048577": "a prompt has 1 to 1,048,576 tokens",
    "1e308 5": "the time must be from 0 to 86,400 s",
    "inf 5": "the time must be from 0 to 86,400 s",
    "86401 5": "the time must be from 0 to 86,400 s",
    "0.5 -5": "not a whole number of prompt tokens",
    "0.5 5.0": "not a whole number of prompt tokens",
    "0.5 ５": "not a whole number of prompt tokens",  # a full-width digit: isdigit, not ASCII
}


@pytest.mark.parametrize("line", list(ARRIVALS))
def test_an_arrival_beyond_any_session_is_refused_naming_its_line(line, capsys, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text(f"0 5\n{line}\n")
    code, _, err = cli_run(capsys, *RUN, "--arrivals", f, "--out", tmp_path)
    assert code == 2 and "a.txt:2:" in err and ARRIVALS[line] in err, err


def test_an_arrivals_prompt_longer_than_the_context_is_cut_and_said(capsys, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("0 5\n0.01 500\n0.02 33\n0.03 32\n")
    code, _, err = cli_run(capsys, *RUN, "--arrivals", f, "--new-tokens", "2", "--out", tmp_path)
    [result] = load_report(next(tmp_path.glob("*.json"))).results
    [w] = [w for w in result.warnings if w.code == "prompts_cut"]
    assert code == 0 and w.message.startswith("2 of the 4 prompts of --arrivals are longer than --context-len 32")
    assert "the longest 500 tokens" in w.message
    assert result.timing.repeats[0].requests.prompt_tokens == [5, 32, 32, 32]


@pytest.mark.parametrize("args,said", [(["--record-limit", "10"], "only applies with --report"),
                                      (["--batch-wait-ms", "5"], "only applies with --batching static"),
                                      (["--max-tokens-in-flight", "1"], "at least 2")])
def test_bench_serve_refuses_a_flag_it_would_ignore_or_that_admits_nothing(args, said, capsys, tmp_path):
    code, _, err = cli_run(capsys, "serve", "--device", "cpu", "--preset", "tiny", "--port", "0", *args)
    assert code == 2 and args[0] in err and said in err, err


# ==== class 9: outputs that do nothing ============================================================================
@pytest.mark.parametrize("flag,starts", [("--csv", "workload,"), ("--markdown", "### "), ("--html", "<!DOCTYPE html>"),
                                         ("--vllm-json", '{"date"'), ("--json", "{")])
def test_dash_sends_any_export_to_standard_output(flag, starts, two_serving, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli_run(capsys, "compare", *two_serving, flag, "-")
    assert code == 0 and out.startswith(starts), out[:200]
    assert not (tmp_path / "-").exists() and "wrote" not in err
    assert "\x1b" not in out and "\x1a" not in out and "\x01" not in out  # nothing a terminal would act on


@pytest.mark.parametrize("args", [["--csv", "-", "--json", "-"], ["--markdown", "-", "--html", "-"],
                                  ["--vllm-json", "-", "--csv", "-"]])
def test_two_exports_to_standard_output_are_refused(args, two_serving, capsys):
    code, out, err = cli_run(capsys, "compare", *two_serving, *args)
    assert code == 2 and "one output can go there" in err and out == ""


@pytest.mark.parametrize("target", ["out.jsonl", "-"])
def test_a_vllm_export_with_nothing_to_export_is_refused_not_written_empty(target, capsys, tmp_path):
    from reportgen import make_report

    a = dump_report(make_report("steps", repeats=3), tmp_path / "a.json")
    code, out, err = cli_run(capsys, "compare", a, "--vllm-json", tmp_path / target if target != "-" else "-")
    assert code == 2 and "--vllm-json: no report compared holds a serving result" in err and "wrote" not in err
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("gate,failed,slo", [("errors:5%", ((), ()), 0.5),  # the issue's: none on either side
                                             ("errors:5%", ((1, 2), ()), 0.5),  # fewer errors than the baseline
                                             ("late_s.p99:5%", ((), ()), 0.5),  # every request sent on time
                                             ("slo_attainment:5%", ((), ()), 0.01),  # no request met the SLO
                                             ("goodput_rps:5%", ((), ()), 0.01)])
def test_a_gate_on_a_figure_that_is_zero_can_pass(gate, failed, slo, capsys, tmp_path):
    base = dump_report(serving_report("base", failed=failed[0], slo_ttft_s=slo), tmp_path / "a.json")
    run = dump_report(serving_report("run", failed=failed[1], seed=1, slo_ttft_s=slo), tmp_path / "b.json")
    code, _, err = cli_run(capsys, "compare", base, run, "--fail-on", gate)
    assert code == 0 and "gate inconclusive" not in err and "regression" not in err, err


def test_a_gate_on_errors_that_appeared_does_not_pass(capsys, tmp_path):
    base = dump_report(serving_report("base"), tmp_path / "a.json")
    run = dump_report(serving_report("run", failed=(1, 2), seed=1), tmp_path / "b.json")
    code, _, _ = cli_run(capsys, "compare", base, run, "--fail-on", "errors:5%")
    assert code != 0


MARKDOWN = ["[x](javascript:alert(1))", "![x](http://evil/pixel.png)", "<javascript:alert(1)>", "**bold** _it_",
            "`code`", "[x]: javascript:alert(1)", "~~gone~~", "a | b"]


@pytest.mark.parametrize("label", MARKDOWN)
def test_markdown_syntax_in_a_label_is_text_in_markdown_output(label, capsys, tmp_path):
    """The whole --markdown output rendered as CommonMark (markdown-it-py, rich's own parser) makes no
    link, image, emphasis, code or raw HTML of a label."""
    from markdown_it import MarkdownIt

    path = dump_report(serving_report(label), tmp_path / "a.json")
    code, out, _ = cli_run(capsys, "compare", path, "--markdown", "-")
    page = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(out)
    assert code == 0 and "<table>" in page
    for made in ("<a ", "<img", "<em>", "<strong>", "<code>", "<s>", "<del>", "javascript:alert(1)</a"):
        assert made not in page, page[:400]


def test_markdown_text_renders_as_the_label_itself():
    """CommonMark: a backslash before ASCII punctuation stands for the character (markdown-it-py, rich's)."""
    from markdown_it import MarkdownIt

    from bench.core.text import markdown_cell

    for label in MARKDOWN:
        html_out = MarkdownIt("commonmark").enable("table").render(markdown_cell(label))
        assert "<a " not in html_out and "<img" not in html_out and "<em>" not in html_out and "<code>" not in html_out


@pytest.mark.slow
def test_a_bench_serve_the_run_started_and_that_was_stopped_ends_the_run(capsys, tmp_path, monkeypatch):
    """The issue's case, end to end: `--engine http` starts bench serve, which is stopped (SIGSTOP) the
    moment it has answered the probe. The warm-up's requests fail as `server_stopped` at once (not
    after --request-timeout-s), the run fails saying so, and the stopped server is ended with it."""
    import psutil

    from bench.serve import remote

    stopped = []

    def probe_then_stop(url, key=None, timeout_s=None):
        info = probe(url, key, timeout_s)
        pid = next(p.pid for p in psutil.Process().children(recursive=True) if "serve" in " ".join(p.cmdline()))
        os.kill(pid, signal.SIGSTOP)
        stopped.append(psutil.Process(pid))
        return info

    monkeypatch.setattr(remote, "probe", probe_then_stop)
    code, _, err = cli_run(capsys, *RUN, "--engine", "http", "--qps", "8", "--requests", "8", "--in-process",
                           "--out", tmp_path)
    [result] = load_report(next(tmp_path.glob("*.json"))).results
    assert code == 1 and "did not answer the warm-up" in result.error and "server_stopped" in result.error
    assert stopped and not stopped[0].is_running()  # continued, terminated and reaped with its repeat
