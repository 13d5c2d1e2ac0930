"""Fault class: records trusted as typed and consistent. A report whose fields disagree with each other
(a request that finishes before it arrives, a p99 under its median, a rank twice) or with what their
names say (a rate given as text, `slo.met: "no"`, a negative TTFT, a world size as text) is refused
at load naming the field, whichever path reads it; the other files are compared.

The rules are declared on the model (bench/model/rules.py, @invariant methods of the records), so
every reader of a report gets them: compare, the DataFrame facade, a migration's result."""

from __future__ import annotations

import json

import pytest
from conftest import cli_run as run_cli
from faultkit import fault_fixture  # noqa: F401 - each case's own temporary directory
from reportgen import make_report, serving_report

from bench.core.errors import ReportError
from bench.model.io import dump_report, load_report


def _serving_data():
    """A blender-serve report with each repeat's request log: 4 requests, every one served."""
    data = serving_report("srv", [(2.0, True), (4.0, False)], seed=7).to_json()
    for res in data["results"]:
        for rep in res["timing"]["repeats"]:
            rep["requests"] = {"arrival_s": [0.0, 0.5, 1.0, 1.5], "start_s": [0.01, 0.5, 1.2, 1.6],
                               "first_token_s": [0.05, 0.6, 1.3, 1.7], "finish_s": [0.2, 0.8, 1.5, 1.9],
                               "prompt_tokens": [12, 9, 30, 4], "new_tokens": [3, 3, 3, 3], "batch": [0, 1, 2, 3],
                               "token_s": [[0.05, 0.1, 0.2], [0.6, 0.7, 0.8], [1.3, 1.4, 1.5], [1.7, 1.8, 1.9]],
                               "sent_s": [0.0, 0.5, 1.05, 1.5], "error": [None] * 4, "measured": [True] * 4,
                               "turn": [0, 1, 0, 1]}
        res["served_by"] = {"engine": "http", "server": "bench serve", "endpoint": "http://127.0.0.1:8000",
                            "api": "completions", "model": "tiny", "local": True, "started_by_run": True}
    return data


def _log(d):
    return d["results"][0]["timing"]["repeats"][0]["requests"]


def _wm(d):
    return d["results"][0]["workload_metrics"]


