"""A run's life in the history: started, finished or ended.

A check or repair is recorded when it starts (who: ``triggered_by``, empty for
cron or the system; where: host and pid; what: kind, scope, dry run). It ends
done (with the totals of the check after it), interrupted or failed, with the
reason. A process that dies (``kill -9``, a lost machine) leaves its run
``running``: readers take a run whose heartbeat is older than
SYNC_RUN_INTERRUPTED_AFTER_SECONDS as interrupted (``selectors.run_state``) and
the next repair marks it so. A repair's claim, its queue and its heartbeat
after every batch: ``monitoring.repair.claim``. The reason is kept in English
(``state_reason``) and as a ``Text`` (``state_reason_message``) that the run's page
puts into its reader's language.
"""

from __future__ import annotations

import os
import socket
from decimal import Decimal

from django.db import DatabaseError, connection
from django.utils import timezone

from common.text import Text

from .exceptions import RunTakenOver
from .health import Thresholds
from .models import HealthCheckRun, RunState


def start_run(
    *,
    kind: str,
    specialization: str | None,
    database: str = "default",
    dry_run: bool = False,
    triggered_by=None,
    thresholds=None,
) -> HealthCheckRun:
    """Record a check or a dry run as started (no claim: neither writes to the pairs)."""
    now = timezone.now()
    thresholds = thresholds or Thresholds.from_settings()
    return HealthCheckRun.objects.create(
        kind=kind,
        state=RunState.RUNNING,
        specialization=specialization or "",
        database=database,
        dry_run=dry_run,
        triggered_by=triggered_by,
        host=socket.gethostname()[:255],
        pid=os.getpid(),
        started_at=now,
        updated_at=now,
        checked_at=now,
        warn_below=Decimal(str(thresholds.warn_below)),
        critical_below=Decimal(str(thresholds.critical_below)),
    )


def finish_run(
    run: HealthCheckRun, *, check=None, repaired: int | None = None, **fields
) -> HealthCheckRun:
    """Mark a run done; ``check`` (a HealthReport) fills in the totals it found."""
    now = timezone.now()
    values = {"state": RunState.DONE, "finished_at": now, "updated_at": now, **fields}
    if repaired is not None:
        values["repaired"] = repaired
    if check is not None:
        values.update(
            checked_at=now,
            duration_ms=check.duration_ms,
            database=check.database,
            replica_lag_seconds=check.replica_lag_seconds,
            total_checked=check.total_checked,
            consistent=check.consistent,
            inconsistent=check.inconsistent,
            **check.by_kind,  # one counter field per kind
            consistency_rate=Decimal(str(check.consistency_rate)),
            status=check.status,
            warn_below=Decimal(str(check.thresholds.warn_below)),
            critical_below=Decimal(str(check.thresholds.critical_below)),
            violations_sample=[v.as_dict() for v in check.violations],
            ledger_checked=check.ledger_checked,
            ledger_mismatches=check.ledger_mismatches,
            ledger_sample=[m.as_dict() for m in check.ledger_violations],
        )
    if not HealthCheckRun.objects.filter(pk=run.pk, state=RunState.RUNNING).update(**values):
        raise RunTakenOver(run.pk)
    for name, value in values.items():
        setattr(run, name, value)
    return run


def end_run(run: HealthCheckRun | None, state: str, reason: Text | str, **fields) -> None:
    """Best effort: mark a run interrupted or failed, on a fresh connection if need be.

    When even that fails (the database is gone), the run stays ``running`` and
    reads as interrupted once its heartbeat is old enough.
    """
    if run is None:
        return
    for attempt in range(2):
        try:
            if connection.in_atomic_block:  # the caller's transaction decides
                return mark_ended(run.pk, state, reason, **fields)
            if attempt or not connection.is_usable():
                connection.close()  # a terminated connection: the next query reconnects
            mark_ended(run.pk, state, reason, **fields)
            run.state = state
            run.state_reason, run.state_reason_message = recorded_reason(reason)
            return
        except DatabaseError:
            continue


def mark_ended(pk: int, state: str, reason: Text | str, **fields) -> int:
    """End the run ``pk`` if it is still queued or running, in the current transaction."""
    now = timezone.now()
    unfinished = (RunState.QUEUED, RunState.RUNNING)
    english, message = recorded_reason(reason)
    return HealthCheckRun.objects.filter(pk=pk, state__in=unfinished).update(
        state=state,
        state_reason=english,
        state_reason_message=message,
        finished_at=now,
        updated_at=now,
        **fields,
    )


def recorded_reason(reason: Text | str) -> tuple[str, dict | None]:
    """A reason as a run keeps it: in English (what scripts and the job's result read),
    and as a Text for its page to show in the reader's language (None: a database's
    error, shown as it came)."""
    if isinstance(reason, Text):
        return reason.english()[:500], reason.as_json()
    return str(reason)[:500], None
