"""Reads of recorded runs, shared by the health decision, the metrics and the admin."""

from django.db.models import Sum

from .models import HealthCheckRun


def latest_run() -> HealthCheckRun | None:
    """The latest run over every specialization (a filtered run says nothing of the rest)."""
    return HealthCheckRun.objects.filter(specialization="").order_by("-checked_at", "-id").first()


def total_repairs() -> int:
    return HealthCheckRun.objects.aggregate(total=Sum("repaired"))["total"] or 0
