"""launch(cfg, view) -> Report: every repeat of every workload, each in a fresh worker process.

The launcher owns what spans repeats: the sampler (one process for the whole run, told which device
each worker uses as the worker announces it), the progress view, and the report. A runner
(launch/runners.py, launch/torchrun.py) starts one repeat and hands back its events; the repeats
of a workload then become one Result.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
import uuid
from datetime import datetime, timezone

import bench
from bench.core.scratch import clean_stale, scratch_dir
from bench.devices import registry as devices
from bench.launch import catalog
from bench.devices.cpu.collectors import HOST_PERIOD_S
from bench.launch.budget import Budget, not_run, repeats_cut, variants_cut
from bench.launch.config import RunConfig
from bench.launch.runners import InlineRunner, Interrupted, ProcessRunner
from bench.launch.torchrun import TorchrunRunner, awaited
from bench.measure.environment import collect_host, collect_packages, collect_python
from bench.measure.runner import Clock
from bench.measure.sampler import Sampler
from bench.measure.signals import deferred
from bench.measure.threads import choose_here, contended_advice
from bench.measure.validity import sampler_health, telemetry_checks
from bench.measure.stopping import Until
from bench.model.derive import (contention_reasons, core_metrics, figure_key, figure_value, is_throughput, lead_of,
                                recompute, repeat_flags, repeat_rates, timing_warnings)
from bench.model.fields import ModelError, null_non_finite, parse
from bench.model.parity import disagreement
from bench.model.report import (SCHEMA_VERSION, Arithmetic, CollectorStatus, Contention, Distributed, Environment, Memory, Phase,
                                Provenance, RankResult, RankStatus, Report, Result, Telemetry, TelemetrySource, Timing,
                                variant_label)


class NullView:
    """What the launcher tells a progress display (render/progress.py draws one)."""

    def begin(self, cfg, plan: list[tuple]) -> None: ...  # (workload, repeats, variants or None, unit)
    def job(self, workload: str, index: int, repeat: int, variant: str | None = None) -> None: ...
    def event(self, event: dict) -> None: ...
    def finished(self, result: Result) -> None: ...
    def note(self, text: str) -> None: ...
    def end(self) -> None: ...


# ---- the launcher ---------------------------------------------------------------------------------

class Launcher:
    """write: called with the finished report inside the same signal-deferred block that assembles
    it, so a Ctrl-C or SIGTERM at the last moment cannot come between the two; what it returns (the
    path) is kept as `.written`, and the report as `.report`, for a caller the signal then unwinds.
    job: added to every job (`bench serve` runs its one repeat with the server's options)."""

    def __init__(self, cfg: RunConfig, view=None, command: list[str] | None = None, write=None, *,
                 job: dict | None = None, threads=None, budget: Budget | None = None, study=None, plan=None):
        self.cfg, self.view = cfg, view or NullView()
        self.budget = budget  # a study's device-time budget: nothing starts that would end past it (budget.py)
        self.study, self.plan = study, plan  # what the report records of its study, or a plain run's plan
        self.job = dict(job or {})  # what every job carries besides the config (`bench serve`: the server's options)
        self.threads = threads  # a ThreadChoice made by the caller (a --scaling sweep), else made here
        self.write = write
        self.report: Report | None = None
        self.written = None
        self.spec = devices.spec(cfg.device.device)
        self.clock = Clock()
        self.command = command or []
        self.sampler: Sampler | None = None
        self.watched: set[str] = set()
        self.claims: dict[int, tuple[list[int], int]] = {}  # rank -> (PIDs outside the tree, how many on its device)
        self.environment: dict | None = None
        self.phases: list[Phase] = []
        self.counters: dict[str, list] = {}
        self.ranks: dict[int, RankStatus] = {}

    def runner_class(self):
        if self.cfg.launch.distributed:
            return TorchrunRunner
        return InlineRunner if self.cfg.launch.in_process else ProcessRunner

    def new_report(self, kind: str) -> Report:
        c = self.cfg
        return Report(schema_version=SCHEMA_VERSION, bench_version=bench.__version__, run_id=uuid.uuid4().hex,
                      created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), status="ok",
                      label=c.output.label, provenance=Provenance(command=list(self.command),
                                                                  bench_version=bench.__version__, launcher=kind,
                                                                  **_git()),
                      config=c.to_json(), study=self.study, plan=self.plan)

    def run(self) -> Report:
        stale = clean_stale()
        run_dir = scratch_dir()
        env, self.assignment = self.spec.worker_env(self.cfg.launch.nproc, self.cfg.device_own) \
            if self.spec.worker_env else ({}, None)
        runner = self.runner_class()(run_dir, self.on_event, env)
        report = self.new_report(runner.kind)
        c = self.cfg
        if self.threads is None and self.spec.name == "cpu":  # before the sampler: its own CPU is not other load
            self.threads = choose_here(c.launch.nproc, c.device.threads)
        if c.measure.sample_hz:
            self.sampler = Sampler(c.measure.sample_hz, self.clock.t0_ns).start([{"name": "host", "pid": os.getpid()}])
        self.view.begin(c, self.entries())
        if stale:
            self.view.note(f"removed what {len(stale)} killed run(s) left in {tempfile.gettempdir()}: "
                           f"{', '.join(stale[:5])}{' ...' if len(stale) > 5 else ''}")
        try:
            for i, name in enumerate(c.workloads):
                if not self.run_variants(runner, name, i, report):
                    report.status = "interrupted"
                    break
        except KeyboardInterrupt:
            report.status = "interrupted"
        finally:
            with deferred():
                fault = None
                try:
                    self.finish(report)
                except Exception as exc:  # noqa: BLE001 - what was measured is written all the same
                    fault = exc
                finally:
                    shutil.rmtree(run_dir, ignore_errors=True)
                    self.view.end()
                self.report = report
                if self.write is not None:
                    self.written = self.write(report)
                if fault is not None:
                    raise fault
        return report

    def entries(self) -> list[tuple]:
        """What the progress view is told of each workload: repeats at most, results (None: chosen as it
        goes), what it counts, the plan's estimate."""
        c, planned = self.cfg, self.planned()
        most = c.measure.max_repeats if c.measure.target is not None else c.measure.repeats
        return [(n, most, catalog.scenario(n).count(c.options_of(n)), catalog.scenario(n).unit, planned.get(n))
                for n in c.workloads]

    def planned(self) -> dict[str, float]:
        """The plan's estimate of each workload of this run (a study's plan: this run's items)."""
        plan = self.study.plan if self.study is not None else self.plan
        run = self.study.run if self.study is not None else None
        return {i.workload: i.estimate_s for i in (plan.items if plan else []) if run is None or i.run == run}

    # -- one workload: each of its variants, each with all its repeats ------------------------------
    def run_variants(self, runner, name: str, index: int, report: Report) -> bool:
        """Every variant its scenario asks for (serving: each offered rate; a capacity search chooses
        the next from the last result). False when interrupted."""
        plan = catalog.scenario(name).variants(self.cfg.options_of(name))
        variant, result = next(plan, None), None
        while variant is not None:
            if not self.fits(name, variant, result, report):
                plan.close()
                break
            result = self.run_workload(runner, name, index, variant)
            report.results.append(result)
            self.view.finished(result)
            if result.status == "interrupted":
                return False
            if self.budget is not None:
                self.budget.learn(name, result, self.phases)
            try:
                variant = plan.send(result)
            except StopIteration as end:  # a search says why it stopped where it did not converge
                variant = None
                if end.value:
                    result.warn("search_stopped", f"the {catalog.scenario(name).name} search stopped: {end.value}")
        return True

    def fits(self, name: str, variant: dict, last: Result | None, report: Report) -> bool:
        """Whether the next result's first repeat fits the budget; if not, what is cut is said: the whole
        workload (a skipped result) or the results after the last."""
        if self.budget is None:
            return True
        seconds = self.budget.repeat_s(self.cfg, name, variant)
        if self.budget.fits(seconds):
            return True
        if last is None:
            result = not_run(name, json.loads(json.dumps(variant or {})), seconds, self.budget.left())
            report.results.append(result)
            self.view.finished(result)
        else:
            variants_cut(last, catalog.scenario(name).name, seconds, self.budget.left())
        return False

    def options(self, name: str, variant: dict):
        return self.cfg.options_of(name).replace(**{k: tuple(v) if isinstance(v, list) else v
                                                    for k, v in (variant or {}).items()})

    def run_workload(self, runner, name: str, index: int, variant: dict | None = None) -> Result:
        """The repeats of one workload until its stopping rule is met (bench/measure/stopping.py)."""
        outcomes = []
        variant = json.loads(json.dumps(variant or {}))  # as the worker will see it: lists, not tuples
        lead = self.lead(name, variant)
        until = Until.of(self.cfg.measure, figure_key(lead.key))
        if self.budget is not None:
            until.deadline, until.first_s = self.budget.deadline, self.budget.repeat_s(self.cfg, name, variant)
        while until.more():
            r = len(outcomes)
            self.view.job(name, index, r, variant_label(variant))
            job = {"config": self.cfg.to_json(), "workload": name, "repeat": r, "t0_ns": self.clock.t0_ns,
                   "tree_root": os.getpid(), "variant": variant,
                   "threads": self.threads.threads if self.threads else None, **self.job}
            try:
                events = runner.run(job)
            except Interrupted as exc:
                outcomes.append(self.outcome(exc.events, name, r, interrupted=True))
                until.end("interrupted")
                break
            except KeyboardInterrupt:
                outcomes.append(self.outcome([], name, r, interrupted=True))
                until.end("interrupted")
                break
            outcomes.append(self.outcome(events, name, r))
            self.judge_device(outcomes[-1][0])
            if outcomes[-1][0].status != "ok":
                until.end(outcomes[-1][0].status)  # a repeat that failed or was skipped: the next would fare no better
                break
            self.count_repeat(outcomes[-1][0], until, [o for o, _ in outcomes[:-1]], lead)
        if not outcomes:  # the budget left no time for its first repeat
            return not_run(name, variant, until.first_s or 0.0, self.budget.left() if self.budget else 0.0)
        keep_all_if_none_clean(until, [o for o, _ in outcomes])
        frame = self.combine(name, outcomes, variant)
        frame.stopping = until.record()
        repeats_cut(frame, until.least)
        return frame

    def lead(self, name: str, variant: dict):
        """The figure a workload's results lead with under these options (a throughput, or a serving
        result's latency at its rate): what the stopping rule is told."""
        wl = catalog.load(name)
        of = getattr(wl, "figures_for", None)
        return lead_of(of(self.options(name, variant)) if of else getattr(wl, "figures", ()), wl.main_metric)

    def count_repeat(self, result: Result, until: Until, before: list[Result], lead=None) -> None:
        """Tell the rule one repeat's lead value (its throughput, or its lead figure) and whether it was
        disturbed; under --target-ci a disturbed one is marked set aside (its reasons), to be redone."""
        clean = [rep for res in before for rep in res.timing.counted]
        reps = result.timing.repeats
        flags = [why for rep in reps for why in repeat_flags(rep, clean)] if until.redoes else []
        if lead is None or is_throughput(lead):
            value = next(iter(repeat_rates(_timings(result), until.metric)), None)
        else:
            value = self.repeat_lead(result, lead)
        until.add(value, bool(flags))
        if flags:
            for rep in reps + [rep for p in result.per_rank for rep in p.timing.repeats]:
                rep.set_aside = flags

    def repeat_lead(self, result: Result, lead) -> float | None:
        """One repeat's lead figure from its raw data (a serving repeat's p99 from its requests)."""
        reps = result.timing.judged
        if result.status != "ok" or len(reps) != 1:
            return None
        wl = catalog.load(result.workload)
        try:
            own = wl.metrics(reps, result.params, self.options(result.workload, result.variant))
        except Exception:  # noqa: BLE001 - no value: the rule counts the repeat as one without it
            return None
        value = figure_value(own, core_metrics(Timing(reps), None, None, None), lead.key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None

    def judge_device(self, result: Result) -> None:
        """Each repeat's accelerator by the accelerator's own counters: other jobs' processes its driver listed
        during the repeat's measured steps (NVML; what the run owns: bench/devices/owned.py), read from the
        samples written since the last repeat. A repeat that shared its device is contended, so --target-ci
        redoes it. HLML lists no processes: then nothing is added."""
        rows = self.sampler.since() if self.sampler is not None else []
        label = variant_label(result.variant)
        for rep in result.timing.repeats:
            spans = [(p.start_s, p.end_s) for p in self.phases if p.workload == result.workload and
                     p.phase == "measure" and p.repeat == rep.index and p.variant == label]
            seen = [v for row in rows if any(a <= row["t"] <= b for a, b in spans) for k, v in row.items()
                    if k.endswith(".other_processes") and isinstance(v, int | float) and not isinstance(v, bool)]
            if seen:
                _device_processes(rep, int(max(seen)))

    def on_event(self, event: dict) -> None:
        kind = event["event"]
        if kind == "started":
            if self.environment is None:
                self.environment = event.get("environment")
            if self.claims.pop(event.get("rank", 0), None) is not None:  # a new repeat claims anew
                self.tell_claims()
            self.watch(event.get("watch", []))
        elif kind == "watch":  # a device the work uses outside the worker (a server's card), found as it ran
            self.watch(event.get("watch", []))
        elif kind == "own":
            self.claims[event.get("rank", 0)] = (_pids(event.get("pids")), _count(event.get("on_device")))
            self.tell_claims()
        elif kind == "phase":
            self.phases.append(parse(Phase, event["phase"]))
        self.view.event(event)

    def watch(self, specs) -> None:
        """The sampler watches each collector spec once, with what tells the run's processes from others'."""
        for spec in specs if isinstance(specs, list) else ():
            key = json.dumps(spec, sort_keys=True)
            if self.sampler is not None and isinstance(spec, dict) and key not in self.watched:
                self.watched.add(key)
                self.sampler.watch({**spec, **self.own_fields()})

    def own_fields(self) -> dict:
        """What a collector needs to tell the run's processes from another job's (bench/devices/owned.py):
        this launcher's tree, and what the workers claimed besides it."""
        pids = sorted({p for ps, _ in self.claims.values() for p in ps})
        return {"own_pid": os.getpid(), "own_pids": pids, "own_on_device": sum(n for _, n in self.claims.values())}

    def tell_claims(self) -> None:
        if self.sampler is not None:
            f = self.own_fields()
            self.sampler.own(f["own_pids"], f["own_on_device"])

    @property
    def world(self) -> int:
        return self.cfg.launch.nproc * self.cfg.launch.nnodes if self.cfg.launch.distributed else 1

    def outcome(self, events: list[dict], name: str, repeat: int, interrupted: bool = False):
        """(Result of one repeat, its energy counter) from its events; with several ranks, rank 0's
        result carrying every rank's own (per_rank)."""
        by_rank = {}
        for e in events:
            if e["event"] == "gathered":
                by_rank.update({p["rank"]: p for p in e["results"]})
        by_rank.update({e.get("rank", 0): e for e in events if e["event"] == "result"})
        if not by_rank:
            return self.unreported(events, name, repeat, interrupted), None
        try:
            results = {r: parse(Result, p["result"]) for r, p in by_rank.items()}
        except ModelError as exc:  # a result the model refuses: the repeat failed, the run goes on
            return Result(workload=name, status="failed",
                          error=f"repeat {repeat}: the worker sent a result that is not valid ({exc})"), None
        result = results[min(results)]
        if self.world > 1 and self.cfg.launch.node_rank == 0:
            result.merge_ranks(results, self.rank_statuses(results, events))
        elif self.world > 1:
            _this_node(result, results)
        _gather_failures(result, events)
        if interrupted and result.status == "ok":
            result.status = "interrupted"
        return result, by_rank[min(by_rank)].get("energy_counter")

    def unreported(self, events: list[dict], name: str, repeat: int, interrupted: bool) -> Result:
        """A repeat no rank reported: interrupted, or failed with how its processes ended (each rank
        named, with several; a rendezvous that never completed said as one)."""
        if interrupted:
            return Result(workload=name, status="interrupted", error="interrupted (Ctrl-C or SIGTERM)")
        died = _died(events)
        why = f"the worker process exited with code {died['code']}" if died else "the worker sent no result"
        if died.get("code", 0) < 0:
            why = f"the worker process was killed by signal {-died['code']} (out of memory?)"
        if self.world > 1:  # every rank named in the report, the ones that died with how
            self.rank_statuses({}, events)
            why = "; ".join(f"rank {r} {how}" for r, how in sorted(torchrun_failures(died.get("log", "")).items())) \
                or why
            if awaited(self.cfg) and not any(e["event"] == "started" for e in events):
                why = f"no rank started: {awaited(self.cfg)}, and the rendezvous did not complete ({why})"
        last = last_error(died.get("log", ""))
        return Result(workload=name, status="failed", error=f"repeat {repeat}: {why}{f': {last}' if last else ''}")

    def rank_statuses(self, results: dict[int, Result], events: list[dict]) -> list[RankStatus]:
        """Every rank's status in one repeat; ranks that never reported are named, and a rank stopped
        because another failed is not called a user's interrupt."""
        hosts, failures = _hosts(events), torchrun_failures(_died(events).get("log", ""))
        ranks = [RankStatus(r, results[r].status, results[r].error, host=hosts.get(r)) if r in results else
                 RankStatus(r, "failed", _no_result(r, failures), host=hosts.get(r)) for r in range(self.world)]
        failed = [str(x.rank) for x in ranks if x.status == "failed"]
        for x in ranks:
            if x.status == "interrupted" and failed:
                x.error = f"stopped by the launcher after rank {', '.join(failed)} failed"
        for x in ranks:
            old = self.ranks.get(x.rank)
            if old is None or (old.status == "ok" and x.status != "ok"):
                self.ranks[x.rank] = x
        return ranks

    def combine(self, name: str, outcomes, variant: dict | None = None) -> Result:
        """The repeats of one workload as one Result: every repeat's timing kept apart, the figures
        computed over all of them, the worst status and every error."""
        results = [r for r, _ in outcomes]
        frame = next((r for r in results if r.timing.step_times_s), results[0])
        frame.timing.repeats = [rep for r in results for rep in r.timing.repeats if r.timing.repeats]
        for i, rep in enumerate(frame.timing.repeats):
            rep.index = i
        frame.status, frame.error = _worst_status(results), _errors(results)
        for r in results:
            for w in r.warnings:
                frame.warn(w.code, w.message)
        frame.memory = _max_memory([r.memory for r in results])
        for i, r in enumerate(results):
            why = disagreement(frame.fingerprint, r.fingerprint)
            if why:
                frame.warn("output_mismatch", f"repeat {i} computed something else than the first: {why}")
        if self.world > 1:
            _combine_ranks(frame, results)
        frame.variant = dict(variant or {})
        self.counters[id(frame)] = [c for _, c in outcomes]
        if frame.timing.step_times_s:
            self._figures(frame)
        elif any(r.requests is not None for r in frame.timing.counted):  # a session none of whose requests completed
            self._workload_figures(frame)
        return frame

    def _figures(self, result: Result) -> None:
        result.metrics = recompute(result)
        for w in timing_warnings(result.timing, result.metrics, result.timing.repeats[0].threads):
            result.warn(w.code, w.message)
        shared = contention_reasons(result.timing)
        loads = [r.contention.other_load_cores for r in result.timing.measured
                 if r.contention and r.contention.reasons and r.contention.other_load_cores is not None]
        helps = contended_advice(loads, result.timing.repeats[0].threads, self.threads)
        if shared:
            result.warn("contended", "; ".join(shared) + (f" ({helps})" if helps else ""))
        self._workload_figures(result)

    def _workload_figures(self, result: Result) -> None:
        """The workload's own figures from its counted repeats' raw data (steps, or a serving session's
        requests: one whose every request failed has no step, and its figures say so)."""
        repeats = result.timing.judged
        try:
            result.workload_metrics = catalog.load(result.workload).metrics(
                repeats, result.params, self.options(result.workload, result.variant))
            repeat_figures(result, catalog.load(result.workload), self.options(result.workload, result.variant))
        except Exception as exc:  # noqa: BLE001 - the core figures stand; say what is missing
            result.warn("metrics_failed", f"workload metrics not computed: {type(exc).__name__}: {exc}")

    # -- the end ------------------------------------------------------------------------------------
    def finish(self, report: Report) -> None:
        status, samples, fate = self.sampler.stop() if self.sampler else ({}, [], {})
        sources = {k: v for st in status.values() for k, v in (st.pop("sources", None) or {}).items()}
        report.environment = _environment(self.environment) if self.environment else Environment(
            host=collect_host(), python=collect_python(), packages=collect_packages())
        report.environment.threads = self.threads
        if getattr(self, "assignment", None):
            report.environment.device["assignment"] = self.assignment  # which card, and who chose it
        report.telemetry = Telemetry(sample_hz=self.cfg.measure.sample_hz,
                                     collectors={k: CollectorStatus(**v) for k, v in status.items()},
                                     sources={k: TelemetrySource(**v) for k, v in sources.items()},
                                     phases=sorted(self.phases, key=lambda p: p.start_s), samples=samples)
        label_phases(report.telemetry.samples, report.telemetry.phases)
        if self.sampler is not None:
            report.telemetry.health = sampler_health(report.telemetry, self.sample_period(status), fate)
            report.telemetry.health.non_finite = len(null_non_finite(report.telemetry.samples))
        for r in report.results:
            telemetry_checks(r, report.telemetry, self.spec, self.counters.get(id(r)))
        if self.world > 1:
            report.distributed = Distributed(self.world, self.cfg.launch.nnodes, self.spec.dist_backend,
                                             "torch.distributed.run", None,
                                             [self.ranks[r] for r in sorted(self.ranks)])
        if report.status == "ok" and any(r.status == "failed" for r in report.results):
            report.status = "failed"
        null_non_finite_results(report)

    def sample_period(self, status: dict) -> float:
        """The spacing of samples the sampler promises: the device collectors' rate, or the host's
        (at most 2 Hz) where it is the only one that sampled."""
        period = 1.0 / self.cfg.measure.sample_hz
        devices_sampled = any(v.get("available") for k, v in status.items() if k != "host")
        return period if devices_sampled else max(period, HOST_PERIOD_S)


def repeat_figures(result: Result, workload, options) -> None:
    """Each declared figure of each judged repeat on its own (`Repeat.figure_values`): a gate on a
    figure compares the repeats', as a throughput's interval does."""
    for rep in result.timing.judged:
        own = workload.metrics([rep], result.params, options)
        core = core_metrics(Timing([rep]), result.flops_per_step, None, None)
        for spec in result.figures:
            value = figure_value(own, core, spec.key)
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            rep.figure_values[spec.key] = float(value) if ok else None


def _environment(data: dict) -> Environment:
    """The worker's environment record, its arithmetic as the record it is."""
    data = dict(data)
    arithmetic = data.pop("arithmetic", None)
    return Environment(**data, arithmetic=Arithmetic(**arithmetic) if isinstance(arithmetic, dict) else None)


def _device_processes(rep, others: int) -> None:
    rep.contention = rep.contention or Contention()
    rep.contention.device_processes = others
    if others:
        rep.contention.reasons.append(f"{others} other job's process(es) ran on the accelerator during the measured "
                                      "steps (its driver's process list)")


def _pids(value) -> list[int]:
    """An event's PIDs: positive whole numbers only."""
    return [p for p in value or [] if isinstance(p, int) and not isinstance(p, bool) and p > 0]


def _count(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _timings(result: Result) -> list[Timing]:
    return [p.timing for p in result.per_rank if p.timing.step_times_s] if result.per_rank else [result.timing]


def keep_all_if_none_clean(until: Until, results: list[Result]) -> None:
    """Where every repeat was disturbed, none is set aside: they all count, and the run says it was
    contended, rather than having no figures at all."""
    if until.rates or not until.set_aside:
        return
    for res in results:
        for rep in res.timing.repeats + [rep for p in res.per_rank for rep in p.timing.repeats]:
            rep.set_aside = None
    until.count_all()


def launch(cfg: RunConfig, view=None, command: list[str] | None = None) -> Report:
    return Launcher(cfg, view, command).run()


_ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Failure)\b.*"
                         r"|Fatal Python error:.*|Segmentation fault.*|Killed.*)$")


