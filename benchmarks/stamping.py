"""How far the load generator's chunk stamps are from when a server wrote each chunk.

A fake OpenAI server in a process of its own writes each streamed completion's chunks at known times (its
request's receipt + k / --chunk-rate, or as fast as it can: `--chunk-rate 0`, the machine's limit) and
notes the clock just before each write. bench's HTTP client (bench/serve/http.py) loads it as a session
does: requests arrive as a seeded Poisson process at --qps, each asking for --chunks tokens, one per chunk.
A chunk's stamping error is the client's stamp less the server's write time (both CLOCK_MONOTONIC, which
time.perf_counter reads on Linux, the same in both processes); the script prints its p50, p99 and max, the
chunks per second the server achieved, the share of gaps between a reply's stamps under 0.1 ms
(`near_zero_gaps`: two chunks stamped as if one) and exactly 0 (`zero_gaps`: one stamp shared), and the
share of the server's own write gaps under 0.1 ms (`written_near_zero_gaps`: what the server bunched,
which no client can tell apart).

    python benchmarks/stamping.py [--qps 10] [--chunks 100] [--chunk-rate 100] [--requests 40]

The script uses only what every version of the client has (HttpClient, run_session, ServingPlan), so it
measures the code of the tree it sits in: run a copy of it in an older tree for the figures before.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._scriptkit import parse, run
from bench.core.options import Options, opt

NEAR_ZERO_S = 1e-4
HANG_S = 600.0


@dataclass(frozen=True)
class StampingOptions(Options):
    qps: float = opt(10.0, "requests per second (Poisson)", exclusive_minimum=0, maximum=10_000)
    requests: int = opt(40, "requests", minimum=1, maximum=100_000)
    chunks: int = opt(100, "chunks (tokens) per reply", minimum=2, maximum=100_000)
    chunk_rate: float = opt(100.0, "chunks per second of each reply (0: as fast as the server writes)", minimum=0,
                            maximum=1e6)
    seed: int = opt(0, "arrivals' seed", minimum=0, maximum=2**31)
    serve: bool = opt(False, "(internal) be the fake server: print its port, serve until stdin closes")


# -- the fake server (a process of its own) ----------------------------------------------------------------
def serve(chunk_rate: float) -> None:
    from aiohttp import web

    written: dict[str, list[float]] = {}

    async def completions(request):
        body = await request.json()
        key, n, t0 = str(body["prompt"][0]), int(body["max_tokens"]), time.perf_counter()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        times = written[key] = []
        for k in range(n):
            if chunk_rate:
                await asyncio.sleep(max(0.0, t0 + (k + 1) / chunk_rate - time.perf_counter()))
            chunk = {"id": key, "choices": [{"index": 0, "text": f" w{k}", "token_ids": [10 + k % 100],
                                             "finish_reason": "length" if k == n - 1 else None}]}
            times.append(time.perf_counter())
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def times(_):
        return web.json_response(written)

    async def main():
        app = web.Application()
        app.router.add_post("/v1/completions", completions)
        app.router.add_get("/times", times)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes it
        await runner.cleanup()

    asyncio.run(main())


# -- the client: bench's, as a session drives it ---------------------------------------------------------------
def measure(o: StampingOptions) -> dict:
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--chunk-rate", str(o.chunk_rate)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        traces = _session(url, o)
        written = _get_json(url + "/times")
    finally:
        server.stdin.close()
        server.wait(HANG_S)
    return _figures(traces, written)


def _session(url: str, o: StampingOptions):
    from bench.serve.arrivals import poisson_arrivals
    from bench.serve.http import Endpoint, HttpClient
    from bench.serve.plan import ServingPlan
    from bench.serve.session import run_session

    plan = ServingPlan(tuple(poisson_arrivals(o.qps, o.requests, o.seed)), tuple((i + 4,) for i in range(o.requests)),
                       (o.chunks,) * o.requests)
    client = HttpClient(Endpoint(url, "completions", "fake", timeout_s=HANG_S), time.perf_counter)
    try:
        return run_session(plan, client, time.perf_counter)
    finally:
        client.close()


def _get_json(url: str):
    import urllib.request

    with urllib.request.urlopen(url, timeout=HANG_S) as r:  # a loopback server this script started
        return json.loads(r.read())


def _figures(traces, written: dict) -> dict:
    errors, gaps, wgaps, failed = [], [], [], 0
    for i, t in enumerate(traces):
        w = written.get(str(i + 4), [])
        if t.error is not None or len(t.token_s) != len(w):
            failed += 1
            continue
        errors += [s - x for s, x in zip(t.token_s, w, strict=True)]
        gaps += [b - a for a, b in zip(t.token_s, t.token_s[1:], strict=False)]
        wgaps += [b - a for a, b in zip(w, w[1:], strict=False)]
    every = sorted(x for ws in written.values() for x in ws)
    rate = (len(every) - 1) / (every[-1] - every[0]) if len(every) > 1 and every[-1] > every[0] else None
    errors.sort()
    return {"chunks": len(errors), "failed_requests": failed, "chunks_per_s": rate,
            "p50_ms": _ms(errors, 0.5), "p99_ms": _ms(errors, 0.99), "max_ms": errors[-1] * 1e3 if errors else None,
            "near_zero_gaps": _share(gaps, NEAR_ZERO_S), "zero_gaps": _share(gaps, 0.0, strict=False),
            "written_near_zero_gaps": _share(wgaps, NEAR_ZERO_S)}


def _share(gaps: list[float], under: float, strict: bool = True) -> float | None:
    return sum(g < under if strict else g <= under for g in gaps) / len(gaps) if gaps else None


def _ms(values: list[float], p: float) -> float | None:
    return values[min(len(values) - 1, int(len(values) * p))] * 1e3 if values else None  # nearest rank


def main(argv=None) -> int:
    def body() -> int:
        o = parse(StampingOptions, argv, __doc__)
        if o.serve:
            serve(o.chunk_rate)
            return 0
        f = measure(o)
        print(json.dumps({"qps": o.qps, "chunk_rate": o.chunk_rate, **f}))
        return 0

    return run(body)


if __name__ == "__main__":
    sys.exit(main())
