"""`bench run | serve | compare | list | env`: parse -> validate -> launch or analyse -> render. The only
place that prints errors and picks exit codes.

Exit codes: 0 ok; 1 a workload failed (the report is written), a file compare could not use, or a
--fail-on gate that found a conclusive regression; 2 bad input or a missing device, refused before
any work; 3 a --fail-on gate that could not rule a regression out; 130 interrupted (Ctrl-C /
SIGTERM), the report so far written.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from bench import __version__
from bench.core.errors import BenchError, ConfigError
from bench.render.format import shown

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INCONCLUSIVE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

# The width is the terminal's (COLUMNS where set, also when piped), else 80; `compare --width` overrides.
err = Console(stderr=True, highlight=False, soft_wrap=True)  # messages are not broken mid-path; tables still fit
out = Console(highlight=False)


def build_parser() -> argparse.ArgumentParser:
    from bench.launch.config import add_run_arguments

    parser = argparse.ArgumentParser(prog="bench", description="Compare Gaudi, NVIDIA GPUs and CPUs on the "
                                     "workloads of an empathetic dialogue model, honestly.")
    parser.add_argument("--version", action="version", version=f"bench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    rp = sub.add_parser("run", help="run workloads on a device and write a JSON report",
                        description="Run workloads on one device (each repeat in a fresh worker process), sample "
                                    "the hardware while they run, and write reports/<UTC time>_<device>_<host>_<id>"
                                    ".json.")
    rp.epilog = ("exit codes: 0 ok; 1 a workload failed, or the report could not be written under --out (it is in "
                 "bench-rescue/ in the temporary directory); 2 bad input or a missing device, before any work; 130 "
                 "interrupted, the report so far written")
    add_run_arguments(rp)
    cp = sub.add_parser("compare", help="compare reports: tables, CSV, Markdown, JSON, one HTML file",
                        description="Pair runs by workload identity and compare throughput with confidence "
                                    "intervals that include run-to-run variance, with every figure each workload "
                                    "declares (latency, recall, ...); runs whose identity differs are shown as not "
                                    "comparable.",
                        epilog="exit codes: 0 ok; 1 a file could not be used, or a --fail-on gate found a conclusive "
                               "regression; 2 bad input or nothing usable; 3 a --fail-on gate could not rule a "
                               "regression out")
    cp.add_argument("files", nargs="+", metavar="FILE", help="report files or globs (reports/*.json)")
    cp.add_argument("--baseline", metavar="LABEL_OR_FILE", help="the run others are compared to "
                                                                "(default: the first file's run)")
    cp.add_argument("--html", metavar="OUT.html", help="write one self-contained HTML report (needs plotly)")
    cp.add_argument("--csv", metavar="OUT.csv", help="write one row per run x workload as CSV (raw values in the "
                                                      "units docs/compare-format.md names; unknown as —)")
    cp.add_argument("--markdown", metavar="OUT.md", help="write the comparison as Markdown tables (one per workload)")
    cp.add_argument("--json", metavar="OUT.json", help="write the comparison as JSON (its own format version; "
                                                        "docs/compare-format.md); `-` writes it to stdout instead "
                                                        "of the tables")
    cp.add_argument("--price", action="append", default=[], metavar="LABEL_OR_DEVICE=USD_PER_HOUR[/DEVICES]",
                    help="price runs: per instance-hour, for an instance of DEVICES devices (default 1); the cost is "
                         "scaled to the devices a run used. LABEL_OR_DEVICE is a run's label or a device kind "
                         "(hpu, cuda, cpu); the price may name a known instance instead: hpu=dl1.24xlarge. "
                         "Repeatable; e.g. hpu=13.11/8")
    cp.add_argument("--prices", metavar="FILE", help="prices, one LABEL_OR_DEVICE=USD_PER_HOUR[/DEVICES] per line "
                                                     "(# comments)")
    cp.add_argument("--kwh-price", metavar="USD", help="price of a kWh: adds the cost of the device energy each run "
                                                        "measured")
    cp.add_argument("--width", type=int, metavar="COLUMNS", help="lay the tables out for this many columns "
                                                                 "(default: the terminal's, or COLUMNS)")
    cp.add_argument("--fail-on", metavar="METRIC:PCT", action="append", default=[],
                    help="a gate: exit 1 when a run is conclusively slower than the baseline by more than PCT "
                         "(the whole 95 %% interval below 1 - PCT), exit 3 when that cannot be ruled out "
                         "(too few repeats, contended runs, a wide interval); e.g. tokens_per_s:5%%")
    cp.add_argument("--force", action="store_true", help="compare runs whose workload identity differs (marked)")
    cp.add_argument("--min-repeats", type=int, default=3, metavar="N",
                    help="repeats each side needs for a faster/slower/same verdict (default: 3)")
    cp.add_argument("--min-effect", default="2%", metavar="PCT",
                    help="differences inside this band read 'same within PCT'; a verdict needs the interval "
                         "beyond it (default: 2%%)")
    sp = sub.add_parser("serve", help="serve the model over an OpenAI-compatible HTTP API",
                        description="Serve BlenderBot (a preset's random-init model, or a local checkpoint with "
                                    "--model DIR) behind an OpenAI-compatible API: POST /v1/completions and "
                                    "/v1/chat/completions (streaming with stream: true), GET /v1/models, /health and "
                                    "/metrics. The engine batches continuously (or statically) on the device; "
                                    "SIGTERM or Ctrl-C drain the requests in flight, then stop.",
                        epilog="exit codes: 0 stopped after draining (the report written with --report); 1 the "
                               "engine or the report failed; 2 bad input, a missing device or a busy port, before "
                               "any work; 130 interrupted before it served")
    from bench.launch.serving import add_serve_arguments

    add_serve_arguments(sp)
    lp = sub.add_parser("list", help="workloads, presets, devices and collectors usable here",
                        description="What this installation can run: registered workloads (with where they come "
                                    "from), presets, devices found here and the telemetry collectors.")
    lp.add_argument("--json", action="store_true", help="machine-readable")
    ep = sub.add_parser("env", help="the environment record a report would carry",
                        description="Host, Python, packages, torch and (with --device) the device, as a report "
                                    "records them.")
    ep.add_argument("--json", action="store_true", help="machine-readable")
    ep.add_argument("--device", metavar="DEVICE", help="also describe this device (cpu, cuda, hpu, auto)")
    return parser


def report_filename(report, device: str) -> str:
    stamp = datetime.fromisoformat(report.created_at).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    host = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())[:40] or "host"
    return f"{stamp}_{device}_{host}_{report.run_id[:8]}.json"


def cmd_run(args) -> int:
    from bench.launch.config import build, check_before_run
    from bench.measure.signals import interrupt_on_sigterm

    interrupt_on_sigterm()
    cfg = build(args)
    auto = cfg.device.device == "auto"
    cfg = check_before_run(cfg)
    quiet = cfg.output.quiet
    if auto and not quiet:
        err.print(f"--device auto: using [bold]{cfg.device.device}[/]")
    sizes = cfg.launch.scaling or (cfg.launch.nproc,)
    codes, reports = [], []
    for n in sizes:
        c = cfg.replace(launch=cfg.launch.replace(nproc=n, scaling=None)) if cfg.launch.scaling else cfg
        if c.launch.distributed and not quiet:
            err.print(f"torchrun: {n} worker(s) per node x {c.launch.nnodes} node(s) on {c.device.device}")
        report, saved, late = _launch(c)
        if c.launch.node_rank > 0:
            out.print(f"node {c.launch.node_rank}: this node's ranks finished; node 0 writes the report")
            continue
        reports.append(report)
        codes.append(_finish_run(report, saved, c, late))
        if codes[-1] == EXIT_INTERRUPTED:
            break
    if len(reports) > 1 and not quiet:
        from bench.analysis.compare import scaling_groups
        from bench.render.compare_view import scaling_table

        out.print(scaling_table(scaling_groups([(r.run_id, r) for r in reports])))
    return max(codes, default=EXIT_OK)


def _launch(cfg):
    """(report, how it was saved, whether a signal came once it was) for one launch. The report is
    written inside the launcher's signal-deferred end, so a signal at the last moment arrives after
    the write; it is caught here, and the run ends as interrupted with its report on disk."""
    from bench.launch.launcher import Launcher, NullView
    from bench.model.io import save_report
    from bench.render.progress import RichView

    def write(report):
        if cfg.launch.node_rank > 0:
            return None
        return save_report(report, Path(cfg.output.out) / report_filename(report, cfg.device.device))

    launcher = Launcher(cfg, NullView() if cfg.output.quiet else RichView(err), ["bench", *sys.argv[1:]], write)
    try:
        return launcher.run(), launcher.written, False
    except KeyboardInterrupt:
        if launcher.report is None:
            raise
        return launcher.report, launcher.written, True


def _finish_run(report, saved, cfg, late: bool = False) -> int:
    from bench.render.summary import print_problems, run_summary

    if not cfg.output.quiet and not late:
        out.print(run_summary(report, out))
        print_problems(err, report)
    if saved.problem:
        err.print(f"[red]error:[/] {shown(saved.problem)}", soft_wrap=False)
    out.print(shown(str(saved.path)), soft_wrap=True)
    if late:
        err.print("interrupted after the report was written")
    if saved.rescued:
        return EXIT_FAILED
    if report.status == "interrupted" or late:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if report.status == "failed" else EXIT_OK


class ServeView:
    """What `bench serve` says while it starts and stops."""

    def __init__(self, quiet: bool):
        self.quiet = quiet

    def begin(self, cfg, plan) -> None:
        if not self.quiet:
            err.print(f"bench serve: building {shown(cfg.common.model)} on {cfg.device.device} and warming the engine")

    def event(self, event: dict) -> None:
        phase = str(event.get("phase", ""))
        if event["event"] == "progress" and phase.startswith("serving "):
            out.print(f"bench serve: listening on {shown(phase[len('serving '):])} (Ctrl-C or SIGTERM to stop)")

    def job(self, *args, **kwargs) -> None: ...
    def finished(self, result) -> None: ...
    def note(self, text: str) -> None: ...
    def end(self) -> None: ...


def cmd_serve(args) -> int:
    from bench.launch.serving import build_serve, check_before_serve
    from bench.launch.launcher import Launcher
    from bench.measure.signals import interrupt_on_sigterm
    from bench.model.io import save_report

    interrupt_on_sigterm()
    cfg, server = build_serve(args)
    cfg = check_before_serve(cfg, server)

    def write(report):
        return save_report(report, Path(cfg.output.out) / report_filename(report, cfg.device.device))

    launcher = Launcher(cfg, ServeView(cfg.output.quiet), ["bench", *sys.argv[1:]], write if server.report else None,
                        job={"api": server.to_json()})
    report = launcher.run()
    if server.report:
        return _finish_run(report, launcher.written, cfg)
    for result in report.results:
        if result.error:
            err.print(f"[red]error:[/] {shown(result.error)}")
    return {"ok": EXIT_OK, "interrupted": EXIT_INTERRUPTED}.get(report.status, EXIT_FAILED)


def cmd_list(args) -> int:
    from bench.launch.inventory import listing
    from bench.render.listing import print_listing

    data = listing()
    if args.json:
        out.print_json(json.dumps(data))
    else:
        print_listing(out, data)
    return EXIT_OK


def cmd_env(args) -> int:
    from bench.launch.inventory import environment
    from bench.render.listing import print_env

    env = environment(args.device)
    if args.json:
        out.print_json(json.dumps(env, default=str))
    else:
        print_env(out, env)
    return EXIT_OK


def cmd_compare(args) -> int:
    from bench.analysis.compare import compare, gates, parse_gate, scaling_groups
    from bench.analysis.frame import comparison_frame
    from bench.analysis.serving import serving_curves
    from bench.analysis.table import document
    from bench.analysis.load import load_many
    from bench.render.compare_view import print_comparisons, scaling_table, serving_table
    from bench.render.tables import write_csv, write_markdown

    for spec in args.fail_on:
        parse_gate(spec)  # a bad gate is refused before any file is read
    if args.html:
        try:
            import plotly  # noqa: F401
        except ImportError:
            raise ConfigError("--html needs plotly: pip install 'bench[html]'") from None
    if args.width is not None:
        if not 20 <= args.width <= 10_000:
            raise ConfigError(f"--width: between 20 and 10000 columns, got {args.width}")
        out.width = err.width = args.width
    min_repeats, min_effect = _min_repeats(args.min_repeats), _percent("--min-effect", args.min_effect)
    costing = _costing(args)
    _check_outputs(args)
    loaded, problems = load_many(args.files)
    for p in problems:
        err.print(f"[red]skipped:[/] {shown(p)}")
    if not loaded:
        err.print("[red]error:[/] no usable report among the files given")
        return EXIT_USAGE
    comparisons = compare(loaded, args.baseline, args.force, min_repeats, min_effect, costing)
    if not comparisons:
        for note in comparisons.notes:
            err.print(f"[yellow]note:[/] {shown(note)}")
        err.print("[red]error:[/] the reports hold no successful workload result to compare")
        return EXIT_USAGE
    outcomes = [o for spec in args.fail_on for o in gates(comparisons, spec)]
    groups = scaling_groups(loaded)
    curves = serving_curves(loaded, costing)
    if args.json != "-":
        print_comparisons(out, comparisons)
        if groups:
            out.print(scaling_table(groups))
        if curves:
            out.print(serving_table(out, curves))
    else:
        for note in comparisons.notes:
            err.print(f"[yellow]note:[/] {shown(note)}")
    if args.csv:
        _write(args.csv, lambda path: write_csv(comparison_frame(comparisons), path))
    if args.markdown:
        _write(args.markdown, lambda path: write_markdown(comparisons, path))
    if args.html:
        _write(args.html, lambda path: _write_html(comparisons, loaded, path))
    if args.json:
        _write_json(args.json, document(comparisons, groups, outcomes, __version__,
                                        datetime.now(timezone.utc).isoformat(timespec="seconds"), curves))
    for outcome, what in outcomes:
        err.print(f"[red]regression:[/] {shown(what)}" if outcome == "fail" else
                  f"[yellow]gate inconclusive:[/] {shown(what)}")
    if any(o == "fail" for o, _ in outcomes):
        return EXIT_FAILED
    if problems:
        return EXIT_FAILED
    return EXIT_INCONCLUSIVE if outcomes else EXIT_OK


def _check_outputs(args) -> None:
    """An export must not replace a report being compared, nor another export of the same command."""
    from bench.analysis.load import expand

    inputs = {os.path.realpath(p) for p in expand(args.files)[0]}
    seen: dict[str, str] = {}
    for flag in ("csv", "markdown", "html", "json"):
        target = getattr(args, flag)
        if target is None or target == "-":
            continue
        real = os.path.realpath(target)
        if real in inputs:
            raise ConfigError(f"--{flag} {target}: is one of the reports being compared; it would be overwritten")
        if real in seen:
            raise ConfigError(f"--{flag} {target}: --{seen[real]} writes there too")
        seen[real] = flag


def _costing(args):
    """Prices from --price and --prices, and --kwh-price; None when none was given (no cost columns)."""
    from bench.analysis.cost import Costing, kwh_price, parse_price, read_prices

    prices = [parse_price(p) for p in args.price]
    if args.prices:
        prices += read_prices(args.prices)
    kwh = kwh_price(args.kwh_price) if args.kwh_price is not None else None
    return Costing(tuple(prices), kwh) if prices or kwh is not None else None


def _min_repeats(value: int) -> int:
    if not 1 <= value <= 1000:
        raise ConfigError(f"--min-repeats: between 1 and 1000, got {value}")
    return value


def _percent(flag: str, text: str) -> float:
    try:
        value = float(text.strip().rstrip("%")) / 100
    except ValueError:
        raise ConfigError(f"{flag}: expected a percentage like 2%, got {text!r}") from None
    if not 0 <= value < 1:
        raise ConfigError(f"{flag}: between 0% and 100%, got {text!r}")
    return value


def _write(target: str, writer) -> None:
    try:
        writer(target)
    except OSError as exc:
        raise BenchError(f"cannot write {target}: {exc.strerror or exc}") from None
    err.print(f"wrote {shown(target)}")


def _write_json(target: str, data: dict) -> None:
    from bench.model.io import write_atomic

    text = json.dumps(data, indent=1, allow_nan=False, ensure_ascii=False, default=str)
    if target == "-":
        sys.stdout.write(text + "\n")
        return
    _write(target, lambda path: write_atomic(path, text + "\n"))


def _write_html(comparisons, loaded, target: str) -> None:
    from bench.model.io import write_atomic
    from bench.render.html import render

    write_atomic(target, render(comparisons, loaded))


COMMANDS = {"run": cmd_run, "serve": cmd_serve, "list": cmd_list, "env": cmd_env, "compare": cmd_compare}


def _tolerant_streams() -> None:
    """A terminal or pipe that cannot encode a character (PYTHONIOENCODING=ascii, LANG=C) shows an
    ASCII stand-in for it (— as -, · as |) instead of failing the command after its work is done."""
    import codecs

    from bench.core.text import ascii_fallback

    codecs.register_error("bench-ascii", lambda exc: (ascii_fallback(exc.object[exc.start:exc.end]), exc.end))
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="bench-ascii")
        except (AttributeError, ValueError, OSError):
            pass


class _QuietOnClosedPipe:
    """stdout or stderr that a reader closed (`bench compare ... | head -3`) or a terminal that hung up:
    the rest of the output is dropped without a word, and the command still finishes its work and
    returns its exit code."""

    GONE = (errno.EPIPE, errno.EIO, errno.ECONNRESET)

    def __init__(self, stream):
        self.stream, self.closed_pipe = stream, False

    def write(self, text):
        if not self.closed_pipe:
            try:
                return self.stream.write(text)
            except OSError as exc:
                if exc.errno not in self.GONE:
                    raise
                self._silence()
        return len(text)

    def flush(self):
        if not self.closed_pipe:
            try:
                self.stream.flush()
            except OSError as exc:
                if exc.errno not in self.GONE:
                    raise
                self._silence()

    def _silence(self):
        self.closed_pipe = True
        try:  # the interpreter's last flush at exit goes to /dev/null too
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def __getattr__(self, name):
        return getattr(self.stream, name)


def cli(argv=None) -> int:
    _tolerant_streams()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _QuietOnClosedPipe(sys.stdout), _QuietOnClosedPipe(sys.stderr)
    try:
        return _cli(argv)
    finally:
        sys.stdout, sys.stderr = saved


def _cli(argv=None) -> int:
    try:
        parser = build_parser()
    except BenchError as exc:  # a plug-in whose flag collides, or that cannot be imported
        err.print(f"[red]error:[/] {shown(str(exc))}")
        return EXIT_USAGE
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BenchError as exc:
        err.print(f"[red]error:[/] {shown(str(exc))}")
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug: one line, the traceback on request
        if os.environ.get("BENCH_DEBUG"):
            raise
        err.print(f"[red]internal error:[/] {shown(f'{type(exc).__name__}: {exc}')} (a bug in bench; "
                  "BENCH_DEBUG=1 shows the traceback)")
        return EXIT_FAILED

