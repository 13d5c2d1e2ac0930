"""One exception family: library code raises these, only cli.py turns them into exit codes."""


class BenchError(Exception):
    """Something the user can fix. The message says what was wrong and what to do."""

    exit_code = 1


class ConfigError(BenchError):
    """Bad command-line input or configuration (exit 2)."""

    exit_code = 2


class DeviceUnavailable(BenchError):
    """The requested device or its software stack is not present (exit 2)."""

    exit_code = 2


class ReportError(BenchError):
    """A report file that cannot be read, parsed or validated."""


class WorkloadSkipped(BenchError):
    """A workload that cannot run here (missing extra, bad model dir); recorded as skipped."""

    exit_code = 2

