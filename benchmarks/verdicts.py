"""How often does `bench compare` give a verdict it should not, and how often does it see a real one,
with a fixed 3 repeats and with `--target-ci 3%`, on a quiet machine and on a shared one?

    python benchmarks/verdicts.py --dir /tmp/verdicts --aa 20 --ab 20   # generate, then evaluate
    python benchmarks/verdicts.py --dir /tmp/verdicts --evaluate        # evaluate runs already made

Each run is `bench run --device cpu --preset tiny --workload blender-finetune --steps 10 --warmup 5`
with its mode's repeats: `fixed` (`--repeats 3`) or `target` (`--target-ci 3% --max-repeats 6`,
which adds repeats until the interval is narrow enough and redoes disturbed ones). Each runs on the
machine as it is (`quiet`: nothing of ours beside it) and `shared`: beside a process spinning on
CPU 1 (a pure-Python loop pinned there), started before and stopped after that part of the round.

A/A: the same command twice: any faster/slower verdict is false, and so is a failed `--fail-on
samples_per_s:5%` gate; a conclusive `same` is what a precise method should reach. A/B: the second
run slowed down by 12.5 % of busy compute inside the timed region (`--handicap`, about 11 % lower
throughput; recorded in its config, flagged by compare), its workload identity unchanged: a `slower`
verdict is a detection. Runs are generated in rounds (in each, every machine state and mode: A, A'
and a handicapped B), so slow drifts of a shared machine fall on every cell alike; generation resumes
where it stopped. Rates come with their 95 % Clopper-Pearson intervals; device time is the repeats'
wall time (`Result.stopping.seconds`, workers' start-up included) of both runs of a pair.
A benchmark, not a CI test: a fixed run takes ~30 s on a loaded 2-vCPU machine, a target run ~1-2 min.
"""

from __future__ import annotations

import contextlib
import json
import math
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._scriptkit import parse, run  # noqa: E402 - bench is found through ROOT
from bench.core.errors import ConfigError  # noqa: E402
from bench.core.options import Options, opt  # noqa: E402

COMMAND = ["run", "--device", "cpu", "--preset", "tiny", "--workload", "blender-finetune", "--steps", "10",
           "--warmup", "5", "--quiet"]
MODES = {"fixed": ["--repeats", "3"], "target": ["--target-ci", "3%", "--max-repeats", "6"]}
MACHINES = ("quiet", "shared")
HANDICAP = 12.5  # percent of step time added: about 11 % lower throughput
SPIN = "import os\nos.sched_setaffinity(0, {1})\nwhile True:\n    pass"  # one busy core beside the run


def bench(args: list[str]) -> subprocess.CompletedProcess:
    from bench.core.proc import python_argv

    return subprocess.run(python_argv("-m", "bench", *args), capture_output=True, text=True, cwd=ROOT)


@contextlib.contextmanager
def machine(state: str):
    """`shared`: a process spinning on CPU 1 for as long as the block runs, always stopped after."""
    if state != "shared":
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    print(f"spinning on CPU 1: pid {spinner.pid}", flush=True)
    try:
        time.sleep(1.0)  # let it take its core before the first repeat chooses threads
        yield
    finally:
        spinner.kill()
        spinner.wait()


def one_run(out: Path, k: int, state: str, mode: str, role: str) -> dict:
    run_dir = out / f"{k:04d}-{state}-{mode}-{role}"
    extra = ["--handicap", str(HANDICAP)] if role == "B" else []
    started = time.monotonic()
    done = bench([*COMMAND, *MODES[mode], *extra, "--out", str(run_dir), "--label", f"{k}-{state}-{mode}-{role}"])
    paths = sorted(run_dir.glob("*.json"))
    return {"round": k, "machine": state, "mode": mode, "role": role, "handicap": HANDICAP if role == "B" else 0.0,
            "exit": done.returncode, "path": str(paths[-1]) if paths else None, "wall_s": time.monotonic() - started,
            "at": time.time()}


