from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from licenses.consistency import VIOLATION_KINDS


class Status(models.TextChoices):
    HEALTHY = "healthy", "Healthy"
    DEGRADED = "degraded", "Degraded"
    CRITICAL = "critical", "Critical"


class HealthCheckRun(models.Model):
    """One recorded run of the desync check (cron, admin button or API)."""

    checked_at = models.DateTimeField(db_default=Now(), db_index=True)
    duration_ms = models.PositiveIntegerField()
    database = models.CharField(max_length=100, default="default")
    replica_lag_seconds = models.FloatField(
        null=True,
        blank=True,
        help_text="How far the checked replica was behind its primary (empty: the primary).",
    )
    specialization = models.CharField(
        max_length=20, blank=True, help_text="Empty: every specialization."
    )
    total_checked = models.PositiveBigIntegerField()
    consistent = models.PositiveBigIntegerField()
    inconsistent = models.PositiveBigIntegerField()
    level_mismatch = models.PositiveBigIntegerField(default=0)
    missing_license = models.PositiveBigIntegerField(default=0)
    missing_progress = models.PositiveBigIntegerField(default=0)
    consistency_rate = models.DecimalField(max_digits=5, decimal_places=2)
    status = models.CharField(max_length=10, choices=Status.choices)
    warn_below = models.DecimalField(max_digits=5, decimal_places=2)
    critical_below = models.DecimalField(max_digits=5, decimal_places=2)
    violations_sample = models.JSONField(default=list, blank=True)
    repaired = models.PositiveIntegerField(
        default=0, help_text="Pairs repaired just before this run (check_sync --repair, admin)."
    )
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: cron or the system.",
    )

    class Meta:
        ordering = ["-checked_at", "-id"]
        get_latest_by = ["checked_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(consistent__lte=models.F("total_checked")),
                name="healthcheckrun_consistent_lte_total",
            ),
            models.CheckConstraint(
                condition=Q(consistency_rate__gte=0) & Q(consistency_rate__lte=100),
                name="healthcheckrun_rate_0_100",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.checked_at:%Y-%m-%d %H:%M:%S} {self.status} {self.consistency_rate}%"

    @property
    def by_kind(self) -> dict[str, int]:
        # One counter field per violation kind, named after it.
        return {kind: getattr(self, kind) for kind in VIOLATION_KINDS}


class DesyncCase(models.Model):
    """One live desync, read from a database view over ``licenses.consistency``.

    Unmanaged: the view (see ``monitoring/desync_view.py``) is recreated after
    every ``migrate`` from the one desync query, so it cannot drift from it.
    The key is ``"<user_id>:<specialization>"``; the admin's Desync cases page
    is built on this model.
    """

    id = models.CharField(primary_key=True, max_length=40)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    specialization = models.ForeignKey(
        "specializations.Specialization",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    progress_level = models.PositiveSmallIntegerField(null=True)
    license_level = models.PositiveSmallIntegerField("licence level", null=True)
    kind = models.CharField(
        max_length=20,
        choices=[
            ("level_mismatch", "Level mismatch"),
            ("missing_license", "Missing licence"),
            ("missing_progress", "Missing progress"),
        ],
    )

    class Meta:
        managed = False
        db_table = "monitoring_desynccase"
        verbose_name = "desync case"
        ordering = ["user_id", "specialization_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "specialization"], name="desynccase_unique_pair"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id}/{self.specialization_id} {self.kind}"
