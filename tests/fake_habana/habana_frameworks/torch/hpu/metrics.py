"""bridge v1.19.0 hpu/metrics/metrics.py: metric_global(name) returns the process-wide metric; the
"graph_compilation" metric's stats() is a list of (tag, value): TotalNumber (graphs compiled),
TotalTime (the sum of each compile's `duration` event parameter, in microseconds: synapse_helpers/
graph.cpp measures synGraphCompile with std::chrono::micro) and AvgTime. graph.cpp emits the
GRAPH_COMPILE event for non-eager graphs only, so eager mode's op-by-op compiles are not counted.
Here a compile is emitted where the fake compiles: an HPU graph's capture (hpu/__init__.py)."""
import os


class MetricNotFound(Exception):
    pass


class GraphCompilationMetric:
    def __init__(self):
        self._total_num_of_compilation = 0
        self._total_time_of_compilation = 0
        self._recipe_durations = []

    def name(self):
        return "graph_compilation"

    def compiled(self, duration_us: int, recipe: str) -> None:
        self._total_num_of_compilation += 1
        self._total_time_of_compilation += int(duration_us)
        self._recipe_durations.append(int(duration_us))

    def stats(self):
        n = self._total_num_of_compilation
        return [("TotalNumber", n), ("TotalTime", self._total_time_of_compilation),
                ("AvgTime", float(self._total_time_of_compilation) / n if n > 0 else 0)]

    def reset(self):
        self._total_num_of_compilation = 0
        self._total_time_of_compilation = 0


_GLOBAL = {"graph_compilation": GraphCompilationMetric()}
COMPILE_US = int(os.environ.get("FAKE_HPU_COMPILE_US", "250000"))


def metric_global(name: str):
    return _GLOBAL.get(name)


def graph_compiled(recipe: str) -> None:
    """Where the bridge emits GRAPH_COMPILE (graph.cpp, non-eager graphs)."""
    from habana_frameworks.torch.utils.internal import is_lazy

    if is_lazy():
        _GLOBAL["graph_compilation"].compiled(COMPILE_US, recipe)

