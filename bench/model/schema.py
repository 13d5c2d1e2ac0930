"""The JSON Schema and the Markdown field tables, generated from the report model.

    python -m bench.model.schema --write     # regenerate bench/report.schema.json and docs/report-format.md
    python -m bench.model.schema --check     # exit 1 when the checked-in copies differ (a test does this too)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.model.fields import dataclasses_reachable, field_rows, schema_of
from bench.model.history import HISTORY
from bench.model.report import ANALYSIS_VERSION, SCHEMA_VERSION, WARNING_CODES, Report

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "bench" / "report.schema.json"
DOCS_PATH = ROOT / "docs" / "report-format.md"


def json_schema() -> dict:
    defs: dict = {}
    root = schema_of(Report, defs)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"bench-report-v{SCHEMA_VERSION}",
            "title": f"bench report, schema_version {SCHEMA_VERSION}",
            "description": "Generated from bench/model/report.py; do not edit by hand.",
            **{k: v for k, v in root.items()}, "$defs": defs}


def schema_text() -> str:
    return json.dumps(json_schema(), indent=1, ensure_ascii=False) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


INTRO = f"""# bench report format (schema_version {SCHEMA_VERSION})

<!-- Generated from bench/model/report.py by `python -m bench.model.schema --write`; do not edit. -->

One `bench run` writes one JSON file (no pickles, ever). Its shape is defined once, by the dataclasses
in `bench/model/report.py`; this page and [`bench/report.schema.json`](../bench/report.schema.json)
(JSON Schema 2020-12) are generated from them. Loading a report checks every field — types, finite
numbers, known enums, lists whose lengths must agree, no unknown keys in fixed structures — and names
the first field that is wrong. Open maps (`params`, environment sections, `workload_metrics`,
telemetry samples) accept typed values only: number, string, bool, null, or an Interval / Summary.

Statistics are recomputed from the raw step times when a report is loaded; the stored `metrics` are a
convenience for other readers. Analysis method version: {ANALYSIS_VERSION}.
"""


def docs_text() -> str:
    lines = [INTRO, "## History", "", "| schema_version | change |", "|---|---|"]
    lines += [f"| {v} | {_md(text)} |" for v, text in HISTORY]
    lines += ["", "A newer `schema_version` than the reader knows is refused (\"upgrade bench\"); older ones "
              "are migrated on load (`bench/model/history.py`).", ""]
    lines += ["## Structures", "", "Fields marked * are required; the others have defaults.", ""]
    for cls in dataclasses_reachable(Report):
        doc = " ".join((cls.__doc__ or "").split())
        lines += [f"### {cls.__name__}", "", doc, "", "| field | type | meaning |", "|---|---|---|"]
        lines += [f"| {name} | {_md(tp)} | {_md(meaning)} |" for name, tp, meaning in field_rows(cls)]
        lines.append("")
    lines += ["## Warning codes", "", "| code | meaning |", "|---|---|"]
    lines += [f"| `{code}` | {_md(text)} |" for code, text in WARNING_CODES.items()]
    return "\n".join(lines) + "\n"


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