# torchrun's failure summary (torch/distributed/elastic/multiprocessing/errors/__init__.py,
# _FAILURE_FORMAT_TEMPLATE): `rank      : 1 (local_rank: 1)` then `exitcode  : -9 (pid: 4242) (SIGKILL)`;
# the rank is the global one.
_FAILED_RANK = re.compile(r"rank\s*:\s*(\d+) \(local_rank: \d+\)\s*\n\s*exitcode\s*:\s*(-?\d+) \(pid: \d+\)"
                          r"(?: \((SIG[A-Z0-9]+)\))?")


def torchrun_failures(log: str) -> dict[int, str]:
    """{global rank: how its process ended} for each rank torchrun's summary names as failed."""
    out: dict[int, str] = {}
    for m in _FAILED_RANK.finditer(log):
        out.setdefault(int(m.group(1)), _ended(int(m.group(2)), m.group(3)))
    return out


def _ended(code: int, name: str | None) -> str:
    if code == 130:  # the worker's exit on SIGTERM or Ctrl-C: torchrun stops the others when one fails
        return "was stopped (exit 130: interrupted, as torchrun stops every rank once one has failed)"
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = name or signal.Signals(-code).name
    except ValueError:
        pass
    return f"was killed by signal {-code}{f' ({name})' if name else ''}"


