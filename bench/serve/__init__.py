"""The serving scenario, all of it in one home: how requests arrive, who serves them, and what their
times say. A generating workload offers its model (workloads/blender_servable.py: an executor of
protocol.py's `Executor`); the scenario drives it, as MLPerf LoadGen drives a system under test.

    maths/       the pure serving maths (imports core and model only; analysis and render read it):
                 records.py the typed per-request record and each per-request figure (TTFT, e2e, TPOT,
                 ITL, queue, late) once, its origin a parameter; metrics.py a session's figures and SLO
                 verdicts; tails.py LoadGen's early stopping; capacity.py the capacity search, its plan
                 and the bracket; vllm.py the vLLM result export
    arrivals.py  when requests arrive: Poisson, gamma, constant, ramps, a file
    plan.py      what a session asks: its plan, output lengths, a conversation's user turns
    options.py   the engine's, the load's and the HTTP server's options, declared once
    workload.py  blender-serve: the scenario's checks, plan, identity and figures over a served model
    scenario.py  serving as a measured scenario of `bench run`, the HTTP server's session (`bench
                 serve`), and the results a run makes (rates, capacity probes)
    protocol.py  what a client hands an engine and gets back (requests, events, one step's record)
    engine.py    the scheduler: FIFO admission, batching policy, stop rules, cancellation
    session.py   an open-loop session: arrivals through a client, every token's time recorded
    loads.py     a plan's schedule: open and closed loops, conversations
    endpoint.py  the server at --endpoint before any work: its URL, its key, its model list (probed)
    http.py      the load generator's HTTP client; remote.py who serves a session and its warm-up;
                 spawn.py `bench serve` started by a run
    api.py       the API's bodies, responses and errors (OpenAI's shapes); app.py the FastAPI app;
                 loop.py the engine's thread (a failed step fails only its requests), metrics and
                 records behind it; text.py prompts and messages to token ids (chat templates on a
                 budget), ids to text; connections.py uvicorn's HTTP protocol with deadlines and a
                 connection limit apart from the queue; server.py uvicorn, stopping on every signal
"""