def generate(out: Path, aa: int, ab: int) -> None:
    """Rounds of, for each machine state and mode, A, A' (and in the first `ab` rounds a handicapped
    B), appended to out/index.jsonl."""
    index = out / "index.jsonl"
    done = {(e["round"], e["machine"], e["mode"], e["role"]) for e in map(json.loads, index.read_text().splitlines())} \
        if index.exists() else set()
    started = time.monotonic()
    for k in range(aa):
        for state in MACHINES:
            todo = [(mode, role) for mode in MODES for role in ("A", "A2", "B")[: 3 if k < ab else 2]
                    if (k, state, mode, role) not in done]
            if not todo:
                continue
            with machine(state):
                for mode, role in todo:
                    entry = one_run(out, k, state, mode, role)
                    with index.open("a") as fh:
                        fh.write(json.dumps(entry) + "\n")
        print(f"round {k + 1}/{aa}: {time.monotonic() - started:.0f} s", flush=True)


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for k successes of n (bisection on the binomial tail)."""
    def tail_ge(p):  # P(X >= k)
        return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))

    def tail_le(p):  # P(X <= k)
        return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(0, k + 1))

    def solve(f, target, increasing):
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if (f(mid) < target) == increasing:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    alpha = 1 - level
    lower = 0.0 if k == 0 else solve(tail_ge, alpha / 2, True)
    upper = 1.0 if k == n else solve(tail_le, alpha / 2, False)
    return lower, upper


def _verdict(path_a: str, path_b: str) -> dict:
    """`bench compare A B --fail-on samples_per_s:5%` of one pair: the verdict, the gate's outcome,
    why there is no verdict, the device time of both runs and the repeats they set aside."""
    from bench.analysis.compare import compare
    from bench.analysis.options import parse_gate
    from bench.model.io import load_report

    reports = [load_report(path_a), load_report(path_b)]
    comp = compare([(path_a, reports[0]), (path_b, reports[1])], gates=(parse_gate("samples_per_s:5%"),))
    row = comp.workloads[0].rows[1]
    stops = [r.results[0].stopping for r in reports]
    return {"verdict": row.verdict, "gate": comp.gates[0].outcome if comp.gates else "pass",
            "reason": row.speedup.reason.code if row.speedup and row.speedup.reason else None,
            "seconds": sum(s.seconds or 0.0 for s in stops if s is not None),
            "repeats": sum(s.ran for s in stops if s is not None),
            "set_aside": sum(s.set_aside for s in stops if s is not None)}


def _rate(label: str, k: int, n: int, goal: str) -> str:
    lo, hi = clopper_pearson(k, n) if n else (0.0, 1.0)
    return f"  {label}: {k}/{n} = {k / max(n, 1):.1%} (95 % CI {lo:.1%}-{hi:.1%}){goal}"


def _counts(values) -> str:
    seen: dict = {}
    for v in values:
        seen[v] = seen.get(v, 0) + 1
    return ", ".join(f"{c} {n}" for c, n in sorted(seen.items(), key=str)) or "none"


def _cost(pairs: list[dict]) -> str:
    """Median device time of a pair, and the device time per conclusive verdict (all pairs' time over
    the pairs that reached one)."""
    if not pairs:
        return "  device time: no pairs"
    total = sum(p["seconds"] for p in pairs)
    conclusive = sum(1 for p in pairs if p["verdict"] in ("faster", "slower", "same"))
    per = f"{total / conclusive:.0f} s" if conclusive else "no verdict reached"
    return (f"  device time: median {statistics.median(p['seconds'] for p in pairs):.0f} s a pair "
            f"(median {statistics.median(p['repeats'] for p in pairs):g} repeats, {sum(p['set_aside'] for p in pairs)} "
            f"set aside in all); per conclusive verdict {per}")


def _pairs(entries: list[dict], first: str, second: str) -> list[dict]:
    """The compared pairs of one cell: second vs first of each round where both runs succeeded."""
    by = {(e["round"], e["role"]): e["path"] for e in entries if e["exit"] == 0 and e["path"]}
    rounds = sorted({k for k, _ in by})
    return [_verdict(by[(k, first)], by[(k, second)]) for k in rounds if (k, first) in by and (k, second) in by]


def evaluate_cell(entries: list[dict], title: str) -> dict:
    aa, ab = _pairs(entries, "A", "A2"), _pairs(entries, "A2", "B")
    n, m = len(aa), len(ab)
    print(f"{title}: A/A pairs {n}, A/B pairs {m} (--handicap {HANDICAP:g} %)")
    print(_rate("A/A faster/slower verdicts", sum(p["verdict"] in ("faster", "slower") for p in aa), n,
                "; goal: upper bound <= 5 %"))
    print(_rate("A/A failed 5 % gates", sum(p["gate"] == "fail" for p in aa), n, "; goal: upper bound <= 5 %"))
    print(_rate("A/A conclusive same", sum(p["verdict"] == "same" for p in aa), n, ""))
    print("  A/A verdicts:", _counts(p["verdict"] for p in aa), "· why none:", _counts(_reasons(aa)))
    print(_rate("A/B detected as slower", sum(p["verdict"] == "slower" for p in ab), m, "; goal: >= 80 %"))
    print("  A/B verdicts:", _counts(p["verdict"] for p in ab), "· why none:", _counts(_reasons(ab)))
    print(_cost(aa + ab))
    return {"aa": aa, "ab": ab}


def evaluate(out: Path) -> dict:
    entries = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines() if line.strip()]
    return {(state, mode): evaluate_cell([e for e in entries if (e.get("machine"), e.get("mode")) == (state, mode)],
                                         f"{state} machine, {mode} ({' '.join(MODES[mode])})")
            for state in MACHINES for mode in MODES}


def _reasons(pairs: list[dict]) -> list[str]:
    """The inconclusive pairs by reason: a contended run, the machine's own speed moved, or an
    interval that does not clear the band."""
    names = {"host_changed": "machine changed", "contended": "contended", "interrupted": "interrupted"}
    return [names.get(p["reason"], "interval within reach of 1") for p in pairs if p["verdict"] == "inconclusive"]


@dataclass(frozen=True)
class VerdictOptions(Options):
    """Declared and checked as bench's own (benchmarks/_scriptkit.py): a count that is no count is refused."""

    title = "verdicts"

    dir: str = opt(None, "the runs and their index (made if missing; generation resumes there)", metavar="DIR")
    aa: int = opt(200, "A/A pairs", minimum=0, maximum=100_000)
    ab: int = opt(100, "A/B pairs", minimum=0, maximum=100_000)
    evaluate: bool = opt(False, "only evaluate the runs already in --dir")
    generate_only: bool = opt(False, "only make the runs")

    def check(self) -> None:
        if self.dir is None:
            raise ConfigError("--dir: required (where the runs are kept)")
        if self.evaluate and self.generate_only:
            raise ConfigError("--evaluate and --generate-only: give one (together they would do nothing)")


def main(argv=None) -> int:
    return run(lambda: verdicts(parse(VerdictOptions, argv, __doc__)))


def verdicts(o: VerdictOptions) -> int:
    out = Path(o.dir)
    out.mkdir(parents=True, exist_ok=True)
    if not o.evaluate:
        generate(out, o.aa, o.ab)
    if not o.generate_only:
        evaluate(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