def _died(events: list[dict]) -> dict:
    return next((e for e in events if e["event"] == "died"), {})


def _hosts(events: list[dict]) -> dict:
    return {e.get("rank"): (e.get("environment") or {}).get("host", {}).get("hostname")
            for e in events if e["event"] == "started"}


def _this_node(result: Result, results: dict[int, Result]) -> None:
    """On a node other than 0, the repeat as its own ranks ran it: the other nodes' ranks are node 0's
    to gather, not failures here (else this node would stop repeating while node 0 waits for it)."""
    bad = [f"rank {r}: {x.error or x.status}" for r, x in sorted(results.items()) if x.status != "ok"]
    if bad and result.status == "ok":
        result.status = "failed"
    if bad:
        result.error = "; ".join(bad)


def _gather_failures(result: Result, events: list[dict]) -> None:
    """A rank whose final gather failed (bench/launch/worker.py) fails the repeat on its node, said."""
    said = [f"rank {e.get('rank')}: {e.get('error')}" for e in events if e["event"] == "gather_failed"]
    if said:
        result.status = "failed"
        result.error = "; ".join(x for x in (result.error, "the final gather of every rank's result failed ("
                                             + "; ".join(said) + ")") if x)


def _no_result(rank: int, failures: dict[int, str]) -> str:
    if rank in failures:
        return f"no result: its process {failures[rank]}"
    if failures:
        return f"no result: stopped after rank {', '.join(map(str, sorted(failures)))} failed"
    return "no result: the process died or was stopped after another rank failed, or runs on another node"


