"""Reads of recorded runs, shared by the health endpoint, metrics and the admin."""

from datetime import datetime

from django.conf import settings
from django.db.models import Sum

from .models import HealthCheckRun


def latest_run() -> HealthCheckRun | None:
    """The latest run over every specialization (a filtered run says nothing of the rest)."""
    return HealthCheckRun.objects.filter(specialization="").order_by("-checked_at", "-id").first()


def run_age_seconds(run: HealthCheckRun, *, now: datetime) -> float:
    return max(0.0, (now - run.checked_at).total_seconds())


def is_stale(run: HealthCheckRun | None, *, now: datetime) -> bool:
    return run is None or run_age_seconds(run, now=now) > settings.SYNC_STALE_AFTER_SECONDS


def total_repairs() -> int:
    return HealthCheckRun.objects.aggregate(total=Sum("repaired"))["total"] or 0


def run_summary(run: HealthCheckRun | None, *, now: datetime) -> dict:
    if run is None:
        return {
            "status": "unknown",
            "stale": True,
            "last_check": None,
            "detail": "no check has been recorded yet",
        }
    return {
        "status": run.status,
        "consistency_rate": float(run.consistency_rate),
        "total_checked": run.total_checked,
        "consistent": run.consistent,
        "inconsistent": run.inconsistent,
        "by_kind": run.by_kind,
        "specialization": run.specialization or None,
        "last_check": run.checked_at.isoformat(),
        "age_seconds": round(run_age_seconds(run, now=now), 1),
        "stale": is_stale(run, now=now),
        "stale_after_seconds": settings.SYNC_STALE_AFTER_SECONDS,
        "duration_ms": run.duration_ms,
        "run": run.pk,
    }
