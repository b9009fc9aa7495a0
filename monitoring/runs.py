"""A run's life in the history: started, reporting, finished.

A check or repair is recorded when it starts (who: ``triggered_by``, empty for
cron or the system; where: host and pid; what: kind, scope, dry run). A repair
reports after every batch inside the batch's own transaction, so the record
never counts more or less than was committed. It ends done (with the totals of
the check after it), interrupted or failed, with the reason. A process that
dies (``kill -9``, a lost machine) leaves its run ``running``: readers take a
run whose heartbeat is older than SYNC_RUN_INTERRUPTED_AFTER_SECONDS as
interrupted (``selectors.run_state``) and the next repair marks it so.

Single flight: ``claim_repair`` starts a repair only when no live repair over an
overlapping scope is running. Claims are serialized by a row lock on one
``RepairLease`` row, taken in a short transaction of their own: no advisory
lock, no session setting, so it works behind pgbouncer in transaction mode.
"""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from decimal import Decimal

from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from . import selectors
from .exceptions import (
    RepairAlreadyRunning,
    RepairClaimBusy,
    RunNotQueued,
    RunTakenOver,
    first_line,
)
from .health import Thresholds
from .models import HealthCheckRun, RepairLease, RunKind, RunState

CLAIM_LOCK_TIMEOUT = 1.0  # seconds; a claim holds the lease row for milliseconds
LEASE = "repair"
STOPPED_REPORTING = "no report since {since} (more than {age} s): taken over by run {run}"


def local_setting(cursor, name: str, value: str) -> None:
    """A PostgreSQL setting for the current transaction only (``SET LOCAL``)."""
    cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


@contextmanager
def lock_timeout_scope(seconds: float):
    """``lock_timeout`` for the current transaction, put back when it was the caller's.

    Call inside ``transaction.atomic()``. A savepoint rolled back takes the
    setting with it; only a nested block that succeeds has to restore it.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        previous = None
        if connection.savepoint_ids:  # our atomic block is a savepoint in someone else's
            cursor.execute("SELECT current_setting('lock_timeout')")
            previous = cursor.fetchone()[0]
        local_setting(cursor, "lock_timeout", f"{max(1, round(seconds * 1000))}ms")
        yield
        if previous is not None:
            local_setting(cursor, "lock_timeout", previous)


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


def queue_repair(
    *, specialization: str | None, triggered_by=None, planned: int | None = None, thresholds=None
) -> HealthCheckRun:
    """Record a repair that waits for a background worker (no claim: it writes nothing yet).

    The worker's ``claim_repair(queued=run)`` starts it or ends it refused.
    """
    now = timezone.now()
    thresholds = thresholds or Thresholds.from_settings()
    return HealthCheckRun.objects.create(
        kind=RunKind.REPAIR,
        state=RunState.QUEUED,
        specialization=specialization or "",
        triggered_by=triggered_by,
        planned=planned,
        queued_at=now,
        started_at=now,
        updated_at=now,
        checked_at=now,
        warn_below=Decimal(str(thresholds.warn_below)),
        critical_below=Decimal(str(thresholds.critical_below)),
    )


def claim_repair(
    *, specialization: str | None, triggered_by=None, thresholds=None, queued=None
) -> HealthCheckRun:
    """Start a repair run, or raise ``RepairAlreadyRunning`` naming the live holder.

    Runs that stopped reporting are marked interrupted on the way (they keep
    what they committed). Waits at most CLAIM_LOCK_TIMEOUT for another claim.
    ``queued`` (a run from ``queue_repair``) is started in place, here and now;
    refused, it ends failed with the refusal as its reason.
    """
    try:
        with transaction.atomic(), lock_timeout_scope(CLAIM_LOCK_TIMEOUT):
            RepairLease.objects.bulk_create([RepairLease(name=LEASE)], ignore_conflicts=True)
            RepairLease.objects.select_for_update().get(name=LEASE)
            now = timezone.now()
            holder = selectors.repair_holder(specialization=specialization, now=now)
            if holder is not None:
                raise RepairAlreadyRunning(selectors.describe_run(holder))
            stale = list(
                selectors.running_repairs(specialization=specialization)
                .filter(updated_at__lt=selectors.interrupted_cutoff(now=now))
                .values_list("pk", "updated_at")
            )
            if queued is None:
                run = start_run(
                    kind=RunKind.REPAIR,
                    specialization=specialization,
                    triggered_by=triggered_by,
                    thresholds=thresholds,
                )
            else:
                run = _start_queued(queued, now=now)
            for pk, since in stale:
                _end(
                    pk,
                    RunState.INTERRUPTED,
                    STOPPED_REPORTING.format(
                        since=f"{since:%Y-%m-%d %H:%M:%S} UTC",
                        age=selectors.interrupted_after(),
                        run=run.pk,
                    ),
                )
            return run
    except RepairAlreadyRunning as exc:
        end_run(queued, RunState.FAILED, f"refused: {exc}")
        raise
    except OperationalError as exc:
        if getattr(exc.__cause__, "pgcode", None) == "55P03":  # lock_not_available
            busy = RepairClaimBusy(CLAIM_LOCK_TIMEOUT, first_line(exc))
            end_run(queued, RunState.FAILED, f"refused: {busy}")
            raise busy from exc
        raise


def _start_queued(run: HealthCheckRun, *, now) -> HealthCheckRun:
    """A queued run becomes the running claim: started now, by this process."""
    values = {
        "state": RunState.RUNNING,
        "host": socket.gethostname()[:255],
        "pid": os.getpid(),
        "started_at": now,
        "updated_at": now,
        "checked_at": now,
    }
    if not HealthCheckRun.objects.filter(pk=run.pk, state=RunState.QUEUED).update(**values):
        raise RunNotQueued(run.pk)
    for name, value in values.items():
        setattr(run, name, value)
    return run


def report_batch(run: HealthCheckRun, *, repaired: int, examined: int) -> None:
    """Inside a repair batch's transaction: add what it did and refresh the heartbeat.

    Raises ``RunTakenOver`` (rolling the batch back) when another repair has
    meanwhile marked this run interrupted: the claim is gone, so nothing more
    may be written under it.
    """
    now = timezone.now()
    updated = HealthCheckRun.objects.filter(pk=run.pk, state=RunState.RUNNING).update(
        repaired=F("repaired") + repaired, examined=F("examined") + examined, updated_at=now
    )
    if not updated:
        raise RunTakenOver(run.pk)
    run.repaired += repaired
    run.examined += examined
    run.updated_at = now


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


def end_run(run: HealthCheckRun | None, state: str, reason: str, **fields) -> None:
    """Best effort: mark a run interrupted or failed, on a fresh connection if need be.

    When even that fails (the database is gone), the run stays ``running`` and
    reads as interrupted once its heartbeat is old enough.
    """
    if run is None:
        return
    for attempt in range(2):
        try:
            if connection.in_atomic_block:
                return _end(run.pk, state, reason, **fields)  # the caller's transaction decides
            if attempt or not connection.is_usable():
                connection.close()  # a terminated connection: the next query reconnects
            _end(run.pk, state, reason, **fields)
            run.state, run.state_reason = state, reason[:500]
            return
        except DatabaseError:
            continue


def _end(pk: int, state: str, reason: str, **fields) -> int:
    now = timezone.now()
    unfinished = (RunState.QUEUED, RunState.RUNNING)
    return HealthCheckRun.objects.filter(pk=pk, state__in=unfinished).update(
        state=state, state_reason=reason[:500], finished_at=now, updated_at=now, **fields
    )
