"""Reads of recorded runs, shared by the health decision, the metrics and the admin."""

from datetime import datetime, timedelta

from django.db.models import Q, QuerySet, Sum

from .conf import app_settings
from .models import HealthCheckRun, RunKind, RunState


def latest_run(*, specialization: str | None = None) -> HealthCheckRun | None:
    """The latest finished check over every specialization (a repair's check after it counts),
    or over exactly ``specialization``.

    A filtered run says nothing of the rest; a running, interrupted or failed run
    has no totals to go by.
    """
    return (
        HealthCheckRun.objects.filter(specialization=specialization or "", state=RunState.DONE)
        # The samples (up to SYNC_VIOLATION_SAMPLE_SIZE rows of JSON) are for the admin's
        # run page: every probe and scrape reads this, and needs the totals only.
        .defer("violations_sample", "skipped_sample", "ledger_sample")
        .order_by("-checked_at", "-id")
        .first()
    )


def total_repairs() -> int:
    return HealthCheckRun.objects.aggregate(total=Sum("repaired"))["total"] or 0


# --- Runs in progress (the lifecycle: see monitoring/runs.py) ---


def interrupted_after() -> int:
    """Seconds without a report after which a running run reads as interrupted."""
    return app_settings.SYNC_RUN_INTERRUPTED_AFTER_SECONDS


def interrupted_cutoff(*, now: datetime) -> datetime:
    return now - timedelta(seconds=interrupted_after())


def run_state(run: HealthCheckRun, *, now: datetime) -> str:
    """The state as readers should take it: a silent running run is interrupted."""
    if run.state == RunState.RUNNING and run.updated_at < interrupted_cutoff(now=now):
        return RunState.INTERRUPTED
    return run.state


def running_repairs(*, specialization: str | None = None) -> QuerySet[HealthCheckRun]:
    """Repairs marked running whose scope overlaps ``specialization`` (None: every one).

    Every specialization ("") overlaps everything; PLAYER and COACH do not
    overlap. Dry runs write nothing and hold nothing. Includes runs that have
    stopped reporting: filter on ``updated_at`` against ``interrupted_cutoff``.
    """
    runs = HealthCheckRun.objects.filter(kind=RunKind.REPAIR, state=RunState.RUNNING, dry_run=False)
    if specialization:
        runs = runs.filter(Q(specialization="") | Q(specialization=specialization))
    return runs.select_related("triggered_by")


def repair_holder(*, specialization: str | None = None, now: datetime) -> HealthCheckRun | None:
    """The live repair that a new repair over ``specialization`` would be refused for."""
    live = running_repairs(specialization=specialization)
    return live.filter(updated_at__gte=interrupted_cutoff(now=now)).order_by("started_at").first()


def describe_run(run: HealthCheckRun) -> str:
    """Who, where, since when and over what: for refusals and the admin."""
    who = run.triggered_by.get_username() if run.triggered_by_id else "system"
    return (
        f"run {run.pk} by {who} on {run.host or '?'} pid {run.pid or '?'}"
        f" since {run.started_at:%Y-%m-%d %H:%M:%S} UTC, scope {run.specialization or 'all'}"
    )
