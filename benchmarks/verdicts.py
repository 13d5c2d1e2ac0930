"""How often does `bench compare` give a verdict it should not, and how often does it see a real one?

    python benchmarks/verdicts.py --dir /tmp/verdicts                 # generate, then evaluate
    python benchmarks/verdicts.py --dir /tmp/verdicts --evaluate      # evaluate runs already made

A/A: the same command twice (`bench run --device cpu --preset tiny --workload blender-finetune
--repeats 3`): any faster/slower verdict is false, and so is a failed `--fail-on samples_per_s:5%`
gate. A/B: the second run slowed down by a known 10-20 % with busy compute inside the timed region
(`--handicap`, recorded in its config; compare flags it), its workload identity unchanged: a
`slower` verdict is a detection. Runs are generated in rounds (A, A', and every other round a
handicapped B), so slow drifts of a shared machine fall on both sides alike; generation resumes
where it stopped. It reports each rate with its 95 % Clopper-Pearson interval. A benchmark, not a
CI test: a run takes about 12 s on a 2-vCPU machine, so 200 A/A and 50 A/B pairs take about 90 minutes.
"""

from __future__ import annotations

import json
import math
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

COMMAND = ["run", "--device", "cpu", "--preset", "tiny", "--workload", "blender-finetune", "--repeats", "3", "--quiet"]
HANDICAPS = (12.5, 22.0)  # percent of step time added: about 11 % and 18 % lower throughput


def bench(args: list[str]) -> subprocess.CompletedProcess:
    from bench.core.proc import python_argv

    return subprocess.run(python_argv("-m", "bench", *args), capture_output=True, text=True, cwd=ROOT)


def generate(out: Path, aa: int, ab: int) -> None:
    """Rounds of A, A' (and every other round a handicapped B), appended to out/index.jsonl."""
    index = out / "index.jsonl"
    done = {(e["round"], e["role"]) for e in map(json.loads, index.read_text().splitlines())} if index.exists() else set()
    started = time.monotonic()
    for k in range(aa):
        roles = [("A", 0.0), ("A2", 0.0)] + ([("B", HANDICAPS[(k // 2) % 2])] if k % 2 == 0 and k // 2 < ab else [])
        for role, handicap in roles:
            if (k, role) in done:
                continue
            run_dir = out / f"{k:04d}-{role}"
            extra = ["--handicap", str(handicap)] if handicap else []
            done_run = bench([*COMMAND, *extra, "--out", str(run_dir), "--label", f"{k}-{role}"])
            paths = sorted(run_dir.glob("*.json"))
            entry = {"round": k, "role": role, "handicap": handicap, "exit": done_run.returncode,
                     "path": str(paths[-1]) if paths else None, "at": time.time()}
            with index.open("a") as fh:
                fh.write(json.dumps(entry) + "\n")
        if k % 10 == 0:
            print(f"round {k}/{aa}: {time.monotonic() - started:.0f} s", flush=True)


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


def _verdict(path_a: str, path_b: str) -> tuple[str, str, str | None]:
    """(verdict code, gate outcome, why no verdict) of `bench compare A B --fail-on samples_per_s:5%`."""
    from bench.analysis.compare import compare
    from bench.analysis.options import parse_gate
    from bench.model.io import load_report

    comp = compare([(path_a, load_report(path_a)), (path_b, load_report(path_b))],
                   gates=(parse_gate("samples_per_s:5%"),))
    row = comp.workloads[0].rows[1]
    reason = row.speedup.reason.code if row.speedup and row.speedup.reason else None
    return row.verdict, comp.gates[0].outcome if comp.gates else "pass", reason


def evaluate(out: Path) -> dict:
    entries = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines() if line.strip()]
    by = {(e["round"], e["role"]): e for e in entries if e["exit"] == 0 and e["path"]}
    rounds = sorted({k for k, _ in by})
    aa = [(by[(k, "A")], by[(k, "A2")]) for k in rounds if (k, "A") in by and (k, "A2") in by]
    ab = [(by[(k, "A2")], by[(k, "B")]) for k in rounds if (k, "A2") in by and (k, "B") in by]
    results = {"aa": [_verdict(a["path"], b["path"]) for a, b in aa],
               "ab": [(_verdict(a["path"], b["path"]), b["handicap"]) for a, b in ab]}
    n = len(results["aa"])
    false_verdicts = sum(1 for code, _, _ in results["aa"] if code in ("faster", "slower"))
    gate_fails = sum(1 for _, gate, _ in results["aa"] if gate == "fail")
    kinds = {}
    for code, _, _ in results["aa"]:
        kinds[code] = kinds.get(code, 0) + 1
    print(f"A/A pairs: {n} (the same command twice)")
    for label, k in (("faster/slower verdicts", false_verdicts), ("failed 5 % gates", gate_fails)):
        lo, hi = clopper_pearson(k, n) if n else (0, 1)
        print(f"  {label}: {k}/{n} = {k / max(n, 1):.1%} (95 % CI {lo:.1%}-{hi:.1%}; goal: upper bound <= 5 %)")
    print("  verdicts:", ", ".join(f"{c} {v}" for c, v in sorted(kinds.items())))
    print("  why no verdict:", ", ".join(f"{c} {v}" for c, v in sorted(_reasons(results["aa"]).items())))
    gates_seen = {}
    for _, gate, _ in results["aa"]:
        gates_seen[gate] = gates_seen.get(gate, 0) + 1
    print("  gate outcomes:", ", ".join(f"{g} {v}" for g, v in sorted(gates_seen.items())))
    for handicap in sorted({h for _, h in results["ab"]}):
        pairs = [v for v, h in results["ab"] if h == handicap]
        found = sum(1 for code, _, _ in pairs if code == "slower")
        wrong = sum(1 for code, _, _ in pairs if code == "faster")
        lo, hi = clopper_pearson(found, len(pairs))
        print(f"A/B pairs, --handicap {handicap:g} %: {len(pairs)}; detected as slower {found} = "
              f"{found / len(pairs):.1%} (95 % CI {lo:.1%}-{hi:.1%}); called faster {wrong}")
        codes = {}
        for code, _, _ in pairs:
            codes[code] = codes.get(code, 0) + 1
        print("  verdicts:", ", ".join(f"{c} {v}" for c, v in sorted(codes.items())))
        print("  why no verdict:", ", ".join(f"{c} {v}" for c, v in sorted(_reasons(pairs).items())))
    return results


def _reasons(pairs) -> dict:
    """The inconclusive pairs by reason: a contended run, the machine's own speed moved, or an
    interval that does not clear the band."""
    out = {}
    names = {"host_changed": "machine changed", "contended": "contended", "interrupted": "interrupted"}
    for code, _, reason in pairs:
        if code == "inconclusive":
            why = names.get(reason, "interval within reach of 1")
            out[why] = out.get(why, 0) + 1
    return out


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
