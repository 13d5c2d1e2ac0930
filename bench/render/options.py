"""Where `bench compare` writes what: the terminal's width and the exports."""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.options import Options, opt

EXPORTS = ("csv", "markdown", "html", "json_out", "vllm_json")


@dataclass(frozen=True)
class ExportOptions(Options):
    title = "output"
    description = "The tables go to the terminal; each export is written atomically, never over a report compared."

    html: str | None = opt(None, "write one self-contained HTML report (plotly.js embedded: no network needed to "
                                 "view it)", metavar="OUT.html")
    csv: str | None = opt(None, "write one row per run x workload as CSV (raw values in the units "
                                "docs/compare-format.md names; unknown as —)", metavar="OUT.csv")
    markdown: str | None = opt(None, "write the comparison as Markdown tables (one per workload)", metavar="OUT.md")
    json_out: str | None = opt(None, "write the comparison as JSON (its own format version; docs/compare-format.md); "
                                     "`-` writes it to stdout instead of the tables", flag="--json", metavar="OUT.json")
    vllm_json: str | None = opt(None, "write every serving result's requests as vLLM's `bench serve --save-result "
                                      "--save-detailed` JSON, one object per repeat and line, for vLLM's tooling "
                                      "(latencies from each request's send, as vLLM measures)", metavar="OUT.jsonl")
    verbose: bool = opt(False, "every note in full under each table (by default the verdicts in full and the rest one "
                               "line per cause, with counts)")
    width: int | None = opt(None, "lay the tables out for this many columns (default: the terminal's, or COLUMNS)",
                            minimum=20, maximum=10_000, metavar="COLUMNS")

    def targets(self) -> list[tuple[str, str, str]]:
        """(field, flag, path) of each export asked for (`--json -` is stdout, not a file)."""
        return [(k, self.flag_of(k), getattr(self, k)) for k in EXPORTS if getattr(self, k) not in (None, "-")]