def last_error(log: str, limit: int = 400) -> str | None:
    """The line of a worker's output that says what went wrong (the last exception's type and
    message), not the traceback above it; else its last non-empty line."""
    lines = [x.strip() for x in log.splitlines() if x.strip()]
    for line in reversed(lines):
        if _ERROR_LINE.match(line):
            return line[:limit]
    return lines[-1][:limit] if lines else None


def null_non_finite_results(report: Report) -> None:
    """No NaN or infinity reaches the file (JSON has none, and the run would be lost): any left in a
    result becomes null with a `non_finite` warning naming where; elsewhere it becomes null."""
    for r in report.results:
        paths = null_non_finite(r)
        if paths:
            shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
            r.warn("non_finite", f"{len(paths)} value(s) were NaN or infinite and are null: {shown}")
    null_non_finite(report)


def label_phases(samples: list[dict], phases: list[Phase]) -> None:
    """Stamp each sample with the workload and phase it fell in (None between phases)."""
    spans = sorted(phases, key=lambda p: p.start_s)
    i = 0
    for s in sorted(samples, key=lambda x: x["t"]):
        while i < len(spans) and spans[i].end_s < s["t"]:
            i += 1
        inside = i < len(spans) and spans[i].start_s <= s["t"] <= spans[i].end_s
        s["workload"], s["phase"] = (spans[i].workload, spans[i].phase) if inside else (None, None)


