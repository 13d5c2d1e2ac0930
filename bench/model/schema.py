"""The JSON Schema and the Markdown field tables, generated from the report model.

    python -m bench.model.schema --write     # regenerate bench/report.schema.json and docs/report-format.md
    python -m bench.model.schema --check     # exit 1 when the checked-in copies differ (a test does this too)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic.json_schema import GenerateJsonSchema

from bench.core.typed import INT_LIMIT, MAGNITUDE
from bench.model.fields import adapter
from bench.model.history import HISTORY
from bench.model.rules import IDENTITY, NAMED
from bench.model.report import ANALYSIS_VERSION, SCHEMA_VERSION, WARNING_CODES, Report

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "bench" / "report.schema.json"
DOCS_PATH = ROOT / "docs" / "report-format.md"


class _Untitled(GenerateJsonSchema):
    """pydantic's schema without a title on every field (the field's name says it)."""

    def field_title_should_be_set(self, schema) -> bool:
        return False


def json_schema() -> dict:
    root = adapter(Report).json_schema(schema_generator=_Untitled)
    defs = {"Report": {k: v for k, v in root.items() if k != "$defs"}, **root["$defs"]}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"bench-report-v{SCHEMA_VERSION}",
            "title": f"bench report, schema_version {SCHEMA_VERSION}",
            "description": "Generated from bench/model/report.py; do not edit by hand.",
            "$ref": "#/$defs/Report", "$defs": defs}


def schema_text() -> str:
    return json.dumps(json_schema(), indent=1, ensure_ascii=False) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


INTRO = f"""# bench report format (schema_version {SCHEMA_VERSION})

<!-- Generated from bench/model/report.py by `python -m bench.model.schema --write`; do not edit. -->