SERVING = {  # mutation, the field named
    "a rate given as text": (lambda d: _wm(d).update(offered_qps="20"), "workload_metrics.offered_qps"),
    "slo.met given as 'no'": (lambda d: _wm(d).update({"slo.met": "no"}), "workload_metrics.slo.met"),
    "a negative TTFT": (lambda d: _wm(d)["ttft_s"].update(median=-0.1, min=-0.2), "workload_metrics.ttft_s"),
    "a finish before its arrival": (lambda d: _log(d)["finish_s"].__setitem__(2, 0.9), "requests.finish_s[2]"),
    "a start before its arrival": (lambda d: _log(d)["start_s"].__setitem__(1, 0.4), "requests.start_s[1]"),
    "a first token before its batch started": (lambda d: _log(d)["first_token_s"].__setitem__(2, 1.1),
                                               "requests.first_token_s[2]"),
    "a finish before the first token": (lambda d: _log(d)["finish_s"].__setitem__(3, 1.65), "requests.finish_s[3]"),
    "a finish for a request never served": (lambda d: _log(d)["first_token_s"].__setitem__(0, None),
                                            "requests.finish_s[0]"),
    "a served request with no token": (lambda d: (_log(d)["new_tokens"].__setitem__(1, 0),
                                                  _log(d)["token_s"].__setitem__(1, [])), "requests.new_tokens[1]"),
    "a prompt of no tokens": (lambda d: _log(d)["prompt_tokens"].__setitem__(0, 0), "requests.prompt_tokens[0]"),
    "a negative queueing time": (lambda d: _wm(d).update(queue_s={"n": 4, "median": -1.0}), "workload_metrics.queue_s"),
    "an attainment of 150 %": (lambda d: _wm(d).update(slo_attainment=1.5), "workload_metrics.slo_attainment"),
    "a count of 60.5 requests": (lambda d: _wm(d).update(requests=60.5), "workload_metrics.requests"),
    "a negative goodput": (lambda d: _wm(d).update(goodput_rps=-2.0), "workload_metrics.goodput_rps"),
    "an SLO of minus half a second": (lambda d: _wm(d).update({"slo.ttft_s": -0.5}), "workload_metrics.slo.ttft_s"),
    # the load generator's fields: token times, when it was sent, why it failed, window and turn, who served
    "token times going backwards": (lambda d: _log(d)["token_s"].__setitem__(1, [0.6, 0.75, 0.7]),
                                    "requests.token_s[1]"),
    "a token after the finish": (lambda d: _log(d)["token_s"].__setitem__(2, [1.3, 1.4, 1.6]), "requests.token_s[2][2]"),
    "a token before the first token": (lambda d: _log(d)["token_s"].__setitem__(3, [1.65, 1.8, 1.9]),
                                       "requests.token_s[3][0]"),
    "more token times than tokens": (lambda d: _log(d)["token_s"].__setitem__(0, [0.05, 0.1, 0.15, 0.2]),
                                     "requests.token_s[0]"),
    "sent before it arrived": (lambda d: _log(d)["sent_s"].__setitem__(2, 0.9), "requests.sent_s[2]"),
    "a first token before it was sent": (lambda d: _log(d)["sent_s"].__setitem__(3, 1.72), "requests.first_token_s[3]"),
    "an error on a completed request": (lambda d: _log(d)["error"].__setitem__(0, "timeout"), "requests.error[0]"),
    "an error code that is prose": (lambda d: (_log(d)["error"].__setitem__(1, "Broken \x1b[31m pipe"),
                                               _log(d)["finish_s"].__setitem__(1, None)), "requests.error[1]"),
    "a failed request that says nothing": (lambda d: _log(d)["finish_s"].__setitem__(1, None), "requests.error[1]"),
    "measured given as 'yes'": (lambda d: _log(d)["measured"].__setitem__(0, "yes"), "requests.measured"),
    "a negative turn": (lambda d: _log(d)["turn"].__setitem__(1, -1), "requests.turn"),
    "a turn given as text": (lambda d: _log(d)["turn"].__setitem__(1, "2"), "requests.turn"),
    "a token times column one short": (lambda d: _log(d)["token_s"].pop(), "requests"),
    "a negative ITL": (lambda d: _wm(d).update(itl_s={"n": 4, "median": -0.01}), "workload_metrics.itl_s"),
    "a TPOT p99 as text": (lambda d: _wm(d).update(tpot_p99_s="0.2"), "workload_metrics.tpot_p99_s"),
    "a count of errors of one cause as a fraction": (lambda d: _wm(d).update({"errors.timeout": 1.5}),
                                                     "workload_metrics.errors.timeout"),
    "an engine that does not exist": (lambda d: d["results"][0]["served_by"].update(engine="grpc"), "served_by.engine"),
    "a loopback flag given as 'yes'": (lambda d: d["results"][0]["served_by"].update(local="yes"), "served_by.local"),
    "an API that does not exist": (lambda d: d["results"][0]["served_by"].update(api="grpc"), "served_by.api"),
    "a batching given as a number": (lambda d: d["results"][0]["params"].update(batching=2), "params.batching"),
    "a turn count of 0": (lambda d: d["results"][0]["params"].update(turns=0), "params.turns"),
}


def _rep(d):
    return d["results"][0]["timing"]["repeats"][0]


def _metrics(d):
    return d["results"][0]["metrics"]


