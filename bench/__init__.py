"""bench: the same dialogue-model workloads on Gaudi, NVIDIA and CPU, measured honestly.

This package's __init__ imports nothing at load time: every module of bench runs it first.
"""

__version__ = "0.3.0"


def load_reports(paths, **options):
    """Load bench reports into a pandas DataFrame, one row per run x workload, compared as `bench compare`
    does (options: baseline, force, min_repeats, min_effect). See bench/render/frame.py."""
    from bench.render.frame import load_reports as _load

    return _load(paths, **options)
