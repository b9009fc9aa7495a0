"""The health monitor: run the desync check, record it, repair what it finds.

Built on ``licenses.consistency`` (the one desync definition). The check costs
a constant number of queries whatever the number of pairs: one aggregate
count, one capped sample (only when something is out of sync), the run's insert
as it starts and its update as it ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING

from django.db import connections
from django.utils import timezone

from licenses import consistency
from licenses.consistency import PairState
from specializations import ledger as progress_ledger
from specializations.catalogue import get_specialization
from specializations.ledger import LedgerMismatch

from . import runs
from .check_scope import check_scope
from .conf import app_settings
from .exceptions import (
    BadMaxReplicaLag,
    BadSampleSize,
    BadTimeout,
    ReplicaBehind,
    UnknownDatabase,
    reason_of,
)
from .health import Thresholds
from .limits import SECONDS, within
from .models import HealthCheckRun, RunKind, RunState
from .repair.options import RepairOptions
from .replica import replica_lag

if TYPE_CHECKING:
    from .repair.plan import RepairReport

# DESIGN.md's public name for what iter_violations yields (and HealthReport.violations
# holds): the one pair type, ``consistency.PairState``, whose kind is not "ok".
Violation = PairState


@dataclass(frozen=True, slots=True)
class HealthReport:
    total_checked: int
    consistent: int
    inconsistent: int
    by_kind: dict[str, int]
    consistency_rate: float
    status: str
    violations: list[Violation]
    duration_ms: int
    run: HealthCheckRun | None = None
    thresholds: Thresholds = field(default_factory=Thresholds.from_settings)
    specialization: str | None = None
    database: str = "default"
    replica_lag_seconds: float | None = None  # a replica check: how far it was behind
    # check_sync --ledger: progress rows compared with the sum of their events (None:
    # the ledger was not checked), those that differ, and a capped sample of the totals.
    ledger_checked: int | None = None
    ledger_mismatches: int | None = None
    ledger_violations: list[LedgerMismatch] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The JSON shape of ``check_sync --json`` (DESIGN.md field names)."""
        return {
            "total_checked": self.total_checked,
            "consistent": self.consistent,
            "inconsistent": self.inconsistent,
            "by_kind": dict(self.by_kind),
            "consistency_rate": self.consistency_rate,
            "status": str(self.status),
            "violations": [v.as_dict() for v in self.violations],
            "duration_ms": self.duration_ms,
            "run": self.run.pk if self.run else None,
            "thresholds": self.thresholds.as_dict(),
            "specialization": self.specialization,
            "database": self.database,
            "replica_lag_seconds": self.replica_lag_seconds,
            "ledger_checked": self.ledger_checked,
            "ledger_mismatches": self.ledger_mismatches,
            "ledger_violations": [m.as_dict() for m in self.ledger_violations],
        }


def consistency_rate(consistent: int, total: int) -> float:
    """Percent with two decimals, rounded down so a desync never shows as 100.00."""
    if total == 0:
        return 100.0
    rate = Decimal(consistent * 100) / Decimal(total)
    return float(rate.quantize(Decimal("0.01"), rounding=ROUND_DOWN))


def _check_target(specialization: str | None, using: str) -> str | None:
    """Refuse an unknown specialization or database alias; return the code to filter on."""
    if using not in connections:
        raise UnknownDatabase(using, list(connections))
    if specialization is None:
        return None
    return get_specialization(specialization, require_active=False).code


