"""`bench run | compare | list | env`. The only place that prints errors and picks exit codes.

Exit codes: 0 ok; 1 a workload failed (or compare found problems); 2 bad input or missing device;
130 interrupted (Ctrl-C / SIGTERM), with the report so far written.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from bench import __version__
from bench.config import (DATA_SOURCES, DEVICES, ENCODERS, HPU_MODES, OPTIMIZERS, PRECISIONS, PRESETS,
                          SCORINGS, RunConfig)
from bench.core.errors import BenchError, ConfigError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# Piped output (CI logs, files) gets a wide page instead of rich's 80-column default.
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _run_parser(sub) -> None:
    p = sub.add_parser("run", help="run workloads on a device and write a JSON report",
                       description="Run workloads on one device, sample the hardware while they run, and "
                                   "write reports/<UTC time>_<device>_<host>_<id>.json.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("what to run")
    g.add_argument("--device", default="auto", choices=DEVICES,
                   help="auto picks hpu, then cuda, then cpu, and says which; a named device that is "
                        "missing is an error, never a silent fall-back")
    g.add_argument("--workload", action="append", dest="workloads", metavar="NAME",
                   help="repeatable; default: every registered workload (see `bench list`)")
    g.add_argument("--preset", default="tiny", choices=tuple(PRESETS),
                   help="tiny: 363k-parameter smoke config; seed: BlenderBot-90M, batch 24, 163+18 tokens")
    g.add_argument("--precision", default="fp32", choices=PRECISIONS)
    g.add_argument("--model", help="tiny | blenderbot-90m | a local checkpoint directory (safetensors)")
    g.add_argument("--batch-size", type=int, help="default: from the preset")
    g.add_argument("--context-len", type=int, help="context tokens per sample (default: preset)")
    g.add_argument("--label-len", type=int, help="label tokens per sample (default: preset)")
    g.add_argument("--data", choices=DATA_SOURCES, help="shipped dialogue sample or seeded synthetic ids")
    g.add_argument("--optimizer", default="adamw", choices=OPTIMIZERS, help="adamax is what ParlAI used")
    g.add_argument("--lr", type=float, help="learning rate (default: preset)")
    r = p.add_argument_group("generation and retrieval")
    r.add_argument("--new-tokens", type=int, help="tokens generated per sequence, forced (default: preset)")
    r.add_argument("--beams", type=int, default=1, help="beam size, 1 = greedy (1-8; the seed recommends 1-3)")
    r.add_argument("--static-shapes", action="store_true",
                   help="pad generation inputs to --context-len (static shapes, as HPU graphs need)")
    r.add_argument("--encoder", choices=ENCODERS, help="retrieval encoder (default: bert-tiny for tiny, "
                                                       "bert-base for seed; minilm = the real all-MiniLM-L6-v2)")
    r.add_argument("--scoring", default="poly", choices=SCORINGS, help="bi-encoder or poly-encoder scoring")
    r.add_argument("--poly-codes", type=int, default=64, help="poly-encoder codes m (ParlAI: 64)")
    r.add_argument("--pool-size", type=int, help="candidate pool for top-k scoring (default: preset)")
    r.add_argument("--top-k", type=int, default=10)
    g.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="an option for a plug-in workload (repeatable)")
    m = p.add_argument_group("how to measure")
    m.add_argument("--steps", type=int, help="measured steps per repeat (default: preset)")
    m.add_argument("--time-budget", type=float, dest="time_budget_s", metavar="SECONDS",
                   help="measure for this long per repeat instead of --steps (at least --min-steps)")
    m.add_argument("--min-steps", type=int, default=3, help="floor on steps with --time-budget")
    m.add_argument("--warmup", type=int, help="warm-up steps before measuring, reported apart (default: preset)")
    m.add_argument("--repeats", type=int, default=1, help="measured repeats, each with its CPU/wall ratio")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--threads", type=int, help="torch intra-op threads (default: the CPUs this process may use)")
    m.add_argument("--sample-hz", type=float, default=10.0, help="telemetry sampling rate; 0 turns it off")
    m.add_argument("--peak-tflops", type=float, help="device peak for MFU, overriding the built-in table")
    m.add_argument("--compile", action="store_true", help="torch.compile the model (cuda/cpu)")
    d = p.add_argument_group("several devices (through torchrun)")
    d.add_argument("--nproc", type=int, default=1, help="workers on this node, one per device (gloo on cpu, "
                                                          "nccl on cuda, hccl on hpu)")
    d.add_argument("--nnodes", type=int, default=1, help="machines taking part")
    d.add_argument("--node-rank", type=int, default=0, help="this machine's rank among --nnodes")
    d.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="rendezvous on node 0, for --nnodes above 1")
    d.add_argument("--scaling", metavar="N,N,...", type=_int_list,
                   help="run at each world size (e.g. 1,2,4,8) and report scaling efficiency")
    d.add_argument("--dist-timeout", type=float, default=300.0, dest="dist_timeout_s", metavar="SECONDS",
                   help="bound on any collective: a hung rank fails the run instead of hanging it")
    h = p.add_argument_group("Gaudi (hpu)")
    h.add_argument("--hpu-mode", choices=HPU_MODES, help="sets PT_HPU_LAZY_MODE before habana_frameworks "
                                                          "is imported (default lazy)")
    h.add_argument("--hpu-graphs", action="store_true", help="wrap inference models in HPU graphs (lazy)")
    o = p.add_argument_group("output")
    o.add_argument("--out", dest="out_dir", default="reports", help="directory for the JSON report")
    o.add_argument("--label", help="a name for this run in comparisons")
    o.add_argument("--quiet", action="store_true", help="no progress or table: print only the report path")


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 1,2,4,8, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description="Compare Gaudi, NVIDIA GPUs and CPUs on the "
                                     "workloads of an empathetic dialogue model, honestly.")
    parser.add_argument("--version", action="version", version=f"bench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _run_parser(sub)
    cp = sub.add_parser("compare", help="compare reports: tables, CSV/Markdown, one HTML file",
                        description="Pair runs by workload identity and compare throughput with confidence "
                                    "intervals; runs whose identity differs are shown as not comparable.",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    cp.add_argument("files", nargs="+", metavar="FILE", help="report files or globs (reports/*.json)")
    cp.add_argument("--baseline", metavar="LABEL_OR_FILE", help="the run others are compared to "
                                                                "(default: the first file's run)")
    cp.add_argument("--html", metavar="OUT.html", help="write one self-contained HTML report (needs plotly)")
    cp.add_argument("--csv", metavar="OUT.csv", help="write the comparison rows as CSV")
    cp.add_argument("--markdown", metavar="OUT.md", help="write the comparison rows as a Markdown table")
    cp.add_argument("--fail-on", metavar="METRIC:PCT", action="append", default=[],
                    help="exit 1 when a run is significantly slower than the baseline by more than PCT "
                         "(the whole CI below 1 - PCT), e.g. tokens_per_s:5%%")
    cp.add_argument("--force", action="store_true", help="compare runs whose workload identity differs (marked)")
    lp = sub.add_parser("list", help="workloads, presets, devices and collectors usable here")
    lp.add_argument("--json", action="store_true")
    ep = sub.add_parser("env", help="the environment record a report would carry")
    ep.add_argument("--json", action="store_true", help="machine-readable")
    ep.add_argument("--device", choices=DEVICES, help="also describe this device")
    return parser


def config_from_args(args) -> RunConfig:
    opts = {}
    for item in args.opt:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--opt: expected KEY=VALUE, got {item!r}")
        opts[key] = value
    names = ("device", "workloads", "preset", "precision", "steps", "time_budget_s", "min_steps", "warmup",
             "repeats", "batch_size", "context_len", "label_len", "seed", "out_dir", "label", "sample_hz",
             "threads", "model", "data", "optimizer", "lr", "peak_tflops", "hpu_mode", "hpu_graphs", "compile",
             "new_tokens", "beams", "static_shapes", "encoder", "scoring", "poly_codes", "pool_size", "top_k",
             "nproc", "nnodes", "node_rank", "rdzv_endpoint", "scaling", "dist_timeout_s")
    values = {n: getattr(args, n) for n in names if hasattr(args, n)}
    values["workloads"] = values.get("workloads") or []
    return RunConfig(**values, options=opts)


def report_filename(report, device: str) -> str:
    stamp = datetime.fromisoformat(report.created_at).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    host = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())[:40] or "host"
    return f"{stamp}_{device}_{host}_{report.run_id[:8]}.json"


def raise_interrupt(signum, frame):
    """SIGTERM unwinds like Ctrl-C, so the report so far is written (status interrupted)."""
    raise KeyboardInterrupt


def cmd_run(args) -> int:
    from bench.backends import detect_device, make_backend
    from bench.config import validate
    from bench.registry import load_workloads, workload_entry_points
    from bench.report.terminal import RichProgress
    from bench.runner import NullProgress, run_workloads

    cfg = validate(config_from_args(args), workload_entry_points())
    explicit = bool(cfg.workloads)
    if cfg.device == "auto":
        cfg.device = detect_device()
        if not args.quiet:
            err.print(f"--device auto: using [bold]{cfg.device}[/]")
        if (cfg.hpu_mode or cfg.hpu_graphs) and cfg.device != "hpu":
            raise ConfigError(f"--hpu-mode/--hpu-graphs: --device auto found no Gaudi and picked {cfg.device}")
    workloads = load_workloads(cfg.workloads)
    signal.signal(signal.SIGTERM, raise_interrupt)
    if cfg.nproc > 1 or cfg.nnodes > 1 or cfg.scaling:
        return _run_distributed(cfg, args.quiet, explicit)
    backend = make_backend(cfg)
    progress = NullProgress() if args.quiet else RichProgress(err)
    return _finish_run(run_workloads(cfg, workloads, backend, progress), cfg, args.quiet, explicit)


def _finish_run(report, cfg, quiet: bool, explicit: bool) -> int:
    from bench.model.io import dump_report
    from bench.report.terminal import print_problems, run_summary

    path = dump_report(report, Path(cfg.out_dir) / report_filename(report, cfg.device))
    if not quiet:
        out.print(run_summary(report))
        print_problems(err, report)
    out.print(str(path), soft_wrap=True)
    if report.status == "interrupted":
        return EXIT_INTERRUPTED
    if explicit and any(r.status == "skipped" for r in report.results):
        return EXIT_USAGE
    return EXIT_FAILED if report.status == "failed" else EXIT_OK


def _run_distributed(cfg, quiet: bool, explicit: bool) -> int:
    from bench.distributed import launch
    from bench.report.terminal import scaling_table

    sizes = cfg.scaling or [cfg.nproc]
    codes, reports = [], []
    for n in sizes:
        if not quiet:
            err.print(f"torchrun: {n} worker(s) per node x {cfg.nnodes} node(s) on {cfg.device}")
        report, _ = launch(cfg, n, quiet)
        if cfg.node_rank > 0:
            out.print(f"node {cfg.node_rank}: this node's ranks finished; node 0 writes the report")
            continue
        reports.append(report)
        codes.append(_finish_run(report, cfg, quiet, explicit))
        if codes[-1] == EXIT_INTERRUPTED:
            break
    if len(reports) > 1 and not quiet:
        from bench.compare import scaling_groups

        out.print(scaling_table(scaling_groups([(r.run_id, r) for r in reports])))
    return max(codes, default=EXIT_OK)


def cmd_list(args) -> int:
    from bench.listing import listing, print_listing

    data = listing()
    if args.json:
        out.print_json(json.dumps(data))
    else:
        print_listing(out, data)
    return EXIT_OK


def cmd_env(args) -> int:
    from bench.environment import collect_environment

    backend = None
    if args.device:
        from bench.backends import detect_device, make_backend

        cfg = RunConfig(device=args.device)
        cfg.device = detect_device() if cfg.device == "auto" else cfg.device
        backend = make_backend(cfg)
    env = collect_environment(backend)
    if args.json:
        out.print_json(json.dumps(env, default=str))
    else:
        from bench.listing import print_env

        print_env(out, env)
    return EXIT_OK


def cmd_compare(args) -> int:
    from bench.compare import compare, regressions, scaling_groups
    from bench.report.export import comparison_frame, load_many, write_csv, write_markdown
    from bench.report.terminal import print_comparisons, scaling_table

    loaded, problems = load_many(args.files)
    for p in problems:
        err.print(f"[red]skipped:[/] {escape(p)}")
    if not loaded:
        err.print("[red]error:[/] no usable report among the files given")
        return EXIT_USAGE
    comparisons = compare(loaded, args.baseline, args.force)
    if not comparisons:
        err.print("[red]error:[/] the reports hold no successful workload result to compare")
        return EXIT_USAGE
    failures = [f for spec in args.fail_on for f in regressions(comparisons, spec)]
    print_comparisons(out, comparisons)
    groups = scaling_groups(loaded)
    if groups:
        out.print(scaling_table(groups))
    frame = comparison_frame(comparisons)
    if args.csv:
        _write(args.csv, lambda path: write_csv(frame, path))
    if args.markdown:
        _write(args.markdown, lambda path: write_markdown(frame, path))
    if args.html:
        _write(args.html, lambda path: _write_html(comparisons, loaded, path))
    for f in failures:
        err.print(f"[red]regression:[/] {escape(f)}")
    return EXIT_FAILED if failures or problems else EXIT_OK


def _write(target: str, writer) -> None:
    try:
        writer(target)
    except OSError as exc:
        raise BenchError(f"cannot write {target}: {exc.strerror or exc}") from None
    out.print(f"wrote {escape(target)}")


def _write_html(comparisons, loaded, target: str) -> None:
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise ConfigError("--html needs plotly: pip install 'bench[html]'") from None
    from bench.report.html import render

    Path(target).write_text(render(comparisons, loaded), encoding="utf-8")


COMMANDS = {"run": cmd_run, "list": cmd_list, "env": cmd_env, "compare": cmd_compare}


def cli(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BenchError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_INTERRUPTED


def main() -> None:
    sys.exit(cli())
