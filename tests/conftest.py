import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

# A suite started in the background by a script (`cmd &` in sh, nohup) inherits SIGINT and SIGQUIT (and
# under nohup SIGHUP) ignored, and every bench it starts would too: bench rightly leaves an ignored signal
# alone, so the signal tests would test nothing. The suite starts from the dispositions a terminal gives.
for _sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
    if signal.getsignal(_sig) is signal.SIG_IGN:
        signal.signal(_sig, signal.default_int_handler if _sig == signal.SIGINT else signal.SIG_DFL)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HANG_GUARD_S = 900  # a wait that takes longer has hung: a guard that stops a hung test, never a speed limit


def wait_until(predicate, what: str, poll_s: float = 0.01):
    """Wait for the event a test needs (predicate() true, its value returned), however slow the machine:
    the deadline is a hang guard only. Never sleep a guessed time and then count."""
    deadline = time.monotonic() + HANG_GUARD_S
    while not (got := predicate()):
        assert time.monotonic() < deadline, f"waited {HANG_GUARD_S} s and still not: {what}"
        time.sleep(poll_s)
    return got


def steps_measured(tmp) -> int:
    """How many steps the worker of a run whose TMPDIR is `tmp` has said it measured so far (its events,
    JSON lines in the run's folder there; a line still being written is skipped)."""
    done = 0
    for path in Path(tmp).glob("bench-run-*/*.events"):
        for line in path.read_text(errors="replace").splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("event") == "progress" and e.get("phase") == "measure":
                done = max(done, e.get("done") or 0)
    return done


def sampler_rows(sampler) -> list[dict]:
    """What a running sampler has written so far, in order (it flushes each line): its status lines
    ({"status": ...}, one after each collector it opened) and its sample rows."""
    rows = []
    with open(sampler.path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rows.append(json.loads(line))
            except ValueError:
                break  # a line still being written
    return rows


def sampled(sampler, n: int = 1, collector: str | None = None) -> list[dict] | None:
    """The sample rows once the sampler has written n of them (after it opened `collector`, when given,
    and then with its keys, when it is available); None before."""
    rows = sampler_rows(sampler)
    if collector is not None:
        opened = [i for i, r in enumerate(rows) if collector in r.get("status", {})]
        if not opened:
            return None
        status = rows[opened[0]]["status"][collector]
        prefixes = tuple(f"{s}." for s in status.get("sources", {})) if status["available"] else ()
        rows = [r for r in rows[opened[0]:] if "t" in r and (not prefixes or any(k.startswith(prefixes) for k in r))]
    samples = [r for r in rows if "t" in r]
    return samples if len(samples) >= n else None


def run_config(*args):
    """A checked RunConfig from command-line flags, through the generated parser (as `bench run`)."""
    from bench.cli import build_parser
    from bench.launch.config import build

    return build(build_parser().parse_args(["run", *map(str, args)]))


def common(preset="tiny", **given):
    from workloads.common import CommonOptions

    return CommonOptions.build(given, preset)


def measure(preset="tiny", **given):
    from bench.measure.options import MeasureOptions

    return MeasureOptions.build(given, preset)


def cpu_backend(**device):
    from bench.devices.cpu.backend import CpuBackend
    from bench.devices.options import DeviceOptions

    b = CpuBackend(DeviceOptions(device="cpu", **device))
    b.prepare()
    return b


@pytest.fixture
def cpu_cfg(tmp_path):
    return run_config("--device", "cpu", "--steps", 4, "--warmup", 1, "--sample-hz", 0, "--out", tmp_path)


@pytest.fixture
def no_accelerators(monkeypatch):
    """This machine as one without a GPU or Gaudi, whatever it really has: torch sees no CUDA device,
    habana_frameworks, pynvml and pyhlml are not importable, nvidia-smi and hl-smi are not on PATH.
    Tests that assert how bench behaves without an accelerator use it, so they pass on an
    accelerator box too."""
    import importlib.util
    import shutil

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    real_find_spec, real_which = importlib.util.find_spec, shutil.which
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name.split(".")[0] == "habana_frameworks"
                        else real_find_spec(name, *a, **k))
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name in ("nvidia-smi", "hl-smi")
                        else real_which(name, *a, **k))
    for name in ("pynvml", "pyhlml"):
        monkeypatch.setitem(sys.modules, name, None)  # `import pynvml` raises ImportError


def run_inline(*flags):
    """A real run through the launcher, in this process (--in-process), telemetry off: the Report."""
    from bench.launch.config import check_before_run
    from bench.launch.launcher import launch

    import tempfile

    cfg = check_before_run(run_config("--device", "cpu", "--in-process", "--sample-hz", 0, "--repeats", 1,
                                      "--steps", 3, "--warmup", 1, "--out", tempfile.mkdtemp(), *flags))
    return launch(cfg)


def cli_run(capsys, *args):
    """`bench ARGS` in this process: (exit code, stdout, stderr as one line). No traceback may reach the
    user, whatever the case: it is asserted here for every caller."""
    from bench import cli

    try:
        code = cli.cli([str(a) for a in args])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    c = capsys.readouterr()
    assert "Traceback" not in c.out + c.err, c.out + c.err
    return code, c.out, " ".join(c.err.split())  # rich wraps stderr at the console's width


def tiny_checkpoint(folder, **config):
    """A real local checkpoint (config.json and model.safetensors) of the tiny BlenderBot config, with
    `config` overriding its sizes: what `--model DIR` takes."""
    from transformers import BlenderbotSmallConfig, BlenderbotSmallForConditionalGeneration

    from workloads.models import TINY

    model = BlenderbotSmallForConditionalGeneration._from_config(BlenderbotSmallConfig(**{**TINY, **config}))
    model.save_pretrained(folder, safe_serialization=True)
    return folder
