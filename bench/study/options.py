"""What `bench study` takes besides the box (--device, --threads, a device's own flags) and the output."""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.durations import parse_duration
from bench.core.errors import ConfigError
from bench.core.options import Options, opt


@dataclass(frozen=True)
class StudyOptions(Options):
    title = "study"
    description = ("A study is the runs of one question as data (a TOML file, or a built-in: smoke, helpline), "
                   "planned against a device-time budget before any work, and answered first with a decision table.")

    from_report: str | None = opt(None, "run again the study a report carries (resolved anew, it must be the same, "
                                        "byte for byte)", flag="--from", metavar="REPORT.json")
    budget: str | None = opt(None, "device time the study may take, instead of its own: seconds, or with s, m or h "
                                   "(600, 10m, 1h); device time is the wall time a run holds the device",
                             metavar="DURATION")
    dry_run: bool = opt(False, "print the plan and stop: nothing is measured, no report is written")

    def check(self) -> None:
        if self.budget is not None:
            self.budget_s()

    def budget_s(self) -> float | None:
        return None if self.budget is None else parse_duration(self.budget, "--budget")

    def source(self, study: str | None) -> str:
        """The study's name or file, or the report to take it from: one of them."""
        if (study is None) == (self.from_report is None):
            raise ConfigError("bench study: give a study (smoke, helpline or a TOML file) or --from REPORT.json, "
                              "one of them")
        return study or self.from_report
