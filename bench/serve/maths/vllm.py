"""Serving results in vLLM's `bench serve --save-result --save-detailed` JSON, so that vLLM's own
tooling can read and check them (`bench compare ... --vllm-json OUT.jsonl`).

One JSON object per repeat of each serving result compared, one per line, as vLLM's
`--append-result` writes several results to one file; each object carries the keys vLLM's
vllm/benchmarks/serve.py `main_async` and `benchmark` write, computed as `calculate_metrics` does:
latencies in milliseconds, `np.percentile` (interpolated) for p50/p90/p99, `np.std` (population),
TPOT (e2e - TTFT) / (tokens - 1) over requests of 2 tokens or more, ITL every gap between chunks of
the completed requests, throughputs over the duration, goodput the requests meeting every SLO given
over it, the peak output tokens per second and concurrent requests over one-second buckets. As vLLM
measures from a request's send, TTFT and e2e latency here count from when the load generator sent
each request (the `sent` origin of records.py's figures), not from its scheduled arrival as bench's
own figures do; the duration runs from the session's start to the last completion. Only the requests
of the measured window are written (vLLM leaves its warm-up requests out too).

Per request, as vLLM 0.32 writes them (`benchmark`'s result): `start_times` (when each was sent, on the
run's clock: vLLM's are perf_counter seconds; its timeline plot reads them from their first),
`latencies` (e2e from the send; 0 for a failed request, as vLLM leaves it), `queue_times` (from its
arrival to its send: vLLM's `client_queue_time`, the wait for a --max-concurrency slot), `rtfx` 0 (an
audio figure). With a concurrency cap, the client queue's statistics (`*_client_queue_time_ms`) and,
at a finite rate, e2e latency with it (`*_e2el_including_client_queue_ms`), as vLLM adds them. What
bench cannot fill is said in `bench_unfilled` (a key vLLM's readers ignore): NOT_FILLED.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from bench.serve.maths import records as rec
from bench.serve.maths.metrics import SLOS, good, window_start
from bench.serve.maths.records import RequestRecord

PERCENTILES = (50, 90, 99)
SENT = "sent"
NOT_FILLED = {
    "generated_texts": "bench keeps no reply text in its reports (written empty)",
    "tokenizer_id": "bench names the model served; a server's tokenizer is its own (the model's name is written)",
    "ramp_up_strategy": "bench's --ramp-up-s raises the rate over time, not by request index as vLLM's strategies do",
    "spec_decode_*": "speculative decoding is not bench's", "probe_*": "bench sends no probe requests",
    "diffusion_*": "not a diffusion model",
}


def vllm_results(reports) -> list[dict]:
    """Every counted repeat of every serving result of these reports, as vLLM's result JSON."""
    out = []
    for report in reports:
        for result in report.results:
            for repeat in result.timing.counted:
                if repeat.requests is not None and repeat.requests.arrival_s:
                    out.append(vllm_result(report, result, repeat.requests))
    return out


def _stats(name: str, values: list[float]) -> dict:
    ms = np.asarray(values or [0.0], dtype=float) * 1000  # vLLM: np.mean(x or 0)
    out = {f"mean_{name}_ms": float(ms.mean()), f"median_{name}_ms": float(np.median(ms)),
           f"std_{name}_ms": float(ms.std())}
    out.update({f"p{p}_{name}_ms": float(np.percentile(ms, p)) for p in PERCENTILES})
    return out


def _peaks(done: list[RequestRecord]) -> tuple[float, int]:
    """vLLM's max_output_tokens_per_s and max_concurrent_requests: per one-second bucket from the
    first send to the last end."""
    if not done:
        return 0.0, 0
    start = min(rec.origin_s(r, SENT) for r in done)
    buckets = int(np.ceil(max(r.finish_s for r in done) - start)) + 1
    tokens, active = np.zeros(buckets), np.zeros(buckets)
    for r in done:
        for t in r.token_s:
            if 0 <= int(t - start) < buckets:
                tokens[int(t - start)] += 1
        active[int(rec.origin_s(r, SENT) - start): int(r.finish_s - start) + 1] += 1
    return float(tokens.max()), int(active.max())


def vllm_result(report, result, log) -> dict:
    reqs = rec.records(log)
    done = [r for r in reqs if r.done]
    start = window_start(log)  # as bench's own rates: the measured window, after the warm-up requests
    start = start if start is not None else min(rec.origin_s(r, SENT) for r in reqs)
    duration = max((r.finish_s for r in done), default=start) - start
    peak_tokens, peak_active = _peaks(done)
    return {**_setup(report, result, len(reqs)), "duration": duration,
            **_totals(reqs, done, duration, _good(result, done)), **_details(reqs),
            "max_output_tokens_per_s": peak_tokens, "max_concurrent_requests": peak_active, "rtfx": 0.0,
            **_latencies(done), **_client_queue(done, result.params), "bench_unfilled": _unfilled(result.params)}


