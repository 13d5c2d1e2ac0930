import json
import os

import pytest

from bench.errors import ReportError
from bench.schema import SCHEMA_VERSION, dump_atomic, load_report, validate_report


def minimal_report(**over):
    r = {"schema_version": SCHEMA_VERSION, "bench_version": "0", "run_id": "abc", "created_at": "2026-01-01T00:00:00+00:00",
         "label": None, "environment": {}, "config": {}, "results": [],
         "telemetry": {"sample_hz": 0, "collectors": {}, "phases": [], "samples": []}}
    r.update(over)
    return r


def test_dump_then_load_round_trips(tmp_path):
    path = dump_atomic(minimal_report(label="x"), tmp_path / "r.json")
    assert load_report(path)["label"] == "x"
    assert os.listdir(tmp_path) == ["r.json"]


def test_a_failed_dump_leaves_no_file(tmp_path):
    with pytest.raises(TypeError):
        dump_atomic(minimal_report(label=object()), tmp_path / "r.json")
    assert os.listdir(tmp_path) == []


def test_nan_is_refused_not_written(tmp_path):
    with pytest.raises(ValueError):
        dump_atomic(minimal_report(environment={"x": float("nan")}), tmp_path / "r.json")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("text,expect", [
    ("", "empty file"),
    ("{not json", "invalid JSON"),
    ('{"schema_version": 1, "run_id": "a"', "truncated"),
    ("[1, 2]", "not a bench report"),
    ('{"hello": 1}', "no schema_version"),
])
def test_bad_files_say_what_is_wrong(tmp_path, text, expect):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(ReportError, match=expect):
        load_report(p)


def test_missing_file(tmp_path):
    with pytest.raises(ReportError, match="no such file"):
        load_report(tmp_path / "nope.json")


def test_newer_schema_version_is_refused():
    with pytest.raises(ReportError, match="newer than this bench"):
        validate_report(minimal_report(schema_version=SCHEMA_VERSION + 1))


def test_invalid_field_is_named_with_its_path():
    bad = minimal_report(results=[{"workload": "w", "status": "great"}])
    with pytest.raises(ReportError, match="results/0"):
        validate_report(bad)


def test_report_schema_file_is_valid_json_schema():
    import jsonschema
    from importlib import resources

    schema = json.loads(resources.files("bench").joinpath("report.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
