"""The report model: strict loading with the field named, validation at write, the schema and docs
generated from the model, and the migration from schema 1 (0.1's real output as fixtures)."""

import copy
import json
import os
import re
import stat

import pytest
from reportgen import make_report

from bench.core.errors import ReportError
from bench.model.fields import ModelError
from bench.model.io import dump_report, dumps_report, load_report, report_from_data
from bench.model.report import SCHEMA_VERSION, Provenance, Report
from bench.model.schema import DOCS_PATH, SCHEMA_PATH, docs_text, json_schema, schema_text

FIX = os.path.join(os.path.dirname(__file__), "fixtures")
V1 = os.path.join(FIX, "report-v1-tiny.json")
V2 = os.path.join(os.path.dirname(__file__), "fixtures", "report-v2-tiny.json")  # a 0.2 development run
V1_DIST = os.path.join(FIX, "report-v1-nproc2.json")


def data(**over):
    d = make_report("x", 0.1, repeats=2).to_json()
    d.update(over)
    return d


def test_dump_then_load_round_trips(tmp_path):
    r = make_report("x", 0.1, repeats=3)
    path = dump_report(r, tmp_path / "r.json")
    back = load_report(path)
    assert back == r and len(back.results[0].timing.repeats) == 3
    assert os.listdir(tmp_path) == ["r.json"]
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o044, "a report is readable by others (umask permitting)"


def test_a_failed_write_leaves_no_temporary_and_keeps_the_old_file(tmp_path):
    good = dump_report(make_report("x", 0.1), tmp_path / "r.json")
    before = good.read_text()
    bad = make_report("x", 0.1)
    bad.results[0].timing.repeats[0].step_times_s[0] = float("nan")
    with pytest.raises(ReportError, match=r"results\[0\]\.timing\.repeats\[0\]\.step_times_s\[0\].*nan"):
        dump_report(bad, tmp_path / "r.json")
    assert os.listdir(tmp_path) == ["r.json"] and good.read_text() == before


# Parseable JSON that 0.1's schema accepted and that then crashed `bench compare`, or was silently
# wrong: each is refused naming the field.
@pytest.mark.parametrize("mutate,where", [
    (lambda d: d["results"][0]["warnings"].append({"code": 7, "message": "m"}), "results[0].warnings[0].code"),
    (lambda d: d["results"][0]["metrics"].update(mfu="high"), "results[0].metrics.mfu"),
    (lambda d: d["results"][0]["timing"]["repeats"][0]["step_samples"].pop(), "results[0].timing.repeats[0]"),
    (lambda d: d["environment"].update(device="cuda"), "environment.device"),
    (lambda d: d["results"][0]["params"].update(world_size=[2]), "results[0].params.world_size"),
    (lambda d: d["results"][0]["timing"]["repeats"][1]["step_times_s"].__setitem__(2, float("inf")),
     "results[0].timing.repeats[1].step_times_s[2]"),
    (lambda d: d["results"][0]["timing"]["repeats"][0]["step_tokens"].__setitem__(0, float("nan")),
     "results[0].timing.repeats[0].step_tokens[0]"),
    (lambda d: d["results"][0]["timing"]["repeats"][0]["step_times_s"].__setitem__(0, 0.0),
     "results[0].timing.repeats[0].step_times_s[0]"),
    (lambda d: d["results"][0]["timing"]["repeats"][0]["step_samples"].__setitem__(0, "8"),
     "results[0].timing.repeats[0].step_samples[0]"),
    (lambda d: d["results"][0].update(status="great"), "results[0].status"),
    (lambda d: d["results"][0].update(colour="blue"), "results[0].colour"),
    (lambda d: d["results"][0]["workload_metrics"].update(x={"value": 1, "oops": 2}), "results[0].workload_metrics.x"),
    (lambda d: d["telemetry"]["samples"].append({"host.cpu_percent": 3}), "telemetry.samples[10]"),
    (lambda d: d["telemetry"]["phases"][0].update(start_s=5.0, end_s=1.0), "telemetry.phases[0]"),
    (lambda d: d.update(created_at="yesterday"), "created_at"),
    (lambda d: d.update(run_id=""), "run_id"),
])
def test_malformed_but_parseable_reports_name_the_field(mutate, where):
    assert f"f.json: invalid at {where}" in refusal(mutate)