def _combine_ranks(frame: Result, results: list[Result]) -> None:
    """Each rank's repeats, in order, under that rank."""
    by_rank: dict[int, RankResult] = {}
    for res in results:
        for p in res.per_rank:
            if p.rank not in by_rank:
                by_rank[p.rank] = RankResult(p.rank, p.status, p.error, p.local_rank, p.host, Timing([]), p.memory,
                                             p.energy, list(p.warnings))
            keep = by_rank[p.rank]
            keep.timing.repeats.extend(p.timing.repeats)
            if p.status != "ok" and keep.status == "ok":
                keep.status, keep.error = p.status, p.error
    for p in by_rank.values():
        for i, rep in enumerate(p.timing.repeats):
            rep.index = i
    frame.per_rank = [by_rank[r] for r in sorted(by_rank)]


def _max_memory(memories: list[Memory]) -> Memory:
    out = Memory()
    for m in memories:
        for k, v in vars(m).items():
            old = getattr(out, k)
            if isinstance(v, int | float) and (old is None or v > old):
                setattr(out, k, v)
            elif isinstance(v, str) and old is None:
                setattr(out, k, v)
    return out


def _git() -> dict:
    """bench's commit and whether the checkout had changes, when it runs from one (else nulls)."""
    from bench.core.proc import BENCH_ROOT

    if not os.path.isdir(os.path.join(BENCH_ROOT, ".git")) or shutil.which("git") is None:
        return {}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(["git", "-C", BENCH_ROOT, "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5)
        dirty = subprocess.run(["git", "-C", BENCH_ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        if head.returncode == 0:
            return {"git_commit": head.stdout.strip(), "git_dirty": bool(dirty.stdout.strip())}
    return {}


def _worst_status(results: list[Result]) -> str:
    """The worst status among the repeats: interrupted, then failed, then skipped, else the first's."""
    statuses = [r.status for r in results]
    return next((s for s in ("interrupted", "failed", "skipped") if s in statuses), results[0].status)


def _errors(results: list[Result]) -> str | None:
    """Every repeat's error once, each named by its repeat where there are several."""
    errors = [f"repeat {i}: {r.error}" if len(results) > 1 and r.error and not r.error.startswith("repeat")
              else r.error for i, r in enumerate(results) if r.error]
    return "; ".join(dict.fromkeys(errors)) or None
