"""A repair's claim: single flight, the queue before it, the heartbeat after every batch.

``claim_repair`` starts a repair only when no live repair over an overlapping
scope is running. Claims are serialized by a row lock on one ``RepairLease``
row, taken in a short transaction of their own: no advisory lock, no session
setting, so it works behind pgbouncer in transaction mode. A background
repair is first recorded as queued (``queue_repair``); its worker's claim
starts it. A claimed repair reports after every batch inside the batch's own
transaction (``report_batch``), so the record never counts more or less than
was committed.
"""

from __future__ import annotations

import os
import socket
from decimal import Decimal

from django.db import OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from common.text import Text, gettext_noop
from licenses.planner import LOCK_NOT_AVAILABLE, lock_timeout_scope

from .. import runs, selectors
from ..exceptions import (
    RepairAlreadyRunning,
    RepairClaimBusy,
    RunNotQueued,
    RunTakenOver,
    first_line,
)
from ..health import Thresholds
from ..models import HealthCheckRun, RepairLease, RunKind, RunState

CLAIM_LOCK_TIMEOUT = 1.0  # seconds; a claim holds the lease row for milliseconds
LEASE = "repair"
STOPPED_REPORTING = gettext_noop(
    "no report since %(since)s (more than %(age)s s): taken over by run %(run)s"
)
REFUSED = gettext_noop("refused: %(error)s")


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
                run = runs.start_run(
                    kind=RunKind.REPAIR,
                    specialization=specialization,
                    triggered_by=triggered_by,
                    thresholds=thresholds,
                )
            else:
                run = _start_queued(queued, now=now)
            for pk, since in stale:
                runs.mark_ended(
                    pk,
                    RunState.INTERRUPTED,
                    Text(
                        STOPPED_REPORTING,
                        since=f"{since:%Y-%m-%d %H:%M:%S} UTC",
                        age=selectors.interrupted_after(),
                        run=run.pk,
                    ),
                )
            return run
    except RepairAlreadyRunning as exc:
        runs.end_run(queued, RunState.FAILED, Text(REFUSED, error=exc.message))
        raise
    except OperationalError as exc:
        if getattr(exc.__cause__, "pgcode", None) == LOCK_NOT_AVAILABLE:
            busy = RepairClaimBusy(CLAIM_LOCK_TIMEOUT, first_line(exc))
            runs.end_run(queued, RunState.FAILED, Text(REFUSED, error=busy.message))
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
