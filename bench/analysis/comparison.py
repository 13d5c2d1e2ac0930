"""The comparison as one typed object: what `compare()` returns and every output formats.

Values are raw (seconds, bytes, fractions, USD), null where unknown. What a reader must be told is
a `Note`: a code and the values its wording needs; the words live in bench/render/words.py, one
place per code. Nothing here is a sentence.

    Comparison            the whole: studies' decisions, workloads, notes, gates, serving curves, scaling,
                          environment
      Decision            a study's answers per box (BoxRow) and a verdict per question across boxes
      WorkloadComparison  one workload (and variant): its columns, its baseline, a row per run
        Row               one run x workload: identity, lead figure, speedup, figures, cost, notes
    ServingCurve          one serving run's latency against offered load, and its capacity
    ScalingGroup          runs that differ only in world size, with the scaling efficiency
    GateOutcome           one --fail-on gate applied to one row
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, InstanceOf

from bench.model.report import Report

Verdict = Literal["baseline", "faster", "slower", "same", "inconclusive", "no_verdict", "not_comparable", "failed"]

# Why a speedup carries no verdict (Speedup.reason), and what a row or the comparison notes.
ReasonCode = Literal["interrupted", "contended", "requests_failed", "unsettled", "host_changed", "one_repeat", "few_repeats", "no_ratio",
                     "no_raw_times", "no_throughput", "no_values", "no_interval", "unclear"]
# What would give an inconclusive --fail-on gate a verdict (GateOutcome.hint).
HintCode = Literal["quieter", "rerun", "more_repeats", "narrower"]
NoteCode = Literal["duplicate", "same_run_id", "baseline_missing", "no_run", "handicap",  # the comparison's
                   "published", "not_comparable", "verdict", "failed", "output_mismatch", "warning",  # a row's
                   "priced", "unpriced", "price_unmatched", "served_by",
                   "arithmetic",  # same precision name, other arithmetic (bench/analysis/arithmetic.py)
                   "tail",  # a serving row's (and a curve's) SLO verdict
                   "old_lead",  # a serving report from when serving led with the engine-busy rate
                   "recomputed",  # a serving result's stored figures disagreed with its own request log
                   "settle", "set_aside",  # what would settle an unclear verdict; repeats redone
                   "scaling_threads", "superlinear"]  # a scaling series
Better = Literal["higher", "lower", "none"]
# Why the probes do not settle a capacity (bench/serve/maths/capacity.py _unsettled): a disturbed probe, a rate
# that met the SLOs above one that missed them, an SLO's p99 that fell as load rose beyond its noise.
UnsettledCode = Literal["disturbed", "verdicts", "latency"]
# What would settle a capacity: more requests for a valid verdict at a rate, a probe between the bracket's
# sides, a higher or a lower rate than any tried, a quieter machine.
SettleCode = Literal["more_requests", "between", "higher", "lower", "quieter"]


class Typed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class Note(Typed):
    """Something to tell the reader: a code, the run it is about (None: the whole comparison) and
    the values its wording needs."""

    code: NoteCode | ReasonCode | HintCode
    run: str | None = None
    values: dict[str, Any] = {}


class Column(Typed):
    """One figure a workload's table shows: its key in a row's values, a short name, the unit of
    the raw value ("" for counts and text), how it is shown, which way is better."""

    key: str
    label: str
    unit: str = ""
    kind: Literal["text", "number", "interval", "verdict", "util"] = "number"
    always: bool = False  # shown even where no run has a value
    better: Better = "none"


class Estimate(Typed):
    """A figure with its 95 % interval (ends null where there is none) and how it was computed."""

    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    method: str | None = None


class Speedup(Typed):
    """run / baseline for one throughput metric, the interval, and the verdict it supports."""

    metric: str
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    level: float
    method: Literal["welch", "within_run", "published"]
    repeats: tuple[int, int]  # (run, baseline)
    verdict: Literal["faster", "slower", "same", "inconclusive", "no_verdict"]
    reason: Note | None = None  # why inconclusive or no verdict (a ReasonCode)
    min_repeats: int
    min_effect: float

    @property
    def conclusive(self) -> bool:
        return self.verdict in ("faster", "slower", "same")


class Price(Typed):
    match: str  # a run's label or display name, or a device kind (hpu, cuda, cpu)
    usd_per_hour: float
    devices: int  # devices the instance holds
    source: str  # where the price came from


class Costing(Typed):
    prices: tuple[Price, ...] = ()
    kwh_usd: float | None = None


class Cost(Typed):
    """What one unit of a run's output costs: at its instance's price scaled to the devices it used
    (the interval carried from the throughput's), and its measured energy at the kWh price."""

    key: Literal["usd_per_1k_requests", "usd_per_1m_tokens", "usd_per_1k_samples"]
    price: Price | None = None
    devices_used: int = 1
    devices_basis: Literal["used", "held"] = "used"  # held: a published run charged for every device it held
    usd_per_hour_used: float | None = None
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    energy: float | None = None  # USD per unit of the device energy measured
    priced_energy: bool = False  # a kWh price was given


class RunInfo(Typed):
    """What identifies a run in every output."""

    name: str  # the label, else device and time; unique within the comparison
    path: str
    run_id: str
    label: str | None
    created_at: str
    status: str  # ok | interrupted | failed
    origin: str  # measured | published
    device: str
    backend: str | None
    host: str | None
    workload: str
    variant: str | None
    params: dict[str, Any]

    @property
    def published(self) -> bool:
        return self.origin == "published"


class Row(Typed):
    run: RunInfo
    verdict: Verdict
    baseline: bool = False
    comparable: bool = True  # the identity matches the baseline's (the baseline itself: True)
    forced: bool = False  # compared with --force although the identity differs
    differences: list[str] = []  # identity fields that differ from the baseline's
    speedup: Speedup | None = None
    lead: Estimate  # the figure the workload leads with
    figures: dict[str, float | int | bool | str | None]  # every other figure's raw value by its column key
    repeats: int | None  # counted repeats (set-aside ones left out)
    set_aside: int = 0  # repeats set aside as disturbed and redone (Repeat.set_aside)
    warnings: list[str]  # codes, output_mismatch included
    mismatch: str | None = None  # why the outputs disagree with the baseline's beyond the tolerance
    cost: Cost | None = None
    notes: list[Note] = []
    served: Served | None = None  # serving rows: which engine served


class WorkloadComparison(Typed):
    workload: str
    variant: str | None  # serving: the offered rate these runs share (`qps=4`)
    main_metric: str
    baseline: RunInfo
    columns: list[Column]
    rows: list[Row]

    @property
    def title(self) -> str:
        return f"{self.workload} {self.variant}" if self.variant else self.workload

    @property
    def lead(self) -> Column:
        return next(c for c in self.columns if c.key == self.main_metric)


class Served(Typed):
    """Which engine served a serving run (the report's `served_by`)."""

    engine: str  # in-process | http
    server: str | None = None  # bench serve, or what the endpoint says it is
    endpoint: str | None = None
    api: str | None = None
    local: bool | None = None
    started_by_run: bool = False
    static_shapes: bool | None = None  # padded to buckets: how a static-shape device serves, not identity
    telemetry: str | None = None  # why the server's hardware was not sampled


class CurvePoint(Typed):
    qps: float
    achieved_qps: float | None = None
    ttft_p50_s: float | None = None
    ttft_p99_s: float | None = None
    itl_p99_s: float | None = None
    tpot_p99_s: float | None = None
    e2e_p99_s: float | None = None
    slo_met: bool | None = None
    slo_valid: bool | None = None  # the verdict holds at 99 % confidence (LoadGen's early stopping)
    slo_attainment: float | None = None
    requests: int | None = None
    errors: int | None = None
    more: int | None = None  # requests a provisional verdict still needs, were none more over (LoadGen)
    missed: list[str] = []  # the SLOs (ttft, tpot, e2e) whose p99 missed its bound at this rate
    provisional: list[str] = []  # the SLOs whose verdict at this rate its requests cannot support


class Unsettled(Typed):
    """Why a capacity's probes do not settle it: a code and the values its wording needs."""

    code: UnsettledCode
    values: dict[str, Any] = {}


class Settle(Typed):
    """One thing that would settle a capacity: a code and the values its wording needs."""

    code: SettleCode
    values: dict[str, Any] = {}


class Capacity(Typed):
    """The highest offered rate that met the SLO and the lowest higher one that did not, each side
    with whether its verdict held at 99 % confidence (False: provisional; None: not known)."""

    code: Literal["bracket", "at_least", "below", "no_slo"]
    qps: float | None = None
    below_qps: float | None = None
    qps_valid: bool | None = None
    below_valid: bool | None = None
    unsettled: Unsettled | None = None  # why the probes do not settle it, where they do not
    settle: list[Settle] = []  # what would settle it


class CapacityCost(Typed):
    """USD per 1k requests at capacity: at `qps` (usd) and at the rate that missed (usd_low)."""

    usd: float
    usd_low: float | None
    price_source: str


class ServingCurve(Typed):
    workload: str
    run: str
    run_id: str
    device: str
    served: Served | None = None
    slo_ttft_s: float | None
    slo_e2e_s: float | None
    points: list[CurvePoint]
    slo_tpot_s: float | None = None
    capacity: Capacity
    cost: CapacityCost | None = None
    notes: list[Note] = []  # what to know about the curve (a point's values name its rate)


# ---- a study's decision (bench/analysis/decision.py) -------------------------------------------
Why = Literal["not_run", "failed", "no_result", "no_price", "no_epoch", "no_slo", "no_capacity", "not_measured",
              "no_requests", "not_recorded", "unsettled"]


class Figure(Typed):
    """A value with its interval (or a bracket's other end), or null with why."""

    value: float | None = None
    low: float | None = None
    high: float | None = None
    why: Why | None = None
    detail: str | None = None  # the report's own reason, where it gave one (energy)


class Energy(Typed):
    session_j: Figure = Figure(why="not_measured")
    busy_j: Figure = Figure(why="not_measured")


class BoxRow(Typed):
    box: str
    study: str
    study_id: str
    device: str
    finetune: Figure
    finetune_run: str | None = None  # the compare run name of its result (for the speedup)
    capacity: Capacity | None = None
    capacity_why: Why | None = None
    capacity_params: dict[str, Any] = {}  # the identity of the capacity's runs (bench/serve/maths/identity.py)
    slo_ttft_s: float | None = None
    slo_tpot_s: float | None = None
    slo_e2e_s: float | None = None
    usd_per_1m_requests: Figure = Figure(why="no_capacity")
    usd_per_epoch: Figure = Figure(why="no_result")
    epoch_samples: int | None = None
    energy: Energy = Energy()
    warnings: dict[str, int] = {}  # code -> results of the box carrying it
    cut: list[str] = []  # the runs of its study that wrote no report (the budget left them out)


class QuestionVerdict(Typed):
    question: Literal["finetune", "capacity"]
    box: str
    baseline: str
    ratio: float | None = None
    low: float | None = None
    high: float | None = None
    verdict: Literal["more", "less", "same", "overlap", "no_verdict", "not_comparable"]
    method: Literal["welch", "within_run", "published", "bracket"] | None = None
    speedup: Speedup | None = None  # fine-tune: the speedup the verdict is
    provisional: bool = False  # capacity: a bracket end rests on a provisional verdict
    reason: Note | None = None


class Decision(Typed):
    study: str
    question: str | None = None
    boxes: list[BoxRow]
    verdicts: list[QuestionVerdict] = []


class ScalingPoint(Typed):
    world_size: int
    value: float | None
    ci_low: float | None
    ci_high: float | None
    efficiency: float | None  # throughput at N / (N / N0 x throughput at the smallest N0)
    run: str
    threads: int | None = None  # CPU threads per rank (None: unknown, or not the same in every repeat)


class ScalingGroup(Typed):
    workload: str
    metric: str
    unit: str = ""  # of the workload's lead figure (`samples/s`, `contexts/s`)
    points: list[ScalingPoint]
    notes: list[Note] = []  # threads per rank that differ; an efficiency above 100 % nothing explains


class Gate(Typed):
    """--fail-on METRIC:PCT: a run conclusively worse than the baseline by more than `limit` fails:
    a throughput (or a figure that is better higher) below 1 - limit of the baseline's, a figure that
    is better lower (a latency) above 1 + limit of it."""

    metric: str  # a throughput (samples_per_s) or a declared figure's key (ttft_s.p99)
    limit: float  # a fraction


class GateOutcome(Typed):
    gate: Gate
    workload: str
    run: str
    baseline: str
    outcome: Literal["pass", "fail", "inconclusive"]
    speedup: Speedup  # run / baseline of the gated figure, from its repeats
    better: Better = "higher"
    figure: str | None = None  # the declared figure's key in the report (None: a throughput)
    hint: Note | None = None  # inconclusive: what would give it a verdict (a HintCode)


class EnvironmentDiff(Typed):
    """The environment keys whose values differ between the reports: one value per file."""

    files: list[str]
    rows: list[tuple[str, list[Any]]]


class Source(Typed):
    """A report compared, as read from its file (the HTML page draws its telemetry)."""

    path: str
    report: InstanceOf[Report] = Field(exclude=True)  # an instance, never copied, revalidated or dumped


class Comparison(Typed):
    workloads: list[WorkloadComparison]
    notes: list[Note] = []  # files dropped as duplicates, missing baselines, handicapped runs
    min_repeats: int = 3
    min_effect: float = 0.02
    gates: list[GateOutcome] = []
    serving: list[ServingCurve] = []
    scaling: list[ScalingGroup] = []
    environment: EnvironmentDiff | None = None
    sources: list[Source] = []
    decisions: list[Decision] = []  # studies' answers, per box, with a verdict per question across boxes

    def __iter__(self):
        return iter(self.workloads)

    def __len__(self):
        return len(self.workloads)
