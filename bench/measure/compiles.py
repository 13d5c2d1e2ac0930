"""Graph compiles per phase: the backend's cumulative counter (Backend.compile_stats) read before and
after each phase, the difference kept as that phase's Compiles. The runner wraps setup, warm-up,
measured steps and verify in it; a serving session wraps its warm-up and its measured session.

    log = CompileLog(backend, repeat.compiles)
    with log.phase("warmup"):
        ...
    why = log.while_measuring()   # a sentence for the compiled_while_measuring warning, or None
"""

from __future__ import annotations

import contextlib

from bench.model.report import Compiles


def read_stats(backend) -> dict | None:
    """The backend's counter, or None where nothing counts or the stack's own call failed."""
    try:
        stats = backend.compile_stats()
    except Exception:  # noqa: BLE001 - a vendor counter that fails counts nothing; the run goes on
        return None
    return stats if isinstance(stats, dict) else None


def _delta(after, before):
    if after is None or before is None:
        return None
    return max(after - before, 0)


class CompileLog:
    """Compiles of each phase, appended to `into` (a Repeat's compiles list)."""

    def __init__(self, backend, into: list[Compiles]):
        self.backend, self.records = backend, into

    @contextlib.contextmanager
    def phase(self, name: str):
        before = read_stats(self.backend)
        try:
            yield
        finally:
            after = read_stats(self.backend)
            if before is not None and after is not None:
                self.records.append(Compiles(name, _delta(after.get("graphs"), before.get("graphs")),
                                             _delta(after.get("seconds"), before.get("seconds")),
                                             after.get("source"),
                                             _delta(after.get("eager_frames"), before.get("eager_frames"))))

    def ran_eager(self) -> str | None:
        """torch.compile frames that hit dynamo's recompile limit in any phase, in words: from then on they ran
        eager, the measured steps too, while the run is labelled compiled. None when none did."""
        frames = sum(c.eager_frames or 0 for c in self.records)
        if not frames:
            return None
        where = ", ".join(dict.fromkeys(c.phase for c in self.records if c.eager_frames))
        return (f"{frames} function(s) hit torch._dynamo's recompile limit (config.recompile_limit, 8 by default) "
                f"during {where} and ran eager from then on, without an error: the figures are not those of "
                "compiled code. Keep shapes static or raise torch._dynamo.config.recompile_limit")

    def while_measuring(self) -> str | None:
        """What compiled during the measured steps, in words; None when nothing did (or nothing counts)."""
        hits = [c for c in self.records if c.phase == "measure" and c.graphs]
        if not hits:
            return None
        graphs = sum(c.graphs for c in hits)
        seconds = sum(c.seconds or 0.0 for c in hits)
        return (f"{graphs} graph(s) compiled during the measured steps ({seconds:.3g} s of compiling, counted by "
                f"{hits[0].source}): a shape the warm-up did not cover; the compile time is inside the measured "
                "figures. Raise --warmup, or keep shapes static")
