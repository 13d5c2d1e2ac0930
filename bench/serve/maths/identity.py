"""Which differences make two serving results not comparable, and which are noted: defined once.

Two serving results answer the same question when they served the same model the same requests under
the same load; how they were served — bench's engine in the worker, bench serve over HTTP, another
server (vLLM, TGI) — is the comparison a buyer most wants, so the serving stack is noted beside the
figures, never a reason to refuse them:

    identity (refused when it differs)
        the model      model, model_type, parameters, config_hash (a server that is not bench's: what the
                       user declares it serves, --endpoint-serves; else its own name, `endpoint:<name>`),
                       precision, world_size, reply_vocab (the ids replies are drawn from: the random-init
                       presets' text vocabulary since it was restricted; null: every id, as before)
        the requests   data (shipped, synthetic, file), data_file (its hash), data_tokenizer (its vocabulary's
                       hash), input_len, context_len, new_tokens, output_len, requests, conversations, turns,
                       think_time_s, window, arrivals, arrival_seed; how each token is chosen: temperature,
                       top_p, sampling_seed (null: greedy, as every report before them)
        the load       qps, load (burst included), ramp_up_s, rescaled, max_concurrency (the cap on requests
                       in flight changes what the server is offered)
    noted (the serving stack): the engine and server (`Result.served_by`: engine, server, endpoint, api,
        static_shapes) and bench's engine settings, kept in the result's params: NOTED below

A field added later is classified here: it is identity unless NOTED names it. A new field is null where
it keeps what reports before it did (greedy, no cap, the --data sample), so that those stay comparable.
"""

from __future__ import annotations

NOTED = ("static_shapes", "batching", "max_batch", "max_tokens_in_flight", "batch_wait_ms", "kv_cache")


def identity(params: dict) -> dict:
    """The params two serving results must share to be compared."""
    return {k: v for k, v in params.items() if k not in NOTED}


def noted(params: dict) -> dict:
    """The params of the serving stack: compared and said, not matched."""
    return {k: v for k, v in params.items() if k in NOTED}