RECORDS = {
    "a world size given as text": (lambda d: d["results"][0]["params"].update(world_size="2"), "params.world_size"),
    "a batch size given as text": (lambda d: d["results"][0]["params"].update(batch_size="8"), "params.batch_size"),
    "a batch size of 0": (lambda d: d["results"][0]["params"].update(batch_size=0), "params.batch_size"),
    "a precision given as a number": (lambda d: d["results"][0]["params"].update(precision=32), "params.precision"),
    "kv_cache given as 'yes'": (lambda d: d["results"][0]["params"].update(kv_cache="yes"), "params.kv_cache"),
    "a p99 below the median": (lambda d: _metrics(d)["step_time_s"].update(p99=0.01), "step_time_s.p99"),
    "a mean above the maximum": (lambda d: _metrics(d)["step_time_s"].update(mean=99.0), "step_time_s.mean"),
    "a negative spread": (lambda d: _metrics(d)["step_time_s"].update(stdev=-1.0), "step_time_s.stdev"),
    "an interval upside down": (lambda d: _metrics(d)["samples_per_s"].update(ci_low=90.0, ci_high=10.0),
                                "samples_per_s.ci_high"),
    "a negative per-token gap": (lambda d: _rep(d)["series"].update(token_gap_s=[0.01, -0.02]), "series.token_gap_s[1]"),
    "a negative live-model figure": (lambda d: _rep(d)["figures"].update(allreduce_s=-0.5), "figures.allreduce_s"),
    "a rank twice": (lambda d: d["results"][0].update(per_rank=[{"rank": 0, "status": "ok"}, {"rank": 0, "status": "ok"}]),
                     "per_rank[1].rank"),
    "a rank beyond its world": (lambda d: d.update(distributed={"world_size": 2, "nnodes": 1, "backend": "gloo",
                                                                "launcher": "torchrun",
                                                                "ranks": [{"rank": 0, "status": "ok"},
                                                                          {"rank": 2, "status": "ok"}]}),
                                "distributed.ranks[1].rank"),
}


def _check(data, named, tmp_path, capsys):
    data["run_id"] = "bad-0000"
    a = dump_report(make_report("a", 0.2, repeats=3), tmp_path / "a.json")
    b = dump_report(make_report("b", 0.1, seed=1, repeats=3), tmp_path / "b.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    code, out, err = run_cli(capsys, "compare", a, b, bad)
    assert code == 1 and "bad.json: invalid at" in err and named in err, err
    assert "b vs a" in " ".join(out.split())  # the others were compared
    with pytest.raises(ReportError, match="invalid at"):  # any reader of the file is refused the same
        load_report(bad)


@pytest.mark.parametrize("kind", list(SERVING))
def test_a_serving_record_that_contradicts_itself_or_its_names_is_refused(kind, tmp_path, capsys):
    data = _serving_data()
    load_report(dump_report(load_report_from(data), tmp_path / "fine.json"))  # the unmutated one is fine
    mutate, named = SERVING[kind]
    mutate(data)
    _check(data, named, tmp_path, capsys)


def load_report_from(data):
    from bench.model.io import report_from_data

    return report_from_data(json.loads(json.dumps(data)))


@pytest.mark.parametrize("kind", list(RECORDS))
def test_a_record_that_contradicts_itself_or_its_names_is_refused(kind, tmp_path, capsys):
    data = make_report("x", 0.1, repeats=3, seed=3).to_json()
    mutate, named = RECORDS[kind]
    mutate(data)
    _check(data, named, tmp_path, capsys)


def test_a_published_report_keeps_its_sources_own_words_in_its_identity(tmp_path):
    """Published reports transcribe what their source said ("batch_size": "24, dynamic batching")."""
    data = make_report("p", 0.1, repeats=3).to_json()
    data.update(origin="published", source="a paper")
    data["results"][0]["params"].update(batch_size="24, dynamic batching", world_size="8 cards, one used")
    load_report_from(data)


def test_a_run_whose_workload_records_a_wrong_type_keeps_its_report_unchecked_in_the_rescue(tmp_path, capsys,
                                                                                          monkeypatch,
                                                                                          own_tmp_and_handlers):
    """Written as the loader will read it: a measured run bench itself got wrong is rescued, said."""
    from workloads.retrieval_encode import RetrievalEncode

    real = RetrievalEncode.params
    monkeypatch.setattr(RetrievalEncode, "params", lambda self: {**real(self), "world_size": "1"})
    code, _, err = run_cli(capsys, "run", "--device", "cpu", "--preset", "tiny", "--repeats", 1, "--steps", 2,
                           "--warmup", 1, "--workload", "retrieval-encode", "--in-process", "--sample-hz", 0,
                           "--out", tmp_path / "o")
    assert code == 1 and "world_size" in err and "bench-rescue" in err
