"""bench: the same dialogue-model workloads on Gaudi, NVIDIA and CPU, measured honestly."""

__version__ = "0.1.0"


def load_reports(paths):
    """Load bench reports into a pandas DataFrame, one row per run x workload (for notebooks)."""
    from bench.report.export import load_reports as _load

    return _load(paths)
