"""The report, as dataclasses: the one place its shape is written.

One `bench run` writes one Report. Each structure is a record (bench/model/fields.py: a dataclass
that pydantic checks): its fields carry their meaning and bounds (`fld`), rules across fields are
`@invariant` methods. The JSON Schema (bench/report.schema.json) and the field tables in
docs/report-format.md are generated from these classes (`python -m bench.model.schema --write`);
a test fails when the checked-in copies drift. Structures are closed (no unknown keys); the open
maps — params, environment sections, workload metrics, telemetry samples — hold typed values only.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from datetime import datetime, timezone
from typing import Literal

from bench.model.fields import ModelError, dataclass, fld, invariant, parse, plain
from bench.model.rules import IDENTITY, in_order, named, within

SCHEMA_VERSION = 5
ANALYSIS_VERSION = 2  # the statistics and verdict method of `bench compare` (docs/report-format.md)

YEARS = (1970, 2261)  # created_at: a clock's epoch to where pandas' timestamps end (2262-04-11)
Scalar = bool | int | float | str | None
Status = Literal["ok", "failed", "skipped", "interrupted"]
RunStatus = Literal["ok", "failed", "interrupted"]
PhaseName = Literal["setup", "warmup", "measure", "verify"]

# Every warning code a result can carry, with what it means (the docs table is built from this).
WARNING_CODES = {
    "no_warmup": "no warm-up step: the first measured step includes one-time costs",
    "not_steady": "the first measured steps were slower than the rest; the message says what would help (a longer "
                  "warm-up, or nothing a warm-up can do where other load shared the repeat)",
    "noisy": "step times vary more than 5 % (CV), or the CPU time fell short of the threads: a shared machine",
    "few_steps": "fewer than 5 measured steps: the within-run interval is weak",
    "idle_accelerator": "mean device utilization under 20 % during the measured steps (the seed's failure)",
    "no_utilization": "device utilization was not sampled: nothing proves the accelerator did the work",
    "model_not_on_device": "the model's parameters were not on the device the run names",
    "throttled": "a stated share of the measured samples carried a throttling reason",
    "not_judged": "a telemetry check could not be made (window too short, coverage too thin); the reason says which",
    "contended": "other load shared the machine or the accelerator during the measured steps",
    "metrics_failed": "the workload's own metrics could not be computed; the core figures stand",
    "memory_failed": "the device's memory statistics could not be read; the timing stands without them",
    "non_finite": "a measured value was NaN or infinite (a diverging loss, an overflow); it is null in the report",
    "sampler_gaps": "the telemetry sampler missed part of the run (it died, froze or fell behind)",
    "output_mismatch": "the workload's output fingerprint disagrees with another run's beyond its tolerance",
    "compiled_while_measuring": "graphs were compiled during the measured steps: compile time is inside the measured "
                                "figures (a shape the warm-up did not cover)",
    "ran_eager": "torch.compile gave up on a function at dynamo's recompile limit and ran it eager, silently: the "
                 "run is labelled compiled, its figures are not",
    "request_errors": "serving: requests failed (HTTP errors, timeouts, disconnects, refusals); counted, left out of "
                      "the latency figures, and over every SLO",
    "no_server_telemetry": "serving: the endpoint is not on this machine; its hardware was not sampled",
    "generator_late": "serving: the load generator sent requests late beyond a tenth of p99 TTFT: the TTFT figures "
                      "(from the scheduled arrival) include its lateness; the message says which figure to trust",
    "search_stopped": "serving: the capacity search stopped before its bracket was within 15 % (its probes ran out, "
                      "every probe missed down to the lowest rate, or a probe judged nothing); the message says which",
    "server_count_disagrees": "serving over HTTP: the server's usage.completion_tokens, or what it streamed, disagreed "
                              "with the tokens asked and streamed; the figures count what was streamed, up to what "
                              "each request asked",
    "prompts_cut": "serving: prompts of an --arrivals file or a --data-file longer than --context-len were cut to it",
    "prompts_as_ids": "serving over HTTP: the prompts went as token ids of bench's own tokenizer to a server that is "
                      "not bench serve and was not declared to serve that model (--endpoint-serves): its model reads "
                      "them as other tokens of the same lengths",
    "budget_cut": "a study's device-time budget ran out: repeats, offered rates or capacity probes were not run; the "
                  "message says which, and what that costs the answer",
}
WarningCode = Literal[tuple(WARNING_CODES)]  # type: ignore[valid-type]


def _unique(values: list, where: str, what: str) -> None:
    seen = set()
    for i, v in enumerate(values):
        if v in seen:
            raise ModelError(f"{where}[{i}].{what}", f"{v} appears twice")
        seen.add(v)


_ERROR_CODE = re.compile(r"[a-z0-9_]{1,64}")


def _same_lengths(owner, names: list[str], optional: tuple[str, ...] = ()) -> None:
    lengths = {n: len(getattr(owner, n)) for n in names}
    for n in optional:
        if getattr(owner, n) is not None:
            lengths[n] = len(getattr(owner, n))
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{n} {k}" for n, k in lengths.items())
        raise ModelError("", f"per-item lists differ in length ({detail})")


# ---- figures -------------------------------------------------------------------------------------

@dataclass
class Interval:
    """A figure with its confidence interval."""

    value: float | None = fld("the figure")
    ci_low: float | None = fld("lower bound of the interval, or null where none could be computed", None)
    ci_high: float | None = fld("upper bound of the interval", None)
    level: float | None = fld("confidence level, e.g. 0.95", None, minimum=0, maximum=1)
    method: str | None = fld("how the interval was computed", None)
    ranks: int | None = fld("distributed runs: how many ranks were summed", None, minimum=1)

    @invariant
    def _low_to_high(self) -> None:
        in_order(self, "ci_low", "ci_high")


@dataclass
class Summary:
    """Order statistics of a list of values (null where the list was empty)."""

    n: int | None = fld("how many values", None, minimum=0)
    mean: float | None = fld("mean", None)
    median: float | None = fld("median (p50)", None)
    p90: float | None = fld("90th percentile", None)
    p99: float | None = fld("99th percentile", None)
    stdev: float | None = fld("sample standard deviation", None)
    cv: float | None = fld("coefficient of variation, stdev / mean", None)
    min: float | None = fld("smallest value", None)
    max: float | None = fld("largest value", None)

    @invariant
    def _order_statistics_in_order(self) -> None:
        in_order(self, "min", "median", "p90", "p99", "max")
        if None not in (self.mean, self.min, self.max):
            slack = 1e-9 * max(abs(self.min), abs(self.max))  # a mean of equal values may round past them
            if not self.min - slack <= self.mean <= self.max + slack:
                raise ModelError("mean", f"{self.mean} lies outside min {self.min} .. max {self.max}")
        if self.stdev is not None and self.stdev < 0:
            raise ModelError("stdev", f"{self.stdev} is negative")


FigureValue = Interval | Summary | bool | int | float | str | None


@dataclass
class Mfu:
    """Model FLOP utilization: achieved FLOP/s over the device's peak, and where the peak came from."""

    value: float | None = fld("achieved / peak, or null with a reason", None, minimum=0)
    peak_flops_per_s: float | None = fld("the peak used", None, minimum=0)
    peak_source: str | None = fld("where the peak came from (datasheet, estimate, --peak-tflops)", None)
    reason: str | None = fld("why there is no value", None)


