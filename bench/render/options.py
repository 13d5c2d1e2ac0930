"""Where `bench compare` writes what: the terminal's width and the exports."""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.errors import ConfigError
from bench.core.options import Options, opt

EXPORTS = ("csv", "markdown", "html", "json_out", "vllm_json")


@dataclass(frozen=True)
class ExportOptions(Options):
    title = "output"
    description = ("The tables go to the terminal; each export is written atomically, never over a report compared; "
                   "`-` sends one export to standard output instead of the tables.")

    html: str | None = opt(None, "write one self-contained HTML report (plotly.js embedded: no network needed to "
                                 "view it); `-` writes it to stdout instead of the tables", metavar="OUT.html")
    csv: str | None = opt(None, "write one row per run x workload as CSV (raw values in the units "
                                "docs/compare-format.md names; unknown as —); `-` writes it to stdout instead of the "
                                "tables", metavar="OUT.csv")
    markdown: str | None = opt(None, "write the comparison as Markdown tables (one per workload); `-` writes them to "
                                     "stdout instead of the tables", metavar="OUT.md")
    json_out: str | None = opt(None, "write the comparison as JSON (its own format version; docs/compare-format.md); "
                                     "`-` writes it to stdout instead of the tables", flag="--json", metavar="OUT.json")
    vllm_json: str | None = opt(None, "write every serving result's requests as vLLM's `bench serve --save-result "
                                      "--save-detailed` JSON, one object per repeat and line, for vLLM's tooling "
                                      "(latencies from each request's send, as vLLM measures); `-` writes it to stdout "
                                      "instead of the tables; refused where no report compared holds a serving "
                                      "result's requests", metavar="OUT.jsonl")
    width: int | None = opt(None, "lay the tables out for this many columns (default: the terminal's, or COLUMNS)",
                            minimum=20, maximum=10_000, metavar="COLUMNS")

    def check(self) -> None:
        """`-` is standard output, for any export; one of them can have it."""
        stdout = [self.flag_of(k) for k in EXPORTS if getattr(self, k) == "-"]
        if len(stdout) > 1:
            raise ConfigError(f"{' and '.join(stdout)}: each is given `-`, standard output; one output can go there "
                              "(write the others to files)")

    def targets(self) -> list[tuple[str, str, str]]:
        """(field, flag, path) of each export asked for in a file (`-` is standard output, not a file)."""
        return [(k, self.flag_of(k), getattr(self, k)) for k in EXPORTS if getattr(self, k) not in (None, "-")]

    @property
    def to_stdout(self) -> str | None:
        """The export that goes to standard output instead of the tables (`-`), if one does."""
        return next((k for k in EXPORTS if getattr(self, k) == "-"), None)