One `bench run` writes one JSON file (no pickles, ever). Its shape is defined once, by the dataclasses
in `bench/model/report.py`, which pydantic checks; this page and
[`bench/report.schema.json`](../bench/report.schema.json) (JSON Schema 2020-12) are generated from
them. Loading a report checks every field — types (no text for a number, no bool for an integer),
finite numbers, bounds, known enums, lists whose lengths must agree, phases that end after they
start, ISO times, no unknown keys in fixed structures — and names the first field that is wrong, e.g.
`results[0].timing.repeats[1].step_times_s[7]: not a finite number (nan)`. A file larger than 512 MiB,
nested too deeply, not UTF-8, with an integer too long to read, or not a regular file (a FIFO, a
device) is refused before it is parsed. Open maps (`params`, environment sections, `workload_metrics`,
telemetry samples) accept typed values only: number, string, bool, null, or an Interval / Summary.
Every number lies between -1e30 and 1e30 and every whole number fits in 64 bits, bounds or not (no real
quantity comes near, and no sum or product of a report's values can then overflow).

In brief, top level: `schema_version`, `bench_version`, `run_id`, `created_at`, `status`, `label`,
`origin`, `provenance`, `environment`, `config`, `results`, `telemetry`. Each result: `workload`,
`status`, `error`, `params` (the workload's identity), `timing.repeats[]` (each repeat's raw step
times, work per step, setup, first step and warm-up), `metrics` (throughputs with intervals, step-time
summary, MFU), `workload_metrics` (the workload's own figures: TTFT, recall, ParlAI columns, ...),
`series` (the loss curve), `memory`, `energy` (`device` and `host` apart), `warnings`; a serving
repeat's `requests` holds every request's arrival, start, finish and token times. The structures below
give every field.

Reports are written atomically (a temporary file beside the target, then a rename: a reader never
sees half a file) and checked before they are written, exactly as they will be loaded. A report that
cannot be written goes to `bench-rescue/` in the system temporary directory instead. Statistics are
recomputed from the raw step times when a report is loaded; the stored `metrics` are a convenience for
other readers. Analysis method version: {ANALYSIS_VERSION}.

`benchmarks/load_reports.py` times loading and writing 2,000 realistic reports (`--against CHECKOUT`
takes turns with another checkout of bench and prints the ratio). Running bench is on
[running.md](running.md); reading reports into a comparison is on [comparing.md](comparing.md).
"""


def docs_text() -> str:
    schema = json_schema()
    lines = [INTRO, "## History", "", "| schema_version | change |", "|---|---|"]
    lines += [f"| {v} | {_md(text)} |" for v, text in HISTORY]
    lines += ["", "A newer `schema_version` than the reader knows is refused (\"upgrade bench\"); older ones "
              "are migrated on load (`bench/model/history.py`).", ""]
    lines += ["## Structures", "", "Fields marked * are required; the others have defaults. A scalar is a number, "
              "string, bool or null.", ""]
    for name in structures(schema):
        record = schema["$defs"][name]
        lines += [f"### {name}", "", " ".join(record.get("description", "").split()), "",
                  "| field | type | meaning |", "|---|---|---|"]
        for field, prop in record["properties"].items():
            mark = " *" if field in record.get("required", ()) else ""
            lines.append(f"| `{field}`{mark} | {_md(type_text(prop))} | {_md(prop.get('description', ''))} |")
        lines.append("")
    lines += named_values()
    lines += ["## Warning codes", "", "| code | meaning |", "|---|---|"]
    lines += [f"| `{code}` | {_md(text)} |" for code, text in WARNING_CODES.items()]
    return "\n".join(lines) + "\n"


def named_values() -> list[str]:
    """The rules the open maps keep by name (bench/model/rules.py)."""
    lines = ["## Values named by what they are", "",
             "A value in `workload_metrics`, `series` or a repeat's `figures` whose name ends as below must be what "
             "the name says (an Interval or a Summary of such values where the kind allows); in a measured "
             "report's `params`, the identity fields below are of their type. Null always fits.", "",
             "| name | must be |", "|---|---|"]
    for ends, names, kind in NAMED:
        said = [f"ending `{e}`" for e in ends] + [f"`{n}` (or `….{n}`)" for n in names]
        lines.append(f"| {', '.join(said)} | {kind.words} |")
    by_kind: dict = {}
    for name, kind in IDENTITY.items():
        by_kind.setdefault(kind.words, []).append(f"`{name}`")
    lines += [f"| params {', '.join(names)} | {words} |" for words, names in by_kind.items()]
    return lines + [""]


def structures(schema: dict) -> list[str]:
    """The schema's records in the order a reader meets them, from the report down."""
    seen: list[str] = []

    def visit(node) -> None:
        if isinstance(node, list):
            for v in node:
                visit(v)
        elif isinstance(node, dict):
            name = node.get("$ref", "").rpartition("/")[2]
            if name and name not in seen:
                seen.append(name)
                visit(schema["$defs"][name])
            for v in node.values():
                visit(v)

    visit({"$ref": schema["$ref"]})
    return seen


SCALAR = ["bool", "integer", "number", "string", "null"]
BOUNDS = (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"))
OPEN = (MAGNITUDE, INT_LIMIT)  # the bounds every number has: said once, in the introduction


def type_text(prop: dict) -> str:
    """A field's type in words, from its JSON Schema: `list of number (≥ 0)`, `Interval or null`."""
    if "$ref" in prop:
        return prop["$ref"].rpartition("/")[2]
    if "anyOf" in prop:
        return _either([type_text(p) for p in prop["anyOf"]])
    if "enum" in prop:
        return " | ".join(f"`{v}`" for v in prop["enum"])
    kind = prop.get("type")
    if kind in ("array", "object"):
        item = prop["items"] if kind == "array" else prop.get("additionalProperties", {})
        inner = type_text(item)
        return ("list of " if kind == "array" else "map of ") + (f"({inner})" if "anyOf" in item and " or " in inner else inner)
    bounds = [f"{sign} {prop[key]}" for key, sign in BOUNDS if key in prop and abs(prop[key]) not in OPEN]
    name = {"boolean": "bool"}.get(kind, kind or "any")
    return f"{name} ({', '.join(bounds)})" if bounds else name


def _either(parts: list[str]) -> str:
    """Alternatives joined; the five scalar types together are called a scalar."""
    if all(p in parts for p in SCALAR):
        at = parts.index(SCALAR[0])
        parts = parts[:at] + ["scalar"] + [p for p in parts[at:] if p not in SCALAR]
    return " or ".join(parts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", action="store_true")
    g.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    wanted = {SCHEMA_PATH: schema_text(), DOCS_PATH: docs_text()}
    if args.write:
        for path, text in wanted.items():
            path.write_text(text, encoding="utf-8")
        return 0
    stale = [str(p) for p, text in wanted.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    for s in stale:
        print(f"{s} is out of date: run python -m bench.model.schema --write", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