@dataclass
class Metrics:
    """The core figures of a result, recomputed from the raw step times whenever a report is loaded."""

    samples_per_s: Interval | None = fld("samples of the timed steps over their summed time", None)
    tokens_per_s: Interval | None = fld("tokens (see the result's tokens_are) over the summed time", None)
    steps_per_s: Interval | None = fld("timed steps per second", None)
    step_time_s: Summary | None = fld("the measured step times", None)
    achieved_flops_per_s: float | None = fld("counted FLOPs of the timed steps over their summed time", None, minimum=0)
    mfu: Mfu | None = fld("model FLOP utilization", None)


@dataclass
class FigureSpec:
    """A figure a workload declares it leads with or adds, so every output shows it with its unit."""

    key: str = fld("where the figure is: `metrics.<name>` or `workload_metrics.<name>[.<stat>]`")
    label: str = fld("short column name, e.g. `TTFT p50`")
    unit: str = fld("unit of the value, e.g. `s`, `tokens/s`, `%`, or empty")
    better: Literal["higher", "lower", "none"] = fld("which direction is better", "none")
    lead: bool = fld("the figure comparisons lead with", False)


# ---- timing --------------------------------------------------------------------------------------

@dataclass
class Contention:
    """What else used the machine or the accelerator while a repeat was measured."""

    other_load_cores: float | None = fld("mean CPU cores busy with other processes during the measured steps, on the "
                                         "CPUs the run may use", None)
    steal_percent: float | None = fld("CPU steal time (hypervisor) during the measured steps, %", None, minimum=0)
    device_processes: int | None = fld("other jobs' processes the accelerator's driver listed during the measured "
                                       "steps (null: none could be told apart, or nothing lists them)", None,
                                       minimum=0)
    reasons: list[str] = fld("why the repeat counts as contended (empty: it does not)", factory=list)
    own_cores: float | None = fld("mean CPU cores the run's own processes used during the measured steps", None,
                                  minimum=0)
    free_cores: float | None = fld("cores the run left to other load before the steps count as shared: the CPUs "
                                   "less what its threads need (cpu), or less the whole cores its processes used "
                                   "(an accelerator's host)", None, minimum=0)
    cpus: int | None = fld("the CPUs whose time was summed: those the run may use (its affinity mask)", None,
                           minimum=1)
    cpu_scope: Literal["host", "container"] | None = fld(
        "what /proc/stat counted: `host`, the kernel's figures for the whole machine (inside a container they hold "
        "other tenants' work on the same CPUs); `container`, a per-container view mounted over it (LXCFS)", None)
    in_container: bool | None = fld("signs of a container were found (a runtime's marker file or cgroup)", None)


@dataclass
class Compiles:
    """Graph compiles counted during one phase of a repeat, where the device's stack counts them."""

    phase: PhaseName = fld("the phase they fell in")
    graphs: int | None = fld("graphs compiled (null: the stack does not count them)", None, minimum=0)
    seconds: float | None = fld("time spent compiling them", None, minimum=0)
    source: str | None = fld("what counted them", None)
    eager_frames: int | None = fld("torch.compile: functions that hit dynamo's recompile limit in this phase and ran "
                                   "eager from then on (null: not counted)", None, minimum=0)


@dataclass
class Repeat:
    """One repeat: in its own worker process, model and data built anew."""

    index: int = fld("0-based repeat number", minimum=0)
    status: RunStatus = fld("how the repeat ended", "ok")
    error: str | None = fld("what went wrong", None)
    pid: int | None = fld("the worker process", None)
    setup_s: float | None = fld("model build, data, moving to the device", None, minimum=0)
    first_step_s: float | None = fld("the first warm-up step (compile, allocation)", None, minimum=0)
    warmup_s: float | None = fld("all warm-up steps", None, minimum=0)
    warmup_steps: int | None = fld("warm-up steps run, the first included", None, minimum=0)
    warmup_steady: bool | None = fld("the warm-up ended when successive windows of steps agreed (false: it stopped at "
                                     "its bound first; null: a fixed --warmup count)", None)
    step_times_s: list[float] = fld("every measured step, in order, seconds (1 ns to ~115 days: a clock reads "
                                    "nothing outside that)", factory=list, minimum=1e-9, maximum=1e7)
    step_samples: list[float] = fld("samples of each measured step", factory=list, minimum=0)
    step_tokens: list[float] = fld("tokens of each measured step", factory=list, minimum=0)
    step_flops: list[float] | None = fld("FLOPs of each step where they vary by step", None, minimum=0)
    wall_s: float | None = fld("wall time of the measured steps and the syncs between them", None, minimum=0)
    cpu_s: float | None = fld("CPU time of the worker over the same span", None, minimum=0)
    cpu_wall_ratio: float | None = fld("cpu_s / wall_s (serving: / the batches' time; waiting for requests is idle "
                                       "by design): well below the thread count means the cores were taken", None,
                                       minimum=0)
    threads: int | None = fld("torch intra-op threads", None, minimum=1)
    contention: Contention | None = fld("other load during the measured steps", None)
    host_probe_s: float | None = fld("the host's own speed around the measured steps: seconds of a fixed CPU "
                                     "kernel, the mean of before and after (bench/measure/probe.py)", None,
                                     minimum=1e-9, maximum=1e7)
    series: dict[str, list[float | None]] = fld("the workload's raw values per measured step (or per token, "
                                                 "e.g. `token_gap_s`), from which its figures are computed",
                                                 factory=dict)
    requests: RequestLog | None = fld("serving scenarios: every request of this repeat's open-loop session", None)
    figures: dict[str, FigureValue] = fld("figures the workload computed on this repeat's live model after "
                                          "timing (recall, the all-reduce time)", factory=dict)
    figure_values: dict[str, float | None] = fld("each declared figure computed from this repeat's raw data alone, by "
                                                 "its key (`workload_metrics.ttft_s.p99`): the run-to-run variance "
                                                 "a --fail-on gate on that figure needs", factory=dict)
    compiles: list[Compiles] = fld("graph compiles per phase, where the device counts them (Gaudi: the bridge's "
                                   "metrics; torch.compile: dynamo's counters)", factory=list)
    set_aside: list[str] | None = fld("why this repeat was set aside and redone (other load, the host's own speed "
                                      "moved): kept here, left out of every figure and interval; null: it counts",
                                      None)

    @invariant
    def _one_entry_per_step(self) -> None:
        _same_lengths(self, ["step_times_s", "step_samples", "step_tokens"], optional=("step_flops",))

    @invariant
    def _figures_fit_their_names(self) -> None:
        named(self.series, "series")
        named(self.figures, "figures")


