"""Errors of the health monitor; each message names the field and the value."""

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .limits import RATE, REPAIR_BATCH_SIZE, REPAIR_LOCK_TIMEOUT

BAD_THRESHOLDS = (
    "warn_below={warn!r} and critical_below={critical!r} must satisfy "
    f"{RATE[0]} <= critical_below <= warn_below <= {RATE[1]}"
)
UNKNOWN_DATABASE = "database={value!r} is not a configured database alias (have: {aliases})"
BAD_SAMPLE_SIZE = "sample_size={value!r} must be 0 or more (SYNC_VIOLATION_SAMPLE_SIZE)"
BAD_TIMEOUT = "timeout={value!r} must be a positive number of seconds (0: no limit)"
REPAIR_INTERRUPTED = "repair stopped after {done} repaired pair(s), which are kept: {error}"
TIMED_OUT = "the check did not complete within timeout={value!r} seconds"
REPLICA_BEHIND = "replica {alias!r} is {seconds:.0f} s behind the primary ({detail})"
REPLICA_LAG_UNKNOWN = "replica {alias!r} cannot tell how far it is behind: {why}"
BAD_MAX_LAG = "max_replica_lag={value!r} must be a number of seconds, 0 or more"


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


class ReplicaBehind(MonitoringError):
    """A replica further behind than allowed: its answer would be stale, so none is given."""

    def __init__(self, alias: str, seconds: float, *, limit: float, paused: bool):
        detail = ("replay paused; " if paused else "") + f"allowed {limit:g} s"
        super().__init__(REPLICA_BEHIND.format(alias=alias, seconds=seconds, detail=detail))
        self.alias, self.seconds = alias, seconds


class ReplicaLagUnknown(MonitoringError):
    def __init__(self, alias: str, why: str):
        super().__init__(REPLICA_LAG_UNKNOWN.format(alias=alias, why=why))


class BadMaxReplicaLag(MonitoringError, ValueError):
    def __init__(self, value):
        super().__init__(BAD_MAX_LAG.format(value=value))


class BadCaseFilter(MonitoringError, ValueError):
    """A Desync cases selection names a parameter or a value that is not one of its filters."""


class RepairInterrupted(MonitoringError):
    """A database error stopped repair; the batches before it are committed and kept."""

    def __init__(self, done: int, error: str):
        super().__init__(REPAIR_INTERRUPTED.format(done=done, error=error))
        self.done, self.error = done, error


# Shown to staff after a refused repair (in their language; check_sync's stays English).
REPAIR_ALREADY_RUNNING = _("a repair is already running (%(holder)s)")
REPAIR_CLAIM_BUSY = _("could not claim the repair within %(seconds)s s: %(error)s")
REPAIR_TAKEN_OVER = "run {run} was marked interrupted by another repair (no report for too long)"
RUN_NOT_QUEUED = "run {run} is no longer queued: it was ended before a worker started it"
REPAIR_TIMED_OUT = "timeout={value:g} seconds reached; run it again to repair the rest"
BAD_LOCK_TIMEOUT = (
    "lock_timeout={value!r} must be a number of seconds"
    f" from {REPAIR_LOCK_TIMEOUT[0]:g} to {REPAIR_LOCK_TIMEOUT[1]:g} (SYNC_REPAIR_LOCK_TIMEOUT)"
)
BAD_BATCH_SIZE = (
    "batch_size={value!r} must be a whole number"
    f" from {REPAIR_BATCH_SIZE[0]} to {REPAIR_BATCH_SIZE[1]} (SYNC_REPAIR_BATCH_SIZE)"
)


class RepairAlreadyRunning(MonitoringError):
    """Single flight: a live repair over an overlapping scope holds the claim."""

    def __init__(self, holder: str):
        super().__init__(gettext(REPAIR_ALREADY_RUNNING) % {"holder": holder})
        self.holder = holder


class RepairClaimBusy(MonitoringError):
    """The claim's row stayed locked past the claim's own short lock timeout."""

    def __init__(self, seconds: float, error: str):
        super().__init__(gettext(REPAIR_CLAIM_BUSY) % {"seconds": f"{seconds:g}", "error": error})


class RunTakenOver(MonitoringError):
    """This run stopped reporting for so long that another repair marked it interrupted."""

    def __init__(self, run_id: int):
        super().__init__(REPAIR_TAKEN_OVER.format(run=run_id))


class RunNotQueued(MonitoringError):
    """A background job found its run no longer queued (ended before a worker took it)."""

    def __init__(self, run_id: int):
        super().__init__(RUN_NOT_QUEUED.format(run=run_id))


class BadLockTimeout(MonitoringError, ValueError):
    def __init__(self, value):
        super().__init__(BAD_LOCK_TIMEOUT.format(value=value))


class BadBatchSize(MonitoringError, ValueError):
    def __init__(self, value):
        super().__init__(BAD_BATCH_SIZE.format(value=value))


def first_line(exc: BaseException) -> str:
    """A database error's first line (psycopg2's messages run over several)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