def refusal(mutate) -> str:
    """What loading says of a valid report changed by mutate (through JSON text, as from a file)."""
    d = data()
    mutate(d)
    with pytest.raises(ReportError) as exc:
        report_from_data(json.loads(json.dumps(d)), "f.json")
    return str(exc.value)


def test_open_maps_take_typed_values_so_unknown_plugins_still_load():
    d = data()
    d["results"][0]["params"].update(plugin_knob="x", depth=3, fast=True, ratio=0.5, note=None)
    d["results"][0]["workload_metrics"].update({"plug.latency_s": {"n": 2, "median": 0.1},
                                                 "plug.rate": {"value": 3.0, "ci_low": 2.0, "ci_high": 4.0}})
    d["environment"]["device"].update(vendor_field="anything", count=8)
    r = report_from_data(d)
    assert r.results[0].workload_metrics["plug.latency_s"].median == 0.1
    assert r.results[0].workload_metrics["plug.rate"].ci_high == 4.0


@pytest.mark.parametrize("text,expect", [
    ("", "empty file"), ("{not json", "invalid JSON"), ('{"schema_version": 1, "run_id": "a"', "truncated"),
    ("[1, 2]", "not a bench report"), ('{"hello": 1}', "no schema_version"),
    ('{"schema_version": "2"}', "non-integer schema_version"), ("[" * 100000, "nested too deeply"),
])
def test_bad_files_say_what_is_wrong(tmp_path, text, expect):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(ReportError, match=expect):
        load_report(p)


def test_binary_fifo_directory_and_oversized_files_are_refused_quickly(tmp_path, monkeypatch):
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ReportError, match="not UTF-8"):
        load_report(tmp_path / "bin.json")
    os.mkfifo(tmp_path / "fifo.json")
    with pytest.raises(ReportError, match="not a regular file"):
        load_report(tmp_path / "fifo.json")  # opening a FIFO for reading would block forever
    with pytest.raises(ReportError, match="not a regular file"):
        load_report(tmp_path)
    import bench.model.io as io

    big = dump_report(make_report("x", 0.1), tmp_path / "big.json")
    monkeypatch.setattr(io, "MAX_REPORT_BYTES", 1000)
    with pytest.raises(ReportError, match="larger than"):
        io.load_report(big)


def test_missing_file_and_newer_version():
    with pytest.raises(ReportError, match="no such file"):
        load_report("/nonexistent/r.json")
    with pytest.raises(ReportError, match="newer than this bench"):
        report_from_data(data(schema_version=SCHEMA_VERSION + 1))


def test_checked_in_schema_and_docs_are_generated_from_the_model():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), \
        "bench/report.schema.json drifted from the model: python -m bench.model.schema --write"
    assert DOCS_PATH.read_text(encoding="utf-8") == docs_text(), \
        "docs/report-format.md drifted from the model: python -m bench.model.schema --write"


def test_generated_schema_agrees_with_the_model_on_real_reports():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for report in (make_report("x", 0.1, repeats=2), load_report(V1), load_report(V1_DIST)):
        errors = list(validator.iter_errors(report.to_json()))
        assert errors == [], errors[0].message
    bad = data()
    bad["results"][0]["colour"] = "blue"  # closed structures: the schema refuses unknown keys too
    assert list(validator.iter_errors(bad))


