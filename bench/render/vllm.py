"""Serving results in vLLM's `bench serve --save-result --save-detailed` JSON, so that vLLM's own
tooling can read and check them (`bench compare ... --vllm-json OUT.jsonl`).

One JSON object per repeat of each serving result compared, one per line, as vLLM's
`--append-result` writes several results to one file; each object carries the keys vLLM's
vllm/benchmarks/serve.py `main_async` and `benchmark` write, computed as `calculate_metrics` does:
latencies in milliseconds, `np.percentile` (interpolated) for p50/p90/p99, `np.std` (population),
TPOT (e2e - TTFT) / (tokens - 1) over requests of 2 tokens or more, ITL every gap between chunks,
throughputs over the duration, goodput the requests meeting every SLO given over it, the peak
output tokens per second and concurrent requests over one-second buckets. As vLLM measures from a
request's send, TTFT and e2e latency here count from when the load generator sent each request
(`sent_s`), not from its scheduled arrival as bench's own figures do; the duration runs from the
session's start to the last completion. Only the requests of the measured window are written (vLLM
leaves its warm-up requests out too); texts are not kept by bench (`generated_texts` are empty).
"""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np

PERCENTILES = (50, 90, 99)


def vllm_results(comparison) -> list[dict]:
    """Every counted repeat of every serving result of the reports compared, as vLLM's result JSON."""
    out = []
    for source in comparison.sources:
        report = source.report
        for result in report.results:
            for repeat in result.timing.counted:
                if repeat.requests is not None and repeat.requests.arrival_s:
                    out.append(vllm_result(report, result, repeat.requests))
    return out


def vllm_text(comparison) -> str:
    lines = [json.dumps(r, allow_nan=False, default=str) for r in vllm_results(comparison)]
    return "\n".join(lines) + ("\n" if lines else "")


def _requests(log) -> list[dict]:
    """The measured window's requests: send time, token stamps, end, lengths, error."""
    out = []
    for i, arrival in enumerate(log.arrival_s):
        if log.measured is not None and not log.measured[i]:
            continue
        sent = log.sent_s[i] if log.sent_s and log.sent_s[i] is not None else arrival
        out.append({"sent": sent, "stamps": list(log.token_s[i]) if log.token_s else [], "end": log.finish_s[i],
                    "input": log.prompt_tokens[i], "output": log.new_tokens[i],
                    "error": (log.error[i] if log.error else None) or ("" if log.finish_s[i] is not None else "failed")})
    return out


def _stats(name: str, values: list[float]) -> dict:
    ms = np.asarray(values or [0.0], dtype=float) * 1000  # vLLM: np.mean(x or 0)
    out = {f"mean_{name}_ms": float(ms.mean()), f"median_{name}_ms": float(np.median(ms)),
           f"std_{name}_ms": float(ms.std())}
    out.update({f"p{p}_{name}_ms": float(np.percentile(ms, p)) for p in PERCENTILES})
    return out


def _peaks(done: list[dict]) -> tuple[float, int]:
    """vLLM's max_output_tokens_per_s and max_concurrent_requests: per one-second bucket from the
    first send to the last end."""
    if not done:
        return 0.0, 0
    start = min(r["sent"] for r in done)
    buckets = int(np.ceil(max(r["end"] for r in done) - start)) + 1
    tokens, active = np.zeros(buckets), np.zeros(buckets)
    for r in done:
        for t in r["stamps"]:
            if 0 <= int(t - start) < buckets:
                tokens[int(t - start)] += 1
        active[int(r["sent"] - start): int(r["end"] - start) + 1] += 1
    return float(tokens.max()), int(active.max())


def vllm_result(report, result, log) -> dict:
    reqs = _requests(log)
    done = [r for r in reqs if r["end"] is not None]
    start = log.session_start_s if log.session_start_s is not None else min(r["sent"] for r in reqs)
    duration = max((r["end"] for r in done), default=start) - start
    peak_tokens, peak_active = _peaks(done)
    return {**_setup(report, result, len(reqs)), "duration": duration,
            **_totals(reqs, done, duration, _good(result, done)), **_details(reqs),
            "max_output_tokens_per_s": peak_tokens, "max_concurrent_requests": peak_active, **_latencies(done, reqs)}


def _totals(reqs: list[dict], done: list[dict], duration: float, good: int | None) -> dict:
    out_tokens, in_tokens = sum(r["output"] for r in done), sum(r["input"] for r in done)

    def per_s(x):
        return x / duration if duration > 0 else 0.0

    return {"completed": len(done), "failed": len(reqs) - len(done), "total_input_tokens": in_tokens,
            "total_output_tokens": out_tokens, "request_throughput": per_s(len(done)),
            "request_goodput": None if good is None else per_s(good), "output_throughput": per_s(out_tokens),
            "total_token_throughput": per_s(in_tokens + out_tokens)}


def _gaps(r: dict) -> list[float]:
    return [b - a for a, b in zip(r["stamps"], r["stamps"][1:], strict=False)]


def _details(reqs: list[dict]) -> dict:
    """--save-detailed's per-request lists (a failed request: output 0, TTFT 0, as vLLM writes it)."""
    def ok(r):
        return r["end"] is not None

    return {"input_lens": [r["input"] for r in reqs], "output_lens": [r["output"] if ok(r) else 0 for r in reqs],
            "ttfts": [r["stamps"][0] - r["sent"] if ok(r) and r["stamps"] else 0.0 for r in reqs],
            "itls": [_gaps(r) for r in reqs], "generated_texts": ["" for _ in reqs],
            "errors": [r["error"] for r in reqs]}


def _latencies(done: list[dict], reqs: list[dict]) -> dict:
    timed = [r for r in done if r["stamps"]]
    ttfts = [r["stamps"][0] - r["sent"] for r in timed]
    tpots = [(r["end"] - r["stamps"][0]) / (r["output"] - 1) for r in timed if r["output"] > 1]
    return {**_stats("ttft", ttfts), **_stats("tpot", tpots), **_stats("itl", [g for r in reqs for g in _gaps(r)]),
            **_stats("e2el", [r["end"] - r["sent"] for r in done])}


def _good(result, done: list[dict]) -> int | None:
    """Requests meeting every SLO the run was given (vLLM's goodput; a one-token request's TPOT is 0)."""
    wm = result.workload_metrics or {}
    slos = {k: wm.get(f"slo.{k}_s") for k in ("ttft", "tpot", "e2e")}
    slos = {k: v for k, v in slos.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if not slos:
        return None

    def values(r):
        ttft = r["stamps"][0] - r["sent"]
        tpot = (r["end"] - r["stamps"][0]) / (r["output"] - 1) if r["output"] > 1 else 0.0
        return {"ttft": ttft, "tpot": tpot, "e2e": r["end"] - r["sent"]}

    return sum(1 for r in done if r["stamps"] and all(values(r)[k] <= v for k, v in slos.items()))


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
            "request_rate": p.get("qps") if p.get("qps") is not None else "inf",
            "burstiness": {"gamma": float(value or 1.0), "constant": "inf"}.get(kind, 1.0),
            "max_concurrency": int(float(value)) if kind == "concurrency" else None}
