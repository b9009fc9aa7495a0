"""Errors of the health monitor; each message names the field and the value."""

BAD_THRESHOLDS = (
    "warn_below={warn!r} and critical_below={critical!r} must satisfy 0 <= critical_below <= "
    "warn_below <= 100"
)
UNKNOWN_DATABASE = "database={value!r} is not a configured database alias (have: {aliases})"
BAD_SAMPLE_SIZE = "sample_size={value!r} must be 0 or more (SYNC_VIOLATION_SAMPLE_SIZE)"
BAD_TIMEOUT = "timeout={value!r} must be a positive number of seconds (0: no limit)"
REPAIR_INTERRUPTED = "repair stopped after {done} repaired pair(s), which are kept: {error}"
TIMED_OUT = "the check did not complete within timeout={value!r} seconds"


class MonitoringError(Exception):
    """Base class: the check could not be run as asked."""


class BadThresholds(MonitoringError, ValueError):
    def __init__(self, warn, critical):
        super().__init__(BAD_THRESHOLDS.format(warn=warn, critical=critical))


class UnknownDatabase(MonitoringError, LookupError):
    def __init__(self, value, aliases):
        super().__init__(UNKNOWN_DATABASE.format(value=value, aliases=", ".join(aliases)))


class CheckTimedOut(MonitoringError, TimeoutError):
    def __init__(self, value):
        super().__init__(TIMED_OUT.format(value=value))


class BadTimeout(MonitoringError, ValueError):
    def __init__(self, value):
        super().__init__(BAD_TIMEOUT.format(value=value))


class BadSampleSize(MonitoringError, ValueError):
    def __init__(self, value):
        super().__init__(BAD_SAMPLE_SIZE.format(value=value))


class RepairInterrupted(MonitoringError):
    """A database error stopped repair; the batches before it are committed and kept."""

    def __init__(self, done: int, error: str):
        super().__init__(REPAIR_INTERRUPTED.format(done=done, error=error))
        self.done, self.error = done, error


def first_line(exc: BaseException) -> str:
    """A database error's first line (psycopg2's messages run over several)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