def _unfilled(params: dict) -> dict:
    out = dict(NOT_FILLED)
    if params.get("arrivals"):
        out["request_rate"] = "the arrivals were replayed from a file (--arrivals): no one rate (null); start_times has each"
    return out


def _totals(reqs: list[RequestRecord], done: list[RequestRecord], duration: float, good_: int | None) -> dict:
    out_tokens, in_tokens = sum(r.new_tokens for r in done), sum(r.prompt_tokens for r in done)

    def per_s(x):
        return x / duration if duration > 0 else 0.0

    return {"completed": len(done), "failed": len(reqs) - len(done), "total_input_tokens": in_tokens,
            "total_output_tokens": out_tokens, "request_throughput": per_s(len(done)),
            "request_goodput": None if good_ is None else per_s(good_), "output_throughput": per_s(out_tokens),
            "total_token_throughput": per_s(in_tokens + out_tokens)}


def _details(reqs: list[RequestRecord]) -> dict:
    """--save-detailed's per-request lists (a failed request: output 0, TTFT 0, as vLLM writes it)."""
    return {"input_lens": [r.prompt_tokens for r in reqs], "output_lens": [r.new_tokens if r.done else 0 for r in reqs],
            "ttfts": [rec.ttft(r, SENT) or 0.0 for r in reqs], "itls": [rec.itl(r) for r in reqs],
            "latencies": [rec.e2e(r, SENT) if r.done else 0.0 for r in reqs],
            "start_times": [rec.origin_s(r, SENT) for r in reqs], "queue_times": [rec.waited(r) or 0.0 for r in reqs],
            "generated_texts": ["" for _ in reqs], "errors": [r.error or "" for r in reqs]}


def _client_queue(done: list[RequestRecord], params: dict) -> dict:
    """With a concurrency cap, vLLM's client-queue figures over the completed requests: the wait before the
    send, and (at a finite rate) e2e latency with it."""
    if not params.get("max_concurrency"):
        return {}
    waits = [rec.waited(r) or 0.0 for r in done]
    out = _stats("client_queue_time", waits)
    if params.get("qps") is not None:
        out.update(_stats("e2el_including_client_queue", [rec.e2e(r, SENT) + w for r, w in zip(done, waits, strict=True)]))
    return out


def _latencies(done: list[RequestRecord]) -> dict:
    timed = [r for r in done if r.first_token_s is not None]
    return {**_stats("ttft", [rec.ttft(r, SENT) for r in timed]),
            **_stats("tpot", [t for r in timed if (t := rec.tpot(r)) is not None]),
            **_stats("itl", [g for r in done for g in rec.itl(r)]), **_stats("e2el", [rec.e2e(r, SENT) for r in done])}


def _good(result, done: list[RequestRecord]) -> int | None:
    """Requests meeting every SLO the run was given, timed from their send (vLLM's goodput)."""
    wm = result.workload_metrics or {}
    slos = {k: wm.get(f"slo.{k}_s") for k in SLOS}
    slos = {k: v for k, v in slos.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if not slos:
        return None
    return sum(1 for r in done if r.first_token_s is not None and good(r, slos, SENT))


def _setup(report, result, n: int) -> dict:
    p, served = result.params, result.served_by
    load = str(p.get("load") or "poisson")
    kind, _, value = load.partition(":")
    chat = served is not None and served.api == "chat"
    try:
        date = datetime.fromisoformat(report.created_at).strftime("%Y%m%d-%H%M%S")
    except ValueError:
        date = report.created_at
    model = (served.model if served is not None and served.model else None) or str(p.get("model"))
    return {"date": date, "endpoint_type": "openai-chat" if chat else "openai",
            "backend": "openai-chat" if chat else "openai", "label": report.label, "model_id": model,
            "tokenizer_id": model, "num_prompts": n,
            # "inf" is vLLM's burst (and, with max_concurrency, its closed loop); a replayed --arrivals has no rate
            "request_rate": p.get("qps") if p.get("qps") is not None else None if p.get("arrivals") else "inf",
            "burstiness": {"gamma": float(value or 1.0), "constant": "inf"}.get(kind, 1.0),
            "max_concurrency": int(float(value)) if kind == "concurrency" else p.get("max_concurrency")}