def described_keys(node, sch, schema, path=""):
    """Every key of a closed object in node that the schema does not name."""
    sch = schema["$defs"][sch["$ref"].split("/")[-1]] if "$ref" in sch else sch
    missing = []
    if isinstance(node, dict) and sch.get("additionalProperties") is False:
        for k, v in node.items():
            if k not in sch["properties"]:
                missing.append(f"{path}.{k}")
            else:
                missing += described_keys(v, sch["properties"][k], schema, f"{path}.{k}")
    elif isinstance(node, list) and "items" in sch:
        for i, v in enumerate(node):
            missing += described_keys(v, sch["items"], schema, f"{path}[{i}]")
    return missing


def test_every_field_a_migrated_report_has_is_described():
    schema = json_schema()
    for path in (V1, V1_DIST):
        assert described_keys(load_report(path).to_json(), schema, schema) == []


def test_a_v1_report_from_bench_0_1_migrates():
    raw = json.load(open(V1))
    assert raw["schema_version"] == 1
    r = load_report(V1)
    assert r.schema_version == SCHEMA_VERSION and r.label == "v1-fixture"
    ft = r.result("blender-finetune")
    # 0.1 concatenated both repeats' steps; v2 keeps them apart, with setup and warm-up on the first
    assert [len(x.step_times_s) for x in ft.timing.repeats] == [3, 3]
    assert ft.timing.step_times_s == raw["results"][0]["timing"]["step_times_s"]
    assert ft.timing.repeats[0].first_step_s == raw["results"][0]["timing"]["first_step_s"]
    assert ft.timing.repeats[1].cpu_wall_ratio == raw["results"][0]["timing"]["repeats"][1]["cpu_wall_ratio"]
    assert ft.workload_metrics["parlai.exps"] == raw["results"][0]["metrics"]["parlai"]["exps"]
    assert ft.series["loss"] == raw["results"][0]["metrics"]["losses"]
    gen = r.result("blender-generate")
    assert gen.workload_metrics["ttft_s"].n == raw["results"][1]["metrics"]["ttft_s"]["n"]
    assert r.result("retrieval-encode").workload_metrics["recall.recall_at_1"] is None
    assert r.telemetry.sources["host"].role == "host"


def test_v1_energy_is_split_into_device_and_host_and_clock_keys_get_base_units():
    raw = copy.deepcopy(json.load(open(V1)))
    raw["telemetry"]["samples"][0]["gpu0.sm_clock_mhz"] = 1980
    raw["results"][0]["energy"] = {"joules": 150.0, "window_s": 2.0, "per_sample_j": 1.5, "per_token_j": 0.15,
                                   "devices": {"gpu0": {"joules": 100.0, "method": "energy counter", "reason": None},
                                               "cpu": {"joules": 50.0, "method": "energy counter", "reason": None}}}
    r = report_from_data(raw)
    e = r.results[0].energy
    assert e.device.joules == 100.0 and e.host.joules == 50.0  # 0.1 summed them under one name
    assert e.device.per_sample_j == pytest.approx(1.0) and e.host.per_sample_j == pytest.approx(0.5)
    assert r.telemetry.samples[0]["gpu0.sm_clock_hz"] == 1980e6 and "gpu0.sm_clock_mhz" not in r.telemetry.samples[0]
    assert r.telemetry.sources["gpu0"].role == "accelerator"


def test_a_v1_multi_device_report_migrates_with_its_ranks():
    r = load_report(V1_DIST)
    res = r.results[0]
    assert r.distributed.world_size == 2 and [p.rank for p in res.per_rank] == [0, 1]
    assert all(len(p.timing.step_times_s) == 3 for p in res.per_rank)
    assert res.metrics.samples_per_s.value > 0


def test_a_v2_report_migrates_to_the_current_version():
    raw = json.load(open(V2))
    assert raw["schema_version"] == 2 and "requests" in raw["results"][0]
    r = load_report(V2)
    assert r.schema_version == SCHEMA_VERSION == 5
    res = r.results[0]
    assert res.variant == {} and all(rep.requests is None for rep in res.timing.repeats)
    assert res.timing.step_times_s == [t for rep in raw["results"][0]["timing"]["repeats"] for t in rep["step_times_s"]]