@dataclass
class Timing:
    """Raw timing: each repeat's step times kept apart."""

    repeats: list[Repeat] = fld("one per repeat", factory=list)

    @property
    def counted(self) -> list[Repeat]:
        """The repeats the figures are made of: all but those set aside (`Repeat.set_aside`)."""
        return [r for r in self.repeats if not r.set_aside]

    def _concat(self, name: str) -> list:
        return [x for r in self.counted for x in getattr(r, name)]

    @property
    def step_times_s(self) -> list[float]:
        return self._concat("step_times_s")

    @property
    def step_samples(self) -> list[float]:
        return self._concat("step_samples")

    @property
    def step_tokens(self) -> list[float]:
        return self._concat("step_tokens")

    @property
    def step_flops(self) -> list[float] | None:
        if not self.counted or any(r.step_flops is None for r in self.counted):
            return None
        return self._concat("step_flops")

    def _median(self, name: str) -> float | None:
        vals = sorted(getattr(r, name) for r in self.counted if getattr(r, name) is not None)
        return vals[len(vals) // 2] if vals else None

    @property
    def setup_s(self) -> float | None:
        return self._median("setup_s")

    @property
    def first_step_s(self) -> float | None:
        return self._median("first_step_s")

    @property
    def warmup_s(self) -> float | None:
        return self._median("warmup_s")

    @property
    def measured(self) -> list[Repeat]:
        """Counted repeats with at least one measured step."""
        return [r for r in self.counted if r.step_times_s]

    @property
    def judged(self) -> list[Repeat]:
        """Counted repeats whose raw data a workload's figures are made of: measured steps, or a serving
        session's request log (one none of whose requests completed has no step, and still counts). The
        run and every reader of its report judge the same repeats."""
        return [r for r in self.counted if r.step_times_s or r.requests is not None]


StopReason = Literal["repeats", "precise", "max_repeats", "max_time", "failed", "skipped", "interrupted", "budget"]


@dataclass
class Stopping:
    """How many repeats a result ran and why it stopped: a fixed `--repeats`, or `--target-ci` (repeats
    added until the lead throughput's 95 % interval is narrow enough, or a bound). The rule looks at
    the interval's width only, never at a difference from anything."""

    rule: Literal["fixed", "target_ci"] = fld("`fixed`: --repeats of them; `target_ci`: until precise or a bound")
    metric: str = fld("the throughput whose interval the rule watched (the result's main metric)")
    least: int = fld("counted repeats the rule needs before it may stop on precision (--repeats)", minimum=1)
    target_ci: float | None = fld("the largest half-width of the 95 % interval, a fraction of the value", None,
                                  exclusive_minimum=0)
    max_repeats: int | None = fld("at most this many repeats, set-aside ones included", None, minimum=1)
    max_time_s: float | None = fld("no repeat started that would likely end after this many seconds", None,
                                   exclusive_minimum=0)
    half_width: float | None = fld("the half-width reached over the counted repeats, a fraction of the value "
                                   "(null: fewer than 2)", None, minimum=0)
    ran: int = fld("repeats run, set-aside ones included", 0, minimum=0)
    set_aside: int = fld("repeats set aside and redone", 0, minimum=0)
    stopped: StopReason = fld("why no further repeat ran: `repeats` (the fixed count), `precise` (the target "
                              "reached), `max_repeats`, `max_time`, a repeat `failed`, was `skipped` or `interrupted`, "
                              "or the next would have run past a study's device-time `budget`", "repeats")
    seconds: float | None = fld("wall time of all the repeats, worker start-up included", None, minimum=0)


# ---- memory and energy ---------------------------------------------------------------------------

@dataclass
class Memory:
    """Peak memory of the measured steps."""

    device_peak_bytes: float | None = fld("peak bytes allocated on the device", None, minimum=0)
    device_peak_reason: str | None = fld("why there is no device peak", None)
    device_peak_reserved_bytes: float | None = fld("peak bytes the allocator reserved (cuda)", None, minimum=0)
    device_total_bytes: float | None = fld("the device's memory (hpu: the card's, synDeviceInfo dramSize)", None,
                                           minimum=0)
    device_pool_bytes: float | None = fld("hpu: the allocator's pool (memory_stats Limit), less than the card's "
                                          "memory", None, minimum=0)
    device_max_in_use_bytes: float | None = fld("peak bytes in use (hpu MaxInUse)", None, minimum=0)
    process_max_rss_bytes: float | None = fld("the worker's peak resident memory", None, minimum=0)
    host_peak_rss_bytes: float | None = fld("peak resident memory of the process tree, from telemetry", None, minimum=0)


@dataclass
class EnergyPart:
    """Energy of one device or domain over the measured window."""

    joules: float | None = fld("energy", None, minimum=0)
    method: str | None = fld("energy counter, or integrated power samples (estimate; the instantaneous field where it was "
                             "sampled, else the power reading)", None)
    reason: str | None = fld("why it is null", None)


@dataclass
class EnergyFigure:
    """Energy of the measured steps, for the accelerator or for the host, never mixed."""

    joules: float | None = fld("energy of the measured window", None, minimum=0)
    window_s: float | None = fld("the window it covers", None, minimum=0)
    method: str | None = fld("how it was measured", None)
    estimate: bool = fld("true when integrated from power samples rather than read from a counter", False)
    per_sample_j: float | None = fld("joules per sample of the timed steps", None, minimum=0)
    per_token_j: float | None = fld("joules per token of the timed steps", None, minimum=0)
    reason: str | None = fld("why it is null", None)
    parts: dict[str, EnergyPart] = fld("per device or RAPL domain", factory=dict)


@dataclass
class Energy:
    """Device energy and host energy as separate figures; a serving session's per request, its idle gaps in and out."""

    device: EnergyFigure | None = fld("the accelerator(s): counter delta after a sync, or integrated power", None)
    host: EnergyFigure | None = fld("the host CPU packages (RAPL package-* domains)", None)
    session_per_request_j: float | None = fld("serving: the accelerator's energy over the whole session, idle gaps "
                                              "between requests included, per request completed in it: what serving "
                                              "this load cost", None, minimum=0)
    busy_per_request_j: float | None = fld("serving: the accelerator's energy over its busy spans alone (engine steps; "
                                           "over HTTP, spans with a request in flight), per request completed: what a "
                                           "box kept busy would spend (busy_j over the same count)", None, minimum=0)
    busy_j: float | None = fld("serving: the session's energy less the idle power over its idle time (an estimate)",
                               None, minimum=0)
    idle_power_w: float | None = fld("serving: the accelerator's power with no request in flight, every accelerator "
                                     "summed: the intercept of the power readings fitted against the busy share of the "
                                     "second each covers (least squares)", None, minimum=0)
    per_request_reason: str | None = fld("why a serving figure per request is null", None)


# ---- per-result extras ---------------------------------------------------------------------------

@dataclass
class ResultWarning:
    """Something the reader must know before trusting a figure."""

    code: WarningCode = fld("one of the codes in the warnings table")
    message: str = fld("what happened, in words")


@dataclass
class TelemetryStat:
    """One telemetry key over one phase."""

    mean: float | None = fld("mean", None)
    min: float | None = fld("smallest", None)
    max: float | None = fld("largest", None)
    n: int | None = fld("samples", None, minimum=0)


@dataclass
class Fingerprint:
    """What the workload computed on fixed inputs, so that runs on different devices can be checked
    for computing the same thing (tolerance by precision)."""

    kind: str = fld("what was computed, e.g. `loss after 3 fixed steps`")
    precision: str = fld("precision it ran in")
    values: list[float] = fld("continuous outputs, compared with a relative tolerance", factory=list)
    tokens: list[int] = fld("discrete outputs (token or candidate ids), compared where margins allow", factory=list)
    margins: list[float] = fld("decision margin of each discrete output (top-1 minus top-2 score)", factory=list)

    @invariant
    def _a_margin_per_token(self) -> None:
        if self.margins and len(self.margins) != len(self.tokens):
            raise ModelError("", f"margins ({len(self.margins)}) and tokens ({len(self.tokens)}) differ in length")


@dataclass
class RequestLog:
    """Per-request records of a serving scenario, one column per field, on the runner's clock."""

    arrival_s: list[float] = fld("when the request arrived", factory=list, minimum=0)
    start_s: list[float | None] = fld("when it joined a batch (its encoder pass began; null: never served)",
                                      factory=list, minimum=0)
    first_token_s: list[float | None] = fld("when its first token was ready", factory=list, minimum=0)
    finish_s: list[float | None] = fld("when its last token was ready (null: it did not complete: never served, "
                                       "its client went away, or the engine failed)", factory=list, minimum=0)
    prompt_tokens: list[int] = fld("prompt length", factory=list, minimum=0)
    new_tokens: list[int] = fld("tokens generated", factory=list, minimum=0)
    batch: list[int | None] = fld("the static batch it was served in, or the engine step at which it joined the "
                                  "running batch (continuous batching)", factory=list, minimum=0)
    token_s: list[list[float]] | None = fld("each request's token times, one per generated token (the first is "
                                            "first_token_s); over HTTP one per streamed chunk, which may carry "
                                            "several tokens; null in reports before format 4", None, minimum=0)
    sent_s: list[float | None] | None = fld("when the load generator sent it (its lateness: sent_s - arrival_s, "
                                            "not part of the latency's start)", None, minimum=0)
    ready_s: list[float | None] | None = fld("with --max-concurrency: when it could be sent — its arrival, or the "
                                             "moment a request in flight ended and freed a slot for it (the wait "
                                             "for a slot, ready_s - arrival_s, is part of its latency; the load "
                                             "generator's lateness is sent_s - ready_s); null without a cap",
                                             None, minimum=0)
    error: list[str | None] | None = fld("why it did not complete, a code: `timeout`, `disconnected`, `connection`, "
                                         "`http_<status>`, `bad_stream`, `server_error` (an error in the stream), "
                                         "`rejected_<code>`, `cancelled`, `engine_error`, `server_exited` or "
                                         "`server_stopped` (a server the run started that exited or was stopped; "
                                         "`bench serve` stopped before it finished); null where it completed",
                                         None)
    measured: list[bool] | None = fld("in the measured window (false: a warm-up or cool-down request, served but "
                                      "left out of the figures)", None)
    turn: list[int] | None = fld("conversations: the turn of its conversation (0 the first); its prompt holds the "
                                 "dialogue so far", None, minimum=0)
    session_start_s: float | None = fld("when the session began: the arrivals' offsets count from it", None, minimum=0)

    @invariant
    def _one_entry_per_request(self) -> None:
        optional = ("token_s", "sent_s", "ready_s", "error", "measured", "turn")
        columns = [f.name for f in dataclasses.fields(self) if f.name not in (*optional, "session_start_s")]
        _same_lengths(self, columns, optional=optional)
        for i, (stamps, n) in enumerate(zip(self.token_s or [], self.new_tokens, strict=False)):
            if len(stamps) > n:
                raise ModelError(f"token_s[{i}]", f"{len(stamps)} token times for {n} tokens generated")
            if any(b < a for a, b in zip(stamps, stamps[1:], strict=False)):
                raise ModelError(f"token_s[{i}]", "token times go backwards")

    @invariant
    def _each_request_in_order(self) -> None:
        """arrival <= sent <= first token <= each token <= finish; the batch it joined (start_s, known
        in this process only: null over HTTP) between its arrival and its first token."""
        in_order(self, "arrival_s", "first_token_s", "finish_s", nulls_last=True)
        in_order(self, "arrival_s", "start_s", "first_token_s")
        if self.sent_s is not None:
            in_order(self, "sent_s", "first_token_s")
        if self.ready_s is not None:
            in_order(self, "arrival_s", "ready_s")
            if self.sent_s is not None:
                in_order(self, "ready_s", "sent_s")
        within(self, "token_s", "first_token_s", "finish_s")
        for i, (first, k, prompt) in enumerate(zip(self.first_token_s, self.new_tokens, self.prompt_tokens, strict=True)):
            if first is not None and k < 1:
                raise ModelError(f"new_tokens[{i}]", f"{k}, yet its first token came at {first}")
            if prompt < 1:
                raise ModelError(f"prompt_tokens[{i}]", f"{prompt}: a request has at least one prompt token")

    @invariant
    def _errors_counted(self) -> None:
        """A request that did not complete says why; one that completed has no error."""
        for i, (finish, err) in enumerate(zip(self.finish_s, self.error or [], strict=False)):
            if err is not None and not _ERROR_CODE.fullmatch(err):
                raise ModelError(f"error[{i}]", "an error code is 1-64 lower-case letters, digits and _")
            if (finish is None) == (err is None):
                raise ModelError(f"error[{i}]", "a request has a finish time or an error, not both and not neither")

    @invariant
    def _sent_after_it_arrived(self) -> None:
        for i, (arrival, sent) in enumerate(zip(self.arrival_s, self.sent_s or [], strict=False)):
            if sent is not None and sent < arrival:
                raise ModelError(f"sent_s[{i}]", f"sent ({sent}) before its scheduled arrival ({arrival})")


@dataclass
class ServedBy:
    """Which engine served a serving result's requests, and how the load reached it."""

    engine: Literal["in-process", "http"] = fld("in-process: bench's engine in the worker process; http: an "
                                                "OpenAI-compatible server, over HTTP with streaming")
    server: str | None = fld("what served: `bench serve` where the run started it, else what the endpoint says it is "
                             "(its /v1/models owner, its Server header)", None)
    endpoint: str | None = fld("the base URL requests went to (no credentials, no query)", None)
    api: Literal["completions", "chat"] | None = fld("the API the requests used", None)
    model: str | None = fld("the model's name at the endpoint", None)
    local: bool | None = fld("the endpoint is on this machine (a loopback address)", None)
    started_by_run: bool = fld("the run started the server itself on a free local port: its CPU is this run's own "
                               "work, not contention", False)
    static_shapes: bool | None = fld("the engine padded batch, source width and cache length to buckets (a "
                                     "static-shape device); how such a device serves, not another workload: "
                                     "recorded and compared, not part of the identity (null: not known)", None)
    telemetry: str | None = fld("why the server's hardware was not sampled (a remote endpoint); null where it is "
                                "this machine", None)
    hpu_graphs: bool | None = fld("bench's engine on a static-shape device: each warmed decode bucket was captured as "
                                  "an HPU graph and replayed (--hpu-graphs in lazy mode, as Gaudi's serving stacks "
                                  "run), or every step's graph built as it ran (false); null over HTTP (the server's "
                                  "own: bench serve records it in its --report) and on other devices", None)
    device: str | None = fld("over HTTP on this machine: the accelerator the run watched as the server's and how it "
                             "was found (said by the bench serve the run started, held by the server's process, or "
                             "named with --endpoint-device), or why none was; the worker itself holds no device "
                             "(null in-process, on the CPU, or in reports before format 5)", None)


@dataclass
class Busy:
    """A serving session's busy spans: how much of its measured window they took, and the accelerator's utilization
    over them (waiting for arrivals is idle by design, not the accelerator idling at its work)."""

    seconds: float | None = fld("the busy spans' time summed over the repeats (as the telemetry's measured spans)", None,
                                minimum=0)
    share: float | None = fld("of the measured window", None, minimum=0, maximum=1)
    util_percent: float | None = fld("the accelerator's mean utilization over the busy spans: the window's mean over "
                                     "the busy share (a utilization counter's mean over a window is the share of it a "
                                     "kernel ran: all of it inside the busy spans), at most 100", None, minimum=0,
                                     maximum=100)


@dataclass
class RankResult:
    """One rank's own timing and figures in a multi-device run."""

    rank: int = fld("global rank", minimum=0)
    status: Status = fld("how the rank ended")
    error: str | None = fld("what went wrong", None)
    local_rank: int | None = fld("rank on its node", None, minimum=0)
    host: str | None = fld("the node", None)
    timing: Timing = fld("the rank's step times, per repeat", factory=Timing)
    memory: Memory = fld("the rank's memory", factory=Memory)
    energy: Energy | None = fld("the rank's energy", None)
    warnings: list[ResultWarning] = fld("the rank's warnings", factory=list)


@dataclass
class Result:
    """One workload of a run."""

    workload: str = fld("workload name")
    status: Status = fld("`failed` with the message, `skipped` with the reason, `interrupted`")
    error: str | None = fld("what went wrong", None)
    params: dict[str, Scalar] = fld("the workload's identity: two runs are comparable when these match", factory=dict)
    variant: dict[str, Scalar | list[Scalar]] = fld("the options that made this one of several results of its workload "
                                                    "in one run (serving: the offered rate)", factory=dict)
    tokens_are: str | None = fld("what tokens_per_s counts for this workload", None)
    main_metric: str | None = fld("the throughput comparisons lead with (a Metrics field)", None)
    model_device: str | None = fld("where the model's parameters were", None)
    flops_per_step: float | None = fld("matmul FLOPs of one step", None, minimum=0)
    timing: Timing = fld("raw step times, per repeat", factory=Timing)
    metrics: Metrics = fld("core figures (recomputed from timing on load)", factory=Metrics)
    workload_metrics: dict[str, FigureValue] = fld("the workload's own figures, dotted names", factory=dict)
    series: dict[str, list[float | None]] = fld("series not tied to one repeat (a published run's log lines)",
                                                 factory=dict)
    figures: list[FigureSpec] = fld("what the workload leads with and adds, with units", factory=list)
    memory: Memory = fld("peak memory", factory=Memory)
    energy: Energy = fld("energy of the measured steps", factory=Energy)
    warnings: list[ResultWarning] = fld("see the warnings table", factory=list)
    telemetry_summary: dict[str, dict[str, TelemetryStat]] = fld("per phase: per telemetry key", factory=dict)
    per_rank: list[RankResult] = fld("multi-device runs: every rank", factory=list)
    fingerprint: Fingerprint | None = fld("outputs on fixed inputs, for parity across devices", None)
    served_by: ServedBy | None = fld("serving results: which engine served the requests", None)
    busy: Busy | None = fld("serving results: the accelerator over the spans the engine (or, over HTTP, the server as "
                            "the client saw it) was busy; what idle_accelerator judges for serving", None)
    stopping: Stopping | None = fld("how many repeats ran and why no further one did", None)

    @invariant
    def _figures_fit_their_names(self) -> None:
        named(self.workload_metrics, "workload_metrics")
        named(self.series, "series")

    @invariant
    def _each_rank_once(self) -> None:
        _unique([p.rank for p in self.per_rank], "per_rank", "rank")

    def warn(self, code: str, message: str) -> None:
        if not any(w.code == code and w.message == message for w in self.warnings):
            self.warnings.append(ResultWarning(code, message))

    def codes(self) -> set[str]:
        return {w.code for w in self.warnings}

    def merge_ranks(self, by_rank: dict[int, Result | None], ranks: list[RankStatus]) -> None:
        """Attach every rank's own timing and figures; the result fails if any rank did."""
        self.per_rank = [RankResult(r, res.status, res.error, timing=copy.deepcopy(res.timing), memory=res.memory,
                                    energy=res.energy, warnings=list(res.warnings))
                         for r, res in sorted(by_rank.items()) if res is not None]
        stopped = {x.rank: x.error for x in ranks if x.status == "interrupted"}
        problems = [f"rank {p.rank}: {stopped.get(p.rank) if p.status == 'interrupted' else p.error}"
                    for p in self.per_rank if p.status != "ok"]
        reported = {p.rank for p in self.per_rank}
        problems += [f"rank {x.rank}: {x.error}" for x in ranks if x.rank not in reported]
        statuses = {p.status for p in self.per_rank}
        if "failed" in statuses or len(self.per_rank) < len(ranks):
            self.status = "failed"
        elif "interrupted" in statuses:
            self.status = "interrupted"
        if problems:
            self.error = "; ".join(problems)


# ---- telemetry -----------------------------------------------------------------------------------

@dataclass
class CollectorStatus:
    """Whether a collector worked, through which library or tool, or why not."""

    available: bool = fld("it sampled")
    source: str | None = fld("the library or tool that answered", None)
    reason: str | None = fld("why it is unavailable", None)
    fallback_reasons: list[str] = fld("why the preferred sources before it failed", factory=list)


@dataclass
class TelemetrySource:
    """What a key prefix in the samples stands for (`gpu0.` -> an accelerator)."""

    role: Literal["host", "accelerator", "host_energy"] = fld("what the prefix measures")
    device: str | None = fld("the device kind (cpu, cuda, hpu)", None)
    index: int | None = fld("the collector's index of the card (NVML / HLML index)", None, minimum=0)
    name: str | None = fld("device name", None)
    uuid: str | None = fld("device UUID", None)
    module_id: int | None = fld("Gaudi module ID (what the PyTorch bridge pins ranks to)", None, minimum=0)
    mig: bool | None = fld("an NVIDIA MIG instance: utilization unsupported, power is the whole GPU's", None)
    rank: int | None = fld("the local rank using it", None, minimum=0)


@dataclass
class Phase:
    """A span on the run's monotonic clock."""

    workload: str | None = fld("workload")
    phase: PhaseName = fld("setup, warmup, measure or verify")
    start_s: float = fld("seconds since the run started")
    end_s: float = fld("seconds since the run started")
    repeat: int | None = fld("repeat number", None, minimum=0)
    variant: str | None = fld("which of its workload's results, e.g. `qps=4` (see Result.variant)", None)

    @invariant
    def _ends_after_it_starts(self) -> None:
        if self.end_s < self.start_s:
            raise ModelError("", f"ends ({self.end_s}) before it starts ({self.start_s})")


@dataclass
class PhaseCoverage:
    """How well the sampler covered one phase."""

    workload: str | None = fld("workload")
    phase: PhaseName = fld("phase")
    duration_s: float = fld("length of the phase", minimum=0)
    samples: int = fld("samples inside it", minimum=0)
    repeat: int | None = fld("repeat", None)
    samples_per_s: float | None = fld("samples / duration", None, minimum=0)
    max_gap_s: float | None = fld("the longest span without a sample (edges included)", None, minimum=0)
    start_s: float | None = fld("when it started, seconds since the run started", None)
    variant: str | None = fld("which of its workload's results", None)


@dataclass
class SamplerHealth:
    """Whether the sampler lived through the run and kept its rate."""

    alive_to_end: bool | None = fld("the sampler process was still running when the run ended", None)
    reason: str | None = fld("what happened to it", None)
    expected_period_s: float | None = fld("the spacing of samples its rate promises", None, minimum=0)
    phases: list[PhaseCoverage] = fld("coverage per phase", factory=list)
    non_finite: int = fld("sample values that were NaN or infinite and are null", 0, minimum=0)


SampleValue = bool | int | float | str | None | list[float]


@dataclass
class Telemetry:
    """Hardware samples on the run's clock, with the phases they fall in."""

    sample_hz: float = fld("sampling rate of device collectors (0: off)", minimum=0)
    collectors: dict[str, CollectorStatus] = fld("per collector", factory=dict)
    sources: dict[str, TelemetrySource] = fld("what each key prefix in the samples stands for", factory=dict)
    phases: list[Phase] = fld("setup / warm-up / measured spans", factory=list)
    samples: list[dict[str, SampleValue]] = fld("flat samples: `t` (seconds since the run started) and keys like `gpu0.power_w`", factory=list)
    health: SamplerHealth | None = fld("sampler coverage", None)
    other_ranks: dict[str, Telemetry] = fld("multi-device runs: telemetry of the other ranks or nodes", factory=dict)

    @invariant
    def _every_sample_has_a_time(self) -> None:
        for i, s in enumerate(self.samples):
            if not isinstance(s.get("t"), int | float) or isinstance(s.get("t"), bool):
                raise ModelError(f"samples[{i}]", "every sample needs a number `t`")


# ---- the report ----------------------------------------------------------------------------------

@dataclass
class Provenance:
    """What produced the report."""

    command: list[str] = fld("the command line", factory=list)
    bench_version: str | None = fld("bench's version", None)
    git_commit: str | None = fld("bench's git commit, where it ran from a checkout", None)
    git_dirty: bool | None = fld("the checkout had uncommitted changes", None)
    analysis_version: int = fld("version of the statistics method (docs/report-format.md)", ANALYSIS_VERSION)
    launcher: Literal["inline", "process", "torchrun"] | None = fld("how repeats ran: inline shares one process", None)


@dataclass
class ThreadChoice:
    """How many CPU threads each rank ran with, and why: chosen at the start from what was free, or given."""

    threads: int = fld("torch intra-op threads of each rank", minimum=1)
    reason: Literal["given", "free", "other_load", "quota", "affinity"] = fld(
        "`given`: --threads; else what bound the choice: `other_load` (other processes' CPU), `quota` (the "
        "cgroup's CPU quota), `affinity` (the CPUs this process may run on), `free` (every CPU was free)")
    cpus: float | None = fld("CPUs the run may use: the affinity mask's count, capped by the cgroup's quota", None,
                             minimum=0)
    quota_cpus: float | None = fld("CPUs the cgroup's quota allows (cpu.max, or cfs_quota_us / cfs_period_us); "
                                   "null: no quota", None, minimum=0)
    other_load_cores: float | None = fld("cores busy with other processes over a short window before the run; null: "
                                         "not measured", None, minimum=0)
    ranks: int = fld("ranks on this node that share the CPUs (a --scaling sweep: its largest world size)", 1,
                     minimum=1)


@dataclass
class Arithmetic:
    """What a precision's name does not say: which ops autocast lowers and which it keeps in fp32 on this device,
    and how fp32 matmuls ran. Two runs of the same precision on different devices can compute differently."""

    autocast_lower_ops: list[str] | None = fld("ops autocast runs in the lower precision (bf16, fp16), sorted (null: not "
                                               "recorded for this device)", None)
    autocast_fp32_ops: list[str] | None = fld("ops autocast keeps in fp32, sorted (null: not recorded)", None)
    autocast_source: str | None = fld("where the lists come from: the stack's defaults, named, or the files the "
                                      "environment names in their place", None)
    matmul_fp32: Literal["ieee", "tf32"] | None = fld("how fp32 matmuls ran: `ieee` single precision or `tf32` "
                                                      "(TensorFloat-32); it decides the MFU's peak (null: not known)",
                                                      None)
    matmul_reason: str | None = fld("what decided it (torch's setting, NVIDIA_TF32_OVERRIDE=0, ...)", None)


@dataclass
class Environment:
    """Everything a reader needs to trust or question the numbers."""

    host: dict[str, Scalar] = fld("host, CPU, memory", factory=dict)
    python: dict[str, Scalar] = fld("interpreter", factory=dict)
    packages: dict[str, str | None] = fld("versions of the packages that matter", factory=dict)
    torch: dict[str, Scalar] = fld("torch build and settings", factory=dict)
    env_vars: dict[str, str] = fld("relevant environment variables", factory=dict)
    device: dict[str, Scalar] = fld("the device's description (backend, device_name, driver, mode, ...)", factory=dict)
    threads: ThreadChoice | None = fld("cpu runs: the threads each rank ran with and why", None)
    arithmetic: Arithmetic | None = fld("the effective autocast op lists and fp32 matmul mode (null: not recorded)",
                                        None)


@dataclass
class RankStatus:
    """How one rank of a multi-device run ended."""

    rank: int = fld("global rank", minimum=0)
    status: Status = fld("how it ended")
    error: str | None = fld("what went wrong", None)
    local_rank: int | None = fld("rank on its node", None, minimum=0)
    host: str | None = fld("node", None)


@dataclass
class Distributed:
    """A multi-device run through torchrun."""

    world_size: int = fld("ranks", minimum=1)
    nnodes: int = fld("machines", minimum=1)
    backend: str = fld("process-group backend (gloo, nccl, hccl)")
    launcher: str = fld("torch.distributed.run")
    exit_code: int | None = fld("the launcher's exit code", None)
    ranks: list[RankStatus] = fld("every rank", factory=list)

    @invariant
    def _ranks_of_this_world(self) -> None:
        _unique([r.rank for r in self.ranks], "ranks", "rank")
        for i, r in enumerate(self.ranks):
            if r.rank >= self.world_size:
                raise ModelError(f"ranks[{i}].rank", f"{r.rank} in a world of {self.world_size}")


ConfigValue = Scalar | list[Scalar] | dict[str, Scalar | list[Scalar]]


# ---- studies (bench study) ---------------------------------------------------------------------------

@dataclass
class StudyPrice:
    """A price a study names: an instance of `devices` devices at `usd_per_hour` (bench/core/prices.py)."""

    match: str = fld("the device kind (cpu, cuda, hpu) or the run label it prices")
    usd_per_hour: float = fld("USD per instance-hour", exclusive_minimum=0, maximum=1e6)
    devices: int = fld("devices the instance holds", minimum=1, maximum=65_536)
    source: str = fld("where the price came from")


@dataclass
class StudyRun:
    """One run of a study: one `bench run` of some workloads with their options."""

    name: str = fld("the run's name in the study")
    config: dict[str, ConfigValue] = fld("its options resolved (defaults and the preset filled), by group as "
                                         "`Report.config` holds them; the box's device and the output are the "
                                         "command line's, not the study's", factory=dict)


@dataclass
class Study:
    """A study as resolved from its file: the question, its runs and what prices them. The same in every
    report the study produced, whatever box ran it; `bench study --from REPORT` runs it again."""

    name: str = fld("the study's name")
    question: str | None = fld("the question it answers, in words", None)
    budget_s: float | None = fld("device time the study may take, seconds (null: no bound)", None,
                                 exclusive_minimum=0)
    epoch_samples: int | None = fld("samples one fine-tune epoch means (the dataset's size): prices an epoch", None,
                                    minimum=1)
    prices: list[StudyPrice] = fld("prices per instance-hour, by device kind or label", factory=list)
    runs: list[StudyRun] = fld("its runs, in order", factory=list)

    @invariant
    def _runs_named_once(self) -> None:
        _unique([r.name for r in self.runs], "runs", "name")


PlanCutCode = Literal["repeats", "target_ci", "max_time", "requests", "probes", "probe_s", "run"]


@dataclass
class PlanCut:
    """What a study's plan cut to fit its budget, before anything ran."""

    run: str = fld("the study's run")
    code: PlanCutCode = fld("`repeats` fewer repeats; `target_ci` no interval target (one repeat); `max_time` "
                            "--target-ci's repeats bounded in time; `requests` fewer requests per session; `probes` fewer "
                            "capacity probes; `probe_s` capacity probes shortened; `run` not run")
    workload: str | None = fld("the workload (null: the whole run)", None)
    planned: float | None = fld("the value the study asked for (repeats, seconds, requests)", None)
    given: float | None = fld("the value the budget allows", None)


@dataclass
class PlanItem:
    """One workload of one run: its estimated device time."""

    run: str = fld("the study's run (the run's own name for a plain bench run)")
    workload: str = fld("workload")
    repeats: int = fld("repeats of each result (the most: --max-repeats under --target-ci)", minimum=0)
    estimate_s: float = fld("expected device time, seconds", minimum=0)
    worst_s: float = fld("the most it can take, seconds (a capacity search whose every probe misses)", minimum=0)
    pace: str = fld("where the pace came from: `measured` here before (a report), or `default` (bench's table, not "
                    "this box)")
    results: int | None = fld("results it makes (offered rates; null: a capacity search chooses them)", None,
                              minimum=0)


@dataclass
class Plan:
    """A run's or a study's plan, made before anything was measured: device time is the wall time a run holds
    the device (its worker processes' start, set-up, warm-up, measured steps or requests, checks): what a box
    billed by the hour costs."""

    items: list[PlanItem] = fld("each workload of each run", factory=list)
    budget_s: float | None = fld("the device-time budget (null: none)", None, exclusive_minimum=0)
    cuts: list[PlanCut] = fld("what the plan cut to fit the budget", factory=list)

    @property
    def estimate_s(self) -> float:
        return sum(i.estimate_s for i in self.items)

    @property
    def worst_s(self) -> float:
        return sum(i.worst_s for i in self.items)


@dataclass
class StudyRecord:
    """Which study a report belongs to, which of its runs it holds, and the plan the box made of it."""

    id: str = fld("random hex id of the `bench study` command: the reports of one box's study share it")
    run: str = fld("the study's run this report holds")
    source: str = fld("where the study came from: `built-in NAME`, a file, or `--from` a report")
    study: Study = fld("the study, resolved")
    plan: Plan | None = fld("the plan this box made of it: estimates, budget, cuts", None)
    started_s: float | None = fld("device time the study had used when this run started, seconds", None, minimum=0)

    @invariant
    def _run_of_the_study(self) -> None:
        if self.run not in {r.name for r in self.study.runs}:
            raise ModelError("run", f"{self.run[:80]!r} is not one of the study's runs")


@dataclass
class Report:
    """One `bench run`."""

    schema_version: int = fld("format version (see History)", minimum=1)
    bench_version: str = fld("version of bench that wrote it")
    run_id: str = fld("random hex id; its first 8 characters end the file name")
    created_at: str = fld("UTC ISO 8601")
    status: RunStatus = fld("the run as a whole")
    label: str | None = fld("`--label`", None)
    origin: Literal["measured", "published"] = fld("`published`: transcribed from elsewhere, not measured by bench", "measured")
    source: str | None = fld("where a published report's figures come from", None)
    provenance: Provenance | None = fld("command line, version, commit", None)
    environment: Environment = fld("host, software, device", factory=Environment)
    config: dict[str, ConfigValue] = fld("the resolved configuration, by option group", factory=dict)
    results: list[Result] = fld("one per workload (per offered rate for serving)", factory=list)
    telemetry: Telemetry = fld("hardware samples", factory=lambda: Telemetry(sample_hz=0))
    distributed: Distributed | None = fld("multi-device runs", None)
    study: StudyRecord | None = fld("the study this run belongs to (`bench study`), resolved, with this box's plan",
                                    None)
    plan: Plan | None = fld("a plain `bench run`: its plan, made before anything was measured (a study's is in "
                            "`study.plan`)", None)

    @invariant
    def _named(self) -> None:
        if not self.run_id:
            raise ModelError("run_id", "must not be empty")

    @invariant
    def _identity_typed(self) -> None:
        """A measured run's identity is what bench recorded: counts are whole numbers, names text."""
        if self.origin == "measured":
            for i, r in enumerate(self.results):
                named(r.params, f"results[{i}].params", IDENTITY)

    @invariant
    def _dated(self) -> None:
        try:
            when = datetime.fromisoformat(self.created_at)
        except ValueError:
            raise ModelError("created_at", f"not an ISO 8601 time: {self.created_at[:40]!r}") from None
        if when.utcoffset() is None:
            raise ModelError("created_at", f"{self.created_at[:40]!r} has no UTC offset (e.g. +00:00)")
        if not YEARS[0] <= when.year <= YEARS[1] or not YEARS[0] <= self.created_utc.year <= YEARS[1]:
            raise ModelError("created_at", f"{self.created_at[:40]!r} is not a time a run was made (a year from "
                                           f"{YEARS[0]} to {YEARS[1]})")

    @property
    def created_utc(self) -> datetime:
        """When it ran, in UTC (the only reading of created_at anything else makes)."""
        return datetime.fromisoformat(self.created_at).astimezone(timezone.utc)

    # -- (de)serialisation -------------------------------------------------------------------------
    @classmethod
    def from_json(cls, data: dict) -> Report:
        return parse(cls, data)

    def to_json(self) -> dict:
        """Plain JSON data, checked exactly as a loader will check it."""
        data = plain(self)
        parse(Report, data)  # validation at write: what is written will load
        return data

    def result(self, workload: str) -> Result | None:
        return next((r for r in self.results if r.workload == workload), None)

    @classmethod
    def merge_ranks(cls, by_rank: dict[int, tuple[Report, RankStatus] | None], world: int, nnodes: int,
                    backend: str, exit_code: int | None) -> Report:
        """One report from every rank's: the lowest rank present is the frame, each result gains every
        rank's timing (per_rank), ranks that never reported are named, and failure wins over a stop
        (a rank the launcher stopped because another failed is not a user's interrupt)."""
        present = {r: v for r, v in by_rank.items() if v is not None}
        if not present:
            raise ValueError("no rank reported back")
        frame = copy.deepcopy(present[min(present)][0])
        ranks = [present[r][1] if r in present else
                 RankStatus(r, "failed", "no report: the process died or was stopped after another rank failed, "
                                         "or runs on another node") for r in range(world)]
        failed = [str(r.rank) for r in ranks if r.status == "failed"]
        for r in ranks:
            if r.status == "interrupted" and failed:
                r.error = f"stopped by the launcher after rank {', '.join(failed)} failed"
        frame.distributed = Distributed(world, nnodes, backend, "torch.distributed.run", exit_code, ranks)
        frame.telemetry.other_ranks = {str(r): rep.telemetry for r, (rep, _) in present.items() if r != min(present)}
        for res in frame.results:
            res.merge_ranks({r: rep.result(res.workload) for r, (rep, _) in present.items()}, ranks)
        statuses = {r.status for r in ranks}
        frame.status = "failed" if "failed" in statuses else "interrupted" if "interrupted" in statuses else "ok"
        return frame


def variant_label(variant: dict) -> str | None:
    """`qps=4` for {"qps": [4.0]}: how phases name the result they belong to."""
    if not variant:
        return None
    parts = []
    for k, v in variant.items():
        v = v if isinstance(v, list | tuple) else [v]
        parts.append(f"{k}=" + ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v))
    return " ".join(parts)


def is_finite_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def interval(value, ci_low=None, ci_high=None, level=None, method=None, ranks=None) -> Interval:
    return Interval(value, ci_low, ci_high, level, method, ranks)

