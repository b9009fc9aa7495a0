"""Errors of the health monitor; each message names the field and the value.

A message is a ``common.text.Text``: put into words when shown, in the language active
then. Staff read it in theirs (the admin's messages, a run's page: a run records its
reason as a Text beside the English, ``monitoring.runs``); check_sync, which runs
untranslated, prints it in English. The templates are module constants, marked with
``gettext_noop``.
"""

from common.text import Text, gettext_noop

from .limits import RATE, REPAIR_BATCH_SIZE, REPAIR_LOCK_TIMEOUT

BAD_THRESHOLDS = gettext_noop(
    "warn_below=%(warn)r and critical_below=%(critical)r must satisfy "
    "%(low)s <= critical_below <= warn_below <= %(high)s"
)
UNKNOWN_DATABASE = gettext_noop(
    "database=%(value)r is not a configured database alias (have: %(aliases)s)"
)
BAD_SAMPLE_SIZE = gettext_noop(
    "sample_size=%(value)r must be 0 or more (SYNC_VIOLATION_SAMPLE_SIZE)"
)
BAD_TIMEOUT = gettext_noop("timeout=%(value)r must be a positive number of seconds (0: no limit)")
REPAIR_INTERRUPTED = gettext_noop(
    "repair stopped after %(done)s repaired pair(s), which are kept: %(error)s"
)
TIMED_OUT = gettext_noop("the check did not complete within timeout=%(value)r seconds")
REPLICA_BEHIND = gettext_noop(
    "replica %(alias)r is %(seconds).0f s behind the primary (%(detail)s)"
)
REPLICA_ALLOWED = gettext_noop("allowed %(limit)s s")
REPLICA_PAUSED = gettext_noop("replay paused; allowed %(limit)s s")
REPLICA_LAG_UNKNOWN = gettext_noop("replica %(alias)r cannot tell how far it is behind: %(why)s")
BAD_MAX_LAG = gettext_noop("max_replica_lag=%(value)r must be a number of seconds, 0 or more")


class MonitoringError(Exception):
    """Base class: the check could not be run as asked.

    ``message``: a ``Text`` (or a string already in words); ``str(error)`` is it in
    the active language.
    """

    def __init__(self, message: Text | str):
        super().__init__(message)
        self.message = message


class BadThresholds(MonitoringError, ValueError):
    def __init__(self, warn, critical):
        super().__init__(
            Text(BAD_THRESHOLDS, warn=warn, critical=critical, low=RATE[0], high=RATE[1])
        )


class UnknownDatabase(MonitoringError, LookupError):
    def __init__(self, value, aliases):
        super().__init__(Text(UNKNOWN_DATABASE, value=value, aliases=", ".join(aliases)))


class CheckTimedOut(MonitoringError, TimeoutError):
    def __init__(self, value):
        super().__init__(Text(TIMED_OUT, value=value))


class BadTimeout(MonitoringError, ValueError):
    def __init__(self, value):
        super().__init__(Text(BAD_TIMEOUT, value=value))


class BadSampleSize(MonitoringError, ValueError):
    def __init__(self, value):
        super().__init__(Text(BAD_SAMPLE_SIZE, value=value))


class ReplicaBehind(MonitoringError):
    """A replica further behind than allowed: its answer would be stale, so none is given."""

    def __init__(self, alias: str, seconds: float, *, limit: float, paused: bool):
        detail = Text(REPLICA_PAUSED if paused else REPLICA_ALLOWED, limit=f"{limit:g}")
        super().__init__(Text(REPLICA_BEHIND, alias=alias, seconds=seconds, detail=detail))
        self.alias, self.seconds = alias, seconds


class ReplicaLagUnknown(MonitoringError):
    def __init__(self, alias: str, why: Text | str):
        super().__init__(Text(REPLICA_LAG_UNKNOWN, alias=alias, why=why))


class BadMaxReplicaLag(MonitoringError, ValueError):
    def __init__(self, value):
        super().__init__(Text(BAD_MAX_LAG, value=value))


class BadCaseFilter(MonitoringError, ValueError):
    """A Desync cases selection names a parameter or a value that is not one of its filters."""


class RepairInterrupted(MonitoringError):
    """A database error stopped repair; the batches before it are committed and kept."""

    def __init__(self, done: int, error: Text | str):
        super().__init__(Text(REPAIR_INTERRUPTED, done=done, error=error))
        self.done, self.error = done, error


REPAIR_ALREADY_RUNNING = gettext_noop("a repair is already running (%(holder)s)")
REPAIR_CLAIM_BUSY = gettext_noop("could not claim the repair within %(seconds)s s: %(error)s")
REPAIR_TAKEN_OVER = gettext_noop(
    "run %(run)s was marked interrupted by another repair (no report for too long)"
)
RUN_NOT_QUEUED = gettext_noop(
    "run %(run)s is no longer queued: it was ended before a worker started it"
)
REPAIR_TIMED_OUT = gettext_noop(
    "timeout=%(value)s seconds reached; run it again to repair the rest"
)
BAD_LOCK_TIMEOUT = gettext_noop(
    "lock_timeout=%(value)r must be a number of seconds from %(low)s to %(high)s"
    " (SYNC_REPAIR_LOCK_TIMEOUT)"
)
BAD_BATCH_SIZE = gettext_noop(
    "batch_size=%(value)r must be a whole number from %(low)s to %(high)s (SYNC_REPAIR_BATCH_SIZE)"
)


class RepairAlreadyRunning(MonitoringError):
    """Single flight: a live repair over an overlapping scope holds the claim."""

    def __init__(self, holder: Text | str):
        super().__init__(Text(REPAIR_ALREADY_RUNNING, holder=holder))
        self.holder = holder


class RepairClaimBusy(MonitoringError):
    """The claim's row stayed locked past the claim's own short lock timeout."""

    def __init__(self, seconds: float, error: str):
        super().__init__(Text(REPAIR_CLAIM_BUSY, seconds=f"{seconds:g}", error=error))


class RunTakenOver(MonitoringError):
    """This run stopped reporting for so long that another repair marked it interrupted."""

    def __init__(self, run_id: int):
        super().__init__(Text(REPAIR_TAKEN_OVER, run=run_id))


class RunNotQueued(MonitoringError):
    """A background job found its run no longer queued (ended before a worker took it)."""

    def __init__(self, run_id: int):
        super().__init__(Text(RUN_NOT_QUEUED, run=run_id))


class BadLockTimeout(MonitoringError, ValueError):
    def __init__(self, value):
        low, high = REPAIR_LOCK_TIMEOUT
        super().__init__(Text(BAD_LOCK_TIMEOUT, value=value, low=f"{low:g}", high=f"{high:g}"))


class BadBatchSize(MonitoringError, ValueError):
    def __init__(self, value):
        low, high = REPAIR_BATCH_SIZE
        super().__init__(Text(BAD_BATCH_SIZE, value=value, low=low, high=high))


def first_line(exc: BaseException) -> str:
    """A database error's first line (psycopg2's messages run over several)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def reason_of(exc: BaseException) -> Text | str:
    """What a run records and shows for ``exc``: a monitoring error's message as a Text
    (in the reader's language), any other error's first line as it is."""
    if isinstance(exc, MonitoringError):
        return exc.message
    return first_line(exc)