def test_published_reference_reports_load_with_their_figures():
    for name in ("seed-habana-dl1.json", "seed-colab-p100.json"):
        path = os.path.join("reports", "reference", name)
        assert json.load(open(path))["schema_version"] == SCHEMA_VERSION  # kept current: they are shown
        r = load_report(path)
        assert r.origin == "published" and r.results[0].metrics.samples_per_s.value > 0
        assert r.results[0].warnings[0].code == "idle_accelerator"
        assert [f.label for f in r.results[0].figures] == ["samples/s", "exps", "ups", "tps", "ctps", "ltps"]


def test_the_model_checks_what_it_writes():
    r = make_report("x", 0.1)
    r.results[0].params["bad"] = object()
    with pytest.raises(TypeError):
        dumps_report(r)
    r = make_report("x", 0.1)
    r.results[0].status = "splendid"
    with pytest.raises(ReportError, match="results\\[0\\].status"):
        dumps_report(r)
    assert isinstance(Report.from_json(make_report("y", 0.1).to_json()), Report)
    with pytest.raises(ModelError):
        Report.from_json({"schema_version": 2})


# ---- the model's checks, beyond the fixtures above -------------------------------------------------

@pytest.mark.parametrize("mutate,where,said", [
    (lambda d: d["results"][0]["timing"]["repeats"][0].update(index=True), "results[0].timing.repeats[0].index",
     "expected a whole number, got True"),  # no bool for an integer
    (lambda d: d["results"][0]["timing"]["repeats"][0].update(pid=12.0), "results[0].timing.repeats[0].pid",
     "expected a whole number, got 12.0"),
    (lambda d: d["results"][0]["timing"]["repeats"][0].update(threads=0), "results[0].timing.repeats[0].threads",
     "must be at least 1, got 0"),
    (lambda d: d["results"][0]["metrics"]["samples_per_s"].update(level=1.5), "results[0].metrics.samples_per_s.level",
     "must be at most 1, got 1.5"),
    (lambda d: d["results"][0]["timing"]["repeats"][0].update(
        requests={"arrival_s": [0.0], "start_s": [None], "first_token_s": [None], "finish_s": [None],
                  "prompt_tokens": [3], "new_tokens": [2], "batch": [-1]}),
     "results[0].timing.repeats[0].requests.batch[0]", "must be at least 0, got -1"),  # a bound inside list[int | None]
    (lambda d: d["results"][0]["timing"]["repeats"][0]["series"].update(loss=[1.0, float("nan")]),
     "results[0].timing.repeats[0].series.loss[1]", "not a finite number (nan)"),
    (lambda d: d["telemetry"]["samples"][0].update({"gpu0.power_w": float("-inf")}), "telemetry.samples[0].gpu0.power_w",
     "not a finite number (-inf)"),
    (lambda d: d["results"][0]["workload_metrics"].update(x={"n": "a"}), "results[0].workload_metrics.x.n",
     "expected a whole number"),  # the Summary fits best: it speaks, not the Interval
    (lambda d: d["config"].update(x={"a": {"b": 1}}), "config.x.a", "expected bool, integer, number, string or list"),
    (lambda d: d["results"][0].update(fingerprint={"kind": "k", "precision": "fp32", "tokens": [1, 2], "margins": [0.5]}),
     "results[0].fingerprint", "margins (1) and tokens (2) differ in length"),
    (lambda d: d["environment"].update(host=[]), "environment.host", "expected an object, got []"),
    (lambda d: d["telemetry"].update(sample_hz="10"), "telemetry.sample_hz", "expected a number, got '10'"),
])
def test_strict_loading_names_the_field_and_what_was_wrong(mutate, where, said):
    assert f"f.json: invalid at {where}: {said}" in refusal(mutate)


