"""Regenerate the screenshots in docs/ from real runs on this machine.

    PYTHONPATH=. python docs/make_screenshots.py            # ~5 minutes on a laptop CPU

Runs every workload (tiny preset, 3 repeats) twice on the CPU — two threads against one, a real
difference — then `bench compare --html` of the two, and has headless Chromium draw the page at
800 and 1400 px: docs/compare-800.png and docs/compare-1400.png. The run directory is kept
(--runs) so the pages can be looked at again.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, check=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=None, help="directory for the two reports (default: a new temporary one)")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="where the PNG files go (default: docs/)")
    parser.add_argument("--steps", default="10", help="measured steps per repeat (default: 10)")
    parser.add_argument("--reuse", action="store_true", help="redraw from the reports already in --runs")
    args = parser.parse_args(argv)
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        print("needs Chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    runs = Path(args.runs or tempfile.mkdtemp(prefix="bench-shots-"))
    for threads, label in (("2", "cpu, 2 threads"), ("1", "cpu, 1 thread")):
        if args.reuse and list((runs / threads).glob("*.json")):
            continue
        bench("run", "--device", "cpu", "--preset", "tiny", "--repeats", "3", "--steps", args.steps,
              "--threads", threads, "--label", label, "--out", str(runs / threads), "--quiet")  # the default warm-up
    page = runs / "compare.html"
    bench("compare", *map(str, sorted(runs.glob("*/*.json"))), "--html", str(page))
    for width in (800, 1400):
        shot = Path(args.out) / f"compare-{width}.png"
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={runs / 'profile'}", "--virtual-time-budget=8000",
                        f"--window-size={width},3200", f"--screenshot={shot}", page.as_uri()],
                       check=True, capture_output=True)
        print(f"wrote {shot}")
    print(f"reports and page in {runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