def run_health_check(
    *,
    specialization: str | None = None,
    record: bool = True,
    using: str = "default",
    thresholds: Thresholds | None = None,
    sample_size: int | None = None,
    timeout: float | None = None,
    repaired: int = 0,
    triggered_by=None,
    max_replica_lag: float | None = None,
    ledger: bool = False,
) -> HealthReport:
    """Count every pair by kind in the database and keep a capped sample of violations.

    On a replica, first measure how far it is behind its primary: beyond
    ``max_replica_lag`` seconds (default SYNC_MAX_REPLICA_LAG_SECONDS) its answer
    would be stale, so ``ReplicaBehind`` is raised and no finished run is
    recorded. A recorded check is created as it starts and ends done, or failed
    with the reason (``monitoring.runs``). With ``ledger``, it also compares every
    progress row's totals with the sum of its events (``specializations.ledger``),
    in the same scope and time limit; a mismatch makes it at least degraded.
    """
    specialization = _check_target(specialization, using)
    thresholds = thresholds or Thresholds.from_settings()
    if sample_size is None:
        sample_size = app_settings.SYNC_VIOLATION_SAMPLE_SIZE
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 0:
        raise BadSampleSize(sample_size)
    if timeout is not None and not within(timeout, SECONDS):
        raise BadTimeout(timeout)
    if max_replica_lag is None:
        max_replica_lag = app_settings.SYNC_MAX_REPLICA_LAG_SECONDS
    if not within(max_replica_lag, SECONDS):
        raise BadMaxReplicaLag(max_replica_lag)

    run = None
    if record:  # recorded as it starts; a check that cannot finish ends as failed
        run = runs.start_run(
            kind=RunKind.CHECK,
            specialization=specialization,
            database=using,
            triggered_by=triggered_by,
            thresholds=thresholds,
        )
    started = time.perf_counter()
    try:
        with check_scope(using, timeout=timeout):
            lag = replica_lag(using, allowed=max_replica_lag)
            if lag is not None and lag.seconds > max_replica_lag:
                raise ReplicaBehind(using, lag.seconds, limit=max_replica_lag, paused=lag.paused)
            counts, sample = consistency.check_pairs(
                specialization=specialization, sample_size=sample_size, using=using
            )
            ledger_check = None
            if ledger:
                ledger_check = progress_ledger.check_ledger(
                    specialization=specialization, sample_size=sample_size, using=using
                )
    except BaseException as exc:
        runs.end_run(run, RunState.FAILED, reason_of(exc))
        raise
    rate = consistency_rate(counts.consistent, counts.total)
    ledger_fields = {}
    if ledger_check is None:
        status = thresholds.status_for(rate)
    else:
        status = thresholds.status_for(
            rate,
            ledger_rate=consistency_rate(
                ledger_check.checked - ledger_check.mismatches, ledger_check.checked
            ),
            ledger_mismatches=ledger_check.mismatches,
        )
        ledger_fields = {
            "ledger_checked": ledger_check.checked,
            "ledger_mismatches": ledger_check.mismatches,
            "ledger_violations": ledger_check.sample,
        }
    duration_ms = round((time.perf_counter() - started) * 1000)

    report = HealthReport(
        total_checked=counts.total,
        consistent=counts.consistent,
        inconsistent=counts.inconsistent,
        by_kind=counts.by_kind,
        consistency_rate=rate,
        status=status,
        violations=sample,
        duration_ms=duration_ms,
        run=run,
        thresholds=thresholds,
        specialization=specialization,
        database=using,
        replica_lag_seconds=None if lag is None else lag.seconds,
        **ledger_fields,
    )
    if run is not None:
        runs.finish_run(run, check=report, repaired=repaired)
        prune_samples()
    return report


def prune_samples() -> int:
    """Empty the violation samples of runs older than SYNC_SAMPLE_RETENTION_DAYS.

    Cron records a run every few minutes; the totals stay (the trend and
    repairs_total read them), the samples of up to 1,000 rows each do not.
    """
    cutoff = timezone.now() - timedelta(days=app_settings.SYNC_SAMPLE_RETENTION_DAYS)
    return (
        HealthCheckRun.objects.filter(checked_at__lt=cutoff)
        .exclude(violations_sample=[], ledger_sample=[])
        .update(violations_sample=[], ledger_sample=[])
    )


def iter_violations(
    *, specialization: str | None = None, using: str = "default", chunk_size: int = 2000
) -> Iterator[Violation]:
    """Every current violation, streamed page by page; memory stays at one page."""
    specialization = _check_target(specialization, using)
    return consistency.stream_violations(
        specialization=specialization, using=using, chunk_size=chunk_size
    )


def repair(
    *,
    specialization: str | None = None,
    pairs: Iterable[tuple[int, str]] | None = None,
    dry_run: bool = False,
    repaired_by=None,
    reason: str = "",
    options: RepairOptions | None = None,
) -> RepairReport:
    """Repair every violation (or only ``pairs``) and record it as a run: the lower side moves up.

    The one "repair and record" for every entry point (``check_sync --repair``, the
    admin, a background job; ``monitoring.repair``). Refused with
    ``RepairAlreadyRunning`` while a repair over an overlapping scope runs (a dry
    run claims nothing). Works on the primary database in batches, each one short
    transaction that locks only the rows it writes, skips rows others hold (left
    for a retry and then reported as ``skipped_locked``), re-checks them with the
    one desync definition and reports to the run. A time limit, a signal or a
    database error stops it between batches with ``RepairInterrupted``; what was
    committed is kept and counted. Then a check of the same scope fills in the
    run's totals (``report.check``). How it runs (limits, record, hooks):
    ``RepairOptions``.
    """
    # Imported here: the check alone (cron's every-five-minutes job) never loads the
    # write side, which keeps check_sync's start-up short.
    from licenses.services import require_reason
    from specializations.services import require_existing_user

    from .repair.loop import repair_and_record

    specialization = _check_target(specialization, "default")
    if repaired_by is not None:
        require_existing_user(repaired_by, field="repaired_by")
    reason = require_reason(reason)
    options = (options or RepairOptions()).resolved()
    if pairs is None:
        keys = iter_violations(specialization=specialization)  # keyset pages, no cursor
    elif specialization is None:
        keys = pairs
    else:
        keys = (pair for pair in pairs if pair[1] == specialization)
    return repair_and_record(
        keys,
        specialization=specialization,
        dry_run=dry_run,
        repaired_by=repaired_by,
        reason=reason,
        options=options,
        check=lambda: run_health_check(
            record=False,
            specialization=specialization,
            thresholds=options.thresholds,
            timeout=options.timeout,
        ),
    )
