"""What `bench serve` answers when many connections come at once: --streams concurrent streaming
requests, and /health and one completion sent while --idle idle connections are held; with the
server's defaults and with `--max-waiting 16 --max-batch 4`.

    python benchmarks/server_limits.py
    PYTHONPATH=/path/to/another/checkout python benchmarks/server_limits.py   # that checkout's server

Each configuration is a `bench serve --preset tiny --device cpu` of its own, the bench that Python
imports (so that an older checkout is measured the same way), stopped with SIGTERM after. Streams:
the answers by status; a 200 is complete when its stream ends with [DONE] and holds no error (an
answer: when it is JSON without an error); a
refusal is OpenAI-shaped when its body is {"error": {"message": ..., "type": ...}}. Idle: each idle
connection sends nothing; /health and the completion go on fresh connections while they are held.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass

from _scriptkit import parse, run  # beside this script

from bench.core.options import Options, opt

CONFIGS = {"defaults": (), "--max-waiting 16 --max-batch 4": ("--max-waiting", "16", "--max-batch", "4")}
HANG_S = 600


@dataclass(frozen=True)
class LimitOptions(Options):
    title = "server limits"

    streams: int = opt(200, "concurrent streaming requests", minimum=1, maximum=5000)
    idle: int = opt(500, "idle connections held while /health and a completion are sent", minimum=0, maximum=5000)
    max_tokens: int = opt(16, "tokens each streaming request asks for (exactly: min_tokens too)", minimum=1,
                          maximum=512)


def start(extra) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "bench", "serve", "--device", "cpu", "--preset", "tiny", "--port", "0",
                             "--threads", "1", *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if "listening on " in line:
            return proc, line.split("listening on ")[1].split()[0]
    proc.wait(HANG_S)
    raise RuntimeError(f"bench serve {' '.join(extra)} exited ({proc.returncode}) before it listened")


def kind(status: int, text: str) -> str:
    """complete / cut (a 200 that did not end well) / shaped / plain (a refusal's body)."""
    if status == 200 and text.startswith("data: "):
        return "complete" if text.rstrip().endswith("data: [DONE]") and '"error"' not in text else "cut"
    if status == 200:
        try:
            whole = json.loads(text)
        except ValueError:
            return "cut"
        return "complete" if isinstance(whole, dict) and "error" not in whole else "cut"
    try:
        error = json.loads(text)["error"]
        return "shaped" if isinstance(error, dict) and {"message", "type"} <= set(error) else "plain"
    except (ValueError, TypeError, KeyError):
        return "plain"


async def answer(session, method: str, url: str, body=None) -> tuple[str, str]:
    import aiohttp

    try:
        async with session.request(method, url, json=body) as r:
            return str(r.status), kind(r.status, await r.text())
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return "no answer", type(exc).__name__


async def streams(url: str, o: LimitOptions) -> Counter:
    import aiohttp

    body = {"model": "tiny", "prompt": [5, 6, 7], "max_tokens": o.max_tokens, "min_tokens": o.max_tokens,
            "stream": True}
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=HANG_S)) as s:
        got = await asyncio.gather(*(answer(s, "POST", url + "/v1/completions", body) for _ in range(o.streams)))
    return Counter(got)


async def under_idle(url: str, o: LimitOptions) -> dict:
    import aiohttp

    host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
    idle = [await asyncio.open_connection(host, int(port)) for _ in range(o.idle)]
    try:
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=HANG_S)) as s:
            health = await answer(s, "GET", url + "/health")
            done = await answer(s, "POST", url + "/v1/completions", {"model": "tiny", "prompt": [5, 6], "max_tokens": 4})
    finally:
        for _, writer in idle:
            writer.close()
    return {"health": health, "completion": done}


def measure(o: LimitOptions) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = o.streams + o.idle + 64
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, need), hard))
    for name, extra in CONFIGS.items():
        proc, url = start(extra)
        try:
            print(f"{name}:")
            counts = asyncio.run(streams(url, o))
            print(f"  {o.streams} concurrent streams: " + ", ".join(f"{n} {status} {what}" for (status, what), n
                                                                    in sorted(counts.items())))
            idle = asyncio.run(under_idle(url, o))
            print(f"  under {o.idle} idle connections: /health {' '.join(idle['health'])}, "
                  f"a completion {' '.join(idle['completion'])}")
        finally:
            proc.terminate()
            proc.wait(HANG_S)
    return 0


def main(argv=None) -> int:
    return run(lambda: measure(parse(LimitOptions, argv, __doc__)))


if __name__ == "__main__":
    sys.exit(main())
