"""`bench run | study | serve | compare | list | env`: parse -> validate -> launch or analyse -> render. The only
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
from pathlib import Path

from bench import __version__
from bench.core.errors import BenchError, ConfigError
from bench.core.text import shell_path
from bench.render.format import markup, shown_path
from bench.render.screen import OutputError, Screen

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INCONCLUSIVE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

# The width is the terminal's (COLUMNS where set to a usable width, also when piped), else 80; `compare
# --width` overrides. Messages on stderr are not broken mid-path; tables still fit.
err, out = Screen(stderr=True), Screen()


def chosen_workloads(argv) -> tuple[str, ...]:
    """The --workload values on a command line, read before it is parsed (the help shows a scenario's
    own options only where it is chosen)."""
    out = []
    for i, arg in enumerate(argv):
        if arg == "--workload" and i + 1 < len(argv):
            out.append(argv[i + 1])
        elif arg.startswith("--workload="):
            out.append(arg.partition("=")[2])
    return tuple(out)


def build_parser(argv=()) -> argparse.ArgumentParser:
    """The parser; `argv` (the command line to parse) only decides which options the help shows."""
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
    add_run_arguments(rp, chosen_workloads(argv))
    cp = sub.add_parser("compare", help="compare reports: tables, CSV, Markdown, JSON, one HTML file",
                        description="Pair runs by workload identity and compare throughput with confidence "
                                    "intervals that include run-to-run variance, with every figure each workload "
                                    "declares (latency, recall, ...); runs whose identity differs are shown as not "
                                    "comparable.",
                        epilog="exit codes: 0 ok; 1 a file could not be used, or a --fail-on gate found a conclusive "
                               "regression; 2 bad input or nothing usable; 3 a --fail-on gate could not rule a "
                               "regression out")
    cp.add_argument("files", nargs="+", metavar="FILE", help="report files or globs (reports/*.json)")
    add_compare_arguments(cp)
    sp = sub.add_parser("serve", help="serve the model over an OpenAI-compatible HTTP API",
                        description="Serve BlenderBot (a preset's random-init model, or a local checkpoint with "
                                    "--model DIR) behind an OpenAI-compatible API: POST /v1/completions and "
                                    "/v1/chat/completions (streaming with stream: true), GET /v1/models, /health and "
                                    "/metrics. The engine batches continuously (or statically) on the device; "
                                    "SIGTERM or Ctrl-C drain the requests in flight, then stop.",
                        epilog="exit codes: 0 stopped after draining (the report written with --report); 1 the "
                               "engine or the report failed; 2 bad input, a missing device or a busy port, before "
                               "any work; 130 interrupted before it served")
    from bench.launch.serve_command import add_serve_arguments

    add_serve_arguments(sp)
    add_study_parser(sub)
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


def add_compare_arguments(parser) -> None:
    from bench.analysis.options import CompareOptions
    from bench.render.options import ExportOptions

    taken: dict[str, str] = {"--help": "bench", "-h": "bench"}
    for group in (CompareOptions, ExportOptions):
        group.add_arguments(parser, taken)


def add_study_parser(sub) -> None:
    """`bench study`: the study (a name, a file, or --from), its own flags, the box's (the device's, every
    device's own) and the output's."""
    from bench.devices.options import DeviceOptions
    from bench.launch.config import add_groups, device_groups
    from bench.launch.options import OutputOptions
    from bench.study.options import StudyOptions

    st = sub.add_parser("study", help="run a study: the runs of one question, planned within a device-time budget",
                        description="Run a study: the runs of one question (a TOML file, or a built-in: smoke, "
                                    "helpline), resolved by the same option declarations as bench run's flags, "
                                    "planned against a device-time budget before any work (each run's estimate, "
                                    "and what was cut to fit), run (one report per run, each carrying the study), "
                                    "and answered first with a decision table (docs/studies.md).",
                        epilog="exit codes: 0 ok (also a --dry-run); 1 a run failed; 2 bad input or a missing "
                               "device, before any work; 130 interrupted, the reports so far written")
    st.add_argument("study", nargs="?", metavar="NAME|FILE", help="smoke, helpline, or a study file (TOML)")
    add_groups(st, [StudyOptions, DeviceOptions, *device_groups(), OutputOptions])


def report_filename(report, device: str) -> str:
    stamp = report.created_utc.strftime("%Y%m%dT%H%M%SZ")
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
        err.print(markup("--device auto: using [bold]{}[/]", cfg.device.device))
    plan = _say_plans(cfg)
    sizes = cfg.launch.scaling or (cfg.launch.nproc,)
    threads = _threads(cfg, sizes)
    codes, reports = [], []
    for n in sizes:
        c = cfg.replace(launch=cfg.launch.replace(nproc=n, scaling=None)) if cfg.launch.scaling else cfg
        if c.launch.distributed and not quiet:
            err.print(markup("torchrun: {} worker(s) per node x {} node(s) on {}", n, c.launch.nnodes, c.device.device))
            _say_awaited(c)
        report, saved, late = _launch(c, threads, plan=plan)
        if c.launch.node_rank > 0:
            codes.append(_node_done(report, c.launch.node_rank))
            continue
        reports.append(report)
        codes.append(_finish_run(report, saved, c, late))
        if codes[-1] == EXIT_INTERRUPTED:
            break
    if len(reports) > 1 and not quiet:
        from bench.analysis.scaling import scaling_of
        from bench.render.compare_view import scaling_table

        out.print(scaling_table(scaling_of([(r.run_id, r) for r in reports])))
    return max(codes, default=EXIT_OK)


def _say_awaited(cfg) -> None:
    from bench.launch.torchrun import awaited

    text = awaited(cfg)
    if text:
        err.print(markup("{}", text))


def _node_done(report, node: int) -> int:
    """What a node other than 0 says at its end (node 0 writes the report): that its ranks
    finished, or what failed here — a failed gather or rendezvous is not left for node 0 alone."""
    if report.status == "ok":
        out.print(markup("node {}: this node's ranks finished; node 0 writes the report", node))
        return EXIT_OK
    for r in report.results:
        if r.error:
            err.print(markup("[red]node {}: {} {}:[/] {}", node, r.workload, r.status, r.error))
    return EXIT_INTERRUPTED if report.status == "interrupted" else EXIT_FAILED


def _threads(cfg, sizes):
    """The CPU threads of every rank of the run (a sweep: the same at each world size), said in the
    run line; None on devices whose threads bench does not choose."""
    from bench.measure.threads import check_sweep, choose_here
    from bench.render.summary import threads_line

    if cfg.device.device != "cpu":
        return None
    choice = choose_here(max(sizes), cfg.device.threads)
    if len(sizes) > 1:
        check_sweep(choice, sizes)
    if not cfg.output.quiet:
        err.print(markup("{}", threads_line(choice)), soft_wrap=True)
    return choice


def _say_plans(cfg):
    """The run's plan (each workload's estimated device time), and what a workload will do where that
    needs saying before it starts (a capacity search). Returns the plan, for the report."""
    from bench.launch import catalog
    from bench.launch.plan import run_plan
    from bench.render.plan_view import plan_renderable

    plan, _ = run_plan(cfg)
    if not cfg.output.quiet:
        err.print(plan_renderable(plan))
    for name in cfg.workloads:
        text = catalog.scenario(name).preamble(cfg.options_of(name))
        if text and not cfg.output.quiet:
            err.print(markup("{}: {}", name, text))
    return plan


def _launch(cfg, threads=None, **launcher_kw):
    """(report, how it was saved, whether a signal came once it was) for one launch. The report is
    written inside the launcher's signal-deferred end, so a signal at the last moment arrives after
    the write; it is caught here, and the run ends as interrupted with its report on disk. The keywords
    go to the Launcher (a plan, a study's record and budget)."""
    from bench.launch.launcher import Launcher, NullView
    from bench.model.io import save_report
    from bench.render.progress import RichView

    def write(report):
        if cfg.launch.node_rank > 0:
            return None
        return save_report(report, Path(cfg.output.out) / report_filename(report, cfg.device.device))

    launcher = Launcher(cfg, NullView() if cfg.output.quiet else RichView(err), ["bench", *sys.argv[1:]], write,
                        threads=threads, **launcher_kw)
    try:
        return launcher.run(), launcher.written, False
    except KeyboardInterrupt:
        if launcher.report is None:
            raise
        return launcher.report, launcher.written, True


def _finish_run(report, saved, cfg, late: bool = False, summary: bool = True) -> int:
    from bench.render.summary import print_problems, run_summary

    if not cfg.output.quiet and not late and summary:
        out.print(run_summary(report, out))
        print_problems(err, report, cfg.output.verbose)
    if saved.problem:
        err.print(markup("[red]error:[/] {}", saved.problem), soft_wrap=True)  # its path stays whole for copying
    try:
        out.print(shown_path(saved.path), soft_wrap=True)
    except OutputError as exc:  # the report is written: say where, on the other stream
        raise OutputError(f"{exc}; the report was written to {shell_path(saved.path)}") from None
    if late:
        err.print(markup("interrupted after the report was written"))
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
            err.print(markup("bench serve: building {} on {} and warming the engine", cfg.common.model, cfg.device.device))

    def event(self, event: dict) -> None:
        phase = str(event.get("phase", ""))
        if event["event"] == "started" and event.get("watch"):  # the card it acquired: a run that started it watches it
            out.print(markup("bench serve: device {}", json.dumps(event["watch"], sort_keys=True)), soft_wrap=True)
        if event["event"] == "progress" and phase.startswith("serving "):
            out.print(markup("bench serve: listening on {} (Ctrl-C or SIGTERM to stop)", phase[len("serving "):]))

    def job(self, *args, **kwargs) -> None: ...
    def finished(self, result) -> None: ...
    def note(self, text: str) -> None: ...
    def end(self) -> None: ...


def cmd_serve(args) -> int:
    from bench.core.proc import die_with_the_starter
    from bench.launch.serve_command import build_serve, check_before_serve
    from bench.launch.launcher import Launcher
    from bench.measure.signals import interrupt_on_sigterm
    from bench.model.io import save_report

    die_with_the_starter()  # a bench serve that a run started ends with it
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
            err.print(markup("[red]error:[/] {}", result.error))
    return {"ok": EXIT_OK, "interrupted": EXIT_INTERRUPTED}.get(report.status, EXIT_FAILED)


def cmd_study(args) -> int:
    """Resolve -> plan -> (stop on --dry-run) -> run each run -> the decision first."""
    import dataclasses

    from bench.core.options import namespace_values
    from bench.launch.config import check_before_run
    from bench.measure.signals import interrupt_on_sigterm
    from bench.render.plan_view import plan_renderable
    from bench.study import resolve
    from bench.study.options import StudyOptions
    from bench.study.plan import plan_study

    interrupt_on_sigterm()
    opts = StudyOptions.build(namespace_values(args, StudyOptions))
    spec, source, carried = _study_source(opts, args.study)
    study, cfgs = resolve.resolve(spec, args)
    if carried is not None:
        resolve.check_same(study, carried, spec.where)
    if opts.budget_s() is not None:
        study = dataclasses.replace(study, budget_s=opts.budget_s())
    cfgs = [check_before_run(c) for c in cfgs]
    planned, plan = plan_study([r.name for r in study.runs], cfgs, study.budget_s)
    quiet = cfgs[0].output.quiet
    if not quiet:
        err.print(plan_renderable(plan, f"plan of study {study.name} on {cfgs[0].device.device}"))
    if opts.dry_run:
        err.print(markup("dry run: nothing was measured and no report was written"))
        return EXIT_OK
    return _run_study(study, source, planned, plan, cfgs[0])


def _study_source(opts, name: str | None):
    """(the study as its file says it, where it came from, the resolved study a report carries or None)."""
    from bench.core.errors import ReportError
    from bench.model.io import load_report
    from bench.study import file as study_file
    from bench.study.resolve import from_report

    given = opts.source(name)
    if opts.from_report is None:
        spec = study_file.load(given)
        return spec, (f"built-in {given}" if given in study_file.BUILT_IN else spec.where), None
    try:
        report = load_report(given)
    except ReportError as exc:
        raise ConfigError(f"--from: {exc}") from None
    where = f"--from {shell_path(given)}"
    if report.study is None:
        raise ConfigError(f"{where}: the report carries no study (bench run wrote it, not bench study)")
    return from_report(report.study.study, where), where, report.study.study


def _run_study(study, source, planned, plan, first) -> int:
    from bench.study.run import run_study

    threads = _threads(first, (first.launch.nproc,))

    def launch(run, record, budget):
        report, saved, late = _launch(run.cfg, threads if run.cfg.device.device == "cpu" else None,
                                      budget=budget, study=record)
        code = _finish_run(report, saved, run.cfg, late, summary=run.cfg.output.verbose)
        return report, saved, code

    done = run_study(study, source, planned, plan, launch)
    if not first.output.quiet:
        _say_decision(done, plan, first.output.verbose)
    codes = [code for _, _, code in done.reports]
    return EXIT_INTERRUPTED if done.interrupted else max(codes, default=EXIT_OK)


def _say_decision(done, plan, verbose: bool) -> None:
    """The decision table, then the warnings one line per cause, what the budget left out, and the
    device time the study took against its plan."""
    from bench.analysis.decision import decisions
    from bench.analysis.runs import make_runs
    from bench.core.durations import duration_text
    from bench.render.decision_view import print_decisions
    from bench.render.format import clock
    from bench.render.plan_view import cut_text
    from bench.render.summary import named, print_warnings

    loaded = [(str(saved.path), report) for report, saved, _ in done.reports]
    if loaded:
        print_decisions(out, decisions(make_runs(loaded)[0]))
    warnings = [(f"{r.study.run} {named(x)}", w) for r, _, _ in done.reports for x in r.results for w in x.warnings]
    print_warnings(err, [(where, w) for where, w in warnings if w.code != "budget_cut"], verbose)
    for cut in plan.cuts:  # what the budget cost the answer: what the plan cut, then what the run did
        err.print(markup("[yellow]cut by the plan:[/] {}", cut_text(cut)))
    for where, w in warnings:
        if w.code == "budget_cut":
            err.print(markup("[yellow]cut while running:[/] {}: {}", where, w.message))
    for cut in done.not_run:
        err.print(markup("[yellow]not run:[/] {}", cut_text(cut) + f": {cut.given:g} s of the budget were left"))
    budget = f"; budget {duration_text(plan.budget_s)}" if plan.budget_s else ""
    err.print(markup("device time {} ({} s; the plan expected {}, at most {}{})", clock(done.seconds),
                     f"{done.seconds:.0f}", duration_text(plan.estimate_s), duration_text(plan.worst_s), budget))


def cmd_list(args) -> int:
    from bench.launch.inventory import listing
    from bench.render.listing import print_listing

    data = listing()
    if args.json:
        out.print_json(data)
    else:
        print_listing(out, data)
    return EXIT_OK


def cmd_env(args) -> int:
    from bench.launch.inventory import environment
    from bench.render.listing import print_env

    env = environment(args.device)
    if args.json:
        out.print_json(env)
    else:
        print_env(out, env)
    return EXIT_OK


def cmd_compare(args) -> int:
    """Parse -> compare -> render -> write: every option checked and the prices read before any report
    is; everything rendered before anything is written, and a file the comparison cannot be made
    with set aside (named) and the others compared."""
    from bench.analysis.compare import compare
    from bench.analysis.load import isolated, load_many
    from bench.analysis.options import CompareOptions
    from bench.core.options import namespace_values
    from bench.render.compare_view import print_notes
    from bench.render.options import ExportOptions
    from bench.render.outputs import render_all

    judge = CompareOptions.build(namespace_values(args, CompareOptions))
    export = ExportOptions.build(namespace_values(args, ExportOptions))
    _check_exports(args.files, export)
    costing = judge.costing()
    loaded, problems = load_many(args.files)
    _skipped(problems)
    rendered, broken = isolated(loaded, lambda files: render_all(
        compare(files, judge.baseline, judge.force, judge.min_repeats, judge.effect(), costing, judge.gates()),
        export, out, err)) if loaded else (None, [])
    _skipped(broken)
    if rendered is None:
        err.print(markup("[red]error:[/] no usable report among the files given"))
        return EXIT_USAGE
    comparison = rendered.comparison
    if not comparison:
        print_notes(err, comparison)
        err.print(markup("[red]error:[/] the reports hold no successful workload result to compare"))
        return EXIT_USAGE
    rendered.emit(out, err)
    outcomes = {g.outcome for g in comparison.gates}
    if "fail" in outcomes or problems or broken or any(n.code == "same_run_id" for n in comparison.notes):
        return EXIT_FAILED
    return EXIT_INCONCLUSIVE if "inconclusive" in outcomes else EXIT_OK


def _skipped(problems) -> None:
    for p in problems:
        err.print(markup("[red]skipped:[/] {}", p))


def _check_exports(files: list[str], export) -> None:
    """Plotly for --html; the width; an export must not replace a report being compared, nor
    another export of the same command."""
    from bench.analysis.load import expand

    if export.html:
        try:
            import plotly  # noqa: F401
        except ImportError:
            raise ConfigError("--html needs plotly, a dependency of bench that is missing here: pip install "
                              "'plotly>=5.18' (or reinstall bench: pip install -e .)") from None
    if export.width is not None:
        out.width = err.width = export.width
    inputs = {os.path.realpath(p) for p in expand(files)[0]}
    seen: dict[str, str] = {}
    for _, flag, target in export.targets():
        real = os.path.realpath(target)
        if real in inputs:
            raise ConfigError(f"{flag} {target}: is one of the reports being compared; it would be overwritten")
        if real in seen:
            raise ConfigError(f"{flag} {target}: {seen[real]} writes there too")
        seen[real] = flag


def _say_ignored(args) -> None:
    """What the command line gave that does not count: a flag given again, an unusable COLUMNS."""
    from bench.core.options import overridden

    for flag, old, new in overridden(args):
        err.print(markup("note: {} {} is overridden by the later {} {}", flag, old, flag, new))
    if out.ignored_columns is not None and args.command in ("compare", "list", "env") or \
            out.ignored_columns is not None and args.command == "run" and not getattr(args, "quiet", False):
        err.print(markup("note: COLUMNS={} is not a width to lay tables out in (20 to 10000): the terminal's, or "
                         "80, is used", out.ignored_columns))


COMMANDS = {"run": cmd_run, "study": cmd_study, "serve": cmd_serve, "list": cmd_list, "env": cmd_env,
            "compare": cmd_compare}


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
    err.lost = None
    try:
        code = _cli(argv)
    except OutputError:  # raised while the error itself was said: the exit code says it
        code = EXIT_FAILED
    finally:
        sys.stdout, sys.stderr = saved
    return EXIT_FAILED if err.lost and code == EXIT_OK else code  # what stderr should have said is lost


def _cli(argv=None) -> int:
    try:
        parser = build_parser(sys.argv[1:] if argv is None else argv)
    except BenchError as exc:  # a plug-in whose flag collides, or that cannot be imported
        err.print(markup("[red]error:[/] {}", exc))
        return EXIT_USAGE
    args = parser.parse_args(argv)
    _say_ignored(args)
    try:
        return COMMANDS[args.command](args)
    except BenchError as exc:
        err.print(markup("[red]error:[/] {}", exc))
        return exc.exit_code
    except KeyboardInterrupt:
        err.print(markup("interrupted"))
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get("BENCH_DEBUG"):
            raise
        err.print(markup("[red]internal error:[/] {}: {} (a bug in bench; BENCH_DEBUG=1 shows the traceback)",
                         type(exc).__name__, exc))
        return EXIT_FAILED

