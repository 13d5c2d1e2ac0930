"""Everything one `bench compare` outputs, rendered before any of it is written.

render_all(comparison, export, out, err) -> Rendered: the terminal's text (the tables, or `--json -`),
what standard error says before and after it (notes, gates), and the text of each export. Nothing is
written until all of it rendered, so a comparison that cannot be rendered (a report no renderer
expected) prints nothing half-way: the caller can set the file that caused it aside and render the
others (bench/analysis/load.py isolated). Rendered.emit then writes it all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

from bench.core.errors import BenchError, ConfigError
from bench.core.text import json_text, redact_urls, shell_path
from bench.render.format import markup, shown_path


@dataclass
class Rendered:
    comparison: object
    before: str = ""  # standard error, before the tables: notes (with `--json -`)
    stdout: str = ""  # the tables, or the JSON
    after: str = ""  # standard error, after the exports: the gates that did not pass
    exports: list[tuple[str, str]] = field(default_factory=list)  # (target, text)

    def emit(self, out, err) -> None:
        from bench.model.io import write_atomic

        err.write_text(self.before)
        out.write_text(self.stdout)
        for target, text in self.exports:
            try:
                write_atomic(target, text)
            except OSError as exc:
                raise BenchError(f"cannot write {shell_path(target)}: {exc.strerror or exc}") from None
            err.print(markup("wrote {}", shown_path(target)))
        err.write_text(self.after)


def render_all(comparison, export, out, err) -> Rendered:
    """The comparison rendered for the terminal (at out's width) and for every export asked for."""
    from bench.render.compare_view import print_comparison, print_gates, print_notes

    done = Rendered(comparison)
    if not comparison:
        return done
    piped = export.to_stdout  # `-`: that export instead of the tables, the notes on standard error
    with err.captured() as before:
        if piped:
            print_notes(err, comparison)
    if piped:
        done.stdout = export_text(piped, comparison)
    else:
        with out.captured() as tables:
            print_comparison(out, comparison)
        done.stdout = tables[0]
    with err.captured() as after:
        print_gates(err, comparison)
    done.before, done.after = before[0], after[0]
    done.exports = [(target, export_text(kind, comparison)) for kind, _, target in export.targets()]
    return done


def export_text(kind: str, comparison) -> str:
    from bench.render.frame import comparison_frame
    from bench.render.html import render
    from bench.render.tables import csv_text, markdown_text
    if kind == "vllm_json":
        return vllm_text(comparison)
    if kind == "csv":
        return csv_text(comparison_frame(comparison))
    if kind == "markdown":
        return markdown_text(comparison)
    if kind == "html":
        return render(comparison)
    return document_text(comparison) + "\n"


def vllm_text(comparison) -> str:
    """vLLM's result JSON, one object per line, of every serving repeat compared (bench/serve/maths/vllm.py);
    ConfigError where there is none (an empty file said to be written would say nothing)."""
    from bench.serve.maths.vllm import vllm_results

    lines = [json.dumps(r, allow_nan=False, default=str) for r in vllm_results(s.report for s in comparison.sources)]
    if not lines:
        raise ConfigError("--vllm-json: no report compared holds a serving result with its requests recorded "
                          "(bench run --workload blender-serve, or bench serve --report); nothing was written")
    return redact_urls("\n".join(lines)) + "\n"


def document_text(comparison) -> str:
    """The comparison as JSON (docs/compare-format.md), safe for a terminal as well as a file."""
    from bench import __version__
    from bench.render.records import document

    return json_text(document(comparison, __version__, datetime.now(timezone.utc).isoformat(timespec="seconds")))
