"""Serving: an engine that batches requests at every decode step (or in static batches), the
OpenAI-compatible HTTP app in front of it, and the load generator's in-process client.

    protocol.py  what a client hands an engine and gets back (requests, events, one step's record)
    engine.py    the scheduler: FIFO admission, batching policy, stop rules, cancellation
    blender.py   the model side: BlenderBot's encoder and decoder over rows of different ages
    session.py   an open-loop session: arrivals through a client, every token's time recorded
    scenario.py  serving as a measured scenario of `bench run`, and the HTTP server's session
    api.py       the API's bodies, responses and errors (OpenAI's shapes)
    app.py       the FastAPI app; loop.py the engine's thread, metrics and records behind it
    text.py      prompts and messages to token ids, ids to text
    server.py    uvicorn, draining on SIGTERM; options.py the server's options
"""