def test_a_list_stops_at_its_first_bad_item():
    """A hostile file of a million NaN costs one error, not one per item (pydantic would keep them all)."""
    from pydantic import ValidationError

    from bench.model.fields import adapter
    from bench.model.report import Repeat

    with pytest.raises(ValidationError) as exc:
        adapter(Repeat).validate_python({"index": 0, "step_times_s": [float("nan")] * 1000,
                                         "step_samples": [1.0] * 1000, "step_tokens": [1.0] * 1000})
    assert exc.value.error_count() == 1


@pytest.mark.parametrize("spoil,where", [
    (lambda r: setattr(r.results[0].memory, "device_peak_bytes", float("nan")), "results[0].memory.device_peak_bytes"),
    (lambda r: setattr(r.results[0].metrics.samples_per_s, "value", float("inf")), "results[0].metrics.samples_per_s.value"),
    (lambda r: r.telemetry.samples[3].update(x=float("nan")), "telemetry.samples[3].x"),
])
def test_a_non_finite_value_is_refused_at_write_never_written_as_null(spoil, where):
    r = make_report("x", 0.1)
    spoil(r)
    with pytest.raises(ReportError, match=rf"invalid at {re.escape(where)}: not a finite number"):
        dumps_report(r)


def test_numpy_and_torch_scalars_and_c_locale_text_are_written_plainly(tmp_path):
    import numpy as np

    r = make_report("x", 0.1)
    r.results[0].flops_per_step = np.float32(3.0)
    r.results[0].timing.repeats[0].threads = np.int64(4)
    r.results[0].params["fast"] = np.bool_(True)
    r.provenance = Provenance(command=["bench", "--label", "caf\udcc3\udca9"])  # argv read through a C locale
    back = load_report(dump_report(r, tmp_path / "r.json"))
    assert back.results[0].flops_per_step == 3.0 and back.results[0].timing.repeats[0].threads == 4
    assert back.results[0].params["fast"] is True and back.provenance.command[-1] == "café"


def test_records_stay_plain_dataclasses_and_take_rules_as_invariants():
    import dataclasses

    from bench.model.fields import ModelError, dataclass, fld, invariant, parse, plain

    @dataclass
    class Span:
        start: float = fld("start", minimum=0)
        stops: list[float] = fld("stops", factory=list, maximum=100)

        @invariant
        def _stops_after_start(self):
            for i, s in enumerate(self.stops):
                if s < self.start:
                    raise ModelError(f"stops[{i}]", "before the start")

        @invariant
        def _few(self):
            if len(self.stops) > 3:
                raise ModelError("", "too many stops")

    span = Span(1.0, [2.0])  # positional, unchecked: code builds records freely
    assert dataclasses.replace(span, start=0.5).start == 0.5 and [f.name for f in dataclasses.fields(Span)] == \
        ["start", "stops"]
    assert parse(Span, plain(span)) == span
    for bad, said in (({"start": 2, "stops": [3, 1]}, "stops[1]: before the start"),
                      ({"start": 0, "stops": [1, 2, 3, 4]}, "(top level): too many stops"),
                      ({"start": 0, "stops": [101]}, "stops[0]: must be at most 100, got 101"),
                      ({"start": -1}, "start: must be at least 0, got -1")):
        with pytest.raises(ModelError, match=re.escape(said)):
            parse(Span, bad)
    with pytest.raises(TypeError, match="@invariant"):
        @dataclass
        class Old:
            x: int = fld("x", 0)

            def check(self, path):  # the former protocol: refused loudly rather than never called
                pass


def test_the_schema_and_the_docs_carry_each_items_bounds():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json_schema()
    times = schema["$defs"]["Repeat"]["properties"]["step_times_s"]
    assert times["items"]["minimum"] == 1e-9 and times["items"]["maximum"] == 1e7
    bad = data()
    bad["results"][0]["timing"]["repeats"][0]["step_times_s"][0] = 0.0
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(bad))
    docs = docs_text()
    assert "| `step_times_s` | list of number (≥ 1e-09, ≤ 10000000.0) |" in docs
    assert "| `schema_version` * | integer (≥ 1) |" in docs and "| `start_s` | list of (number (≥ 0) or null) |" in docs
