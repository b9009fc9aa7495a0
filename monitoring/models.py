from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from common.text import Text
from licenses.consistency import VIOLATION_CHOICES, VIOLATION_KINDS, Kind
from specializations.models import CODE_MAX_LENGTH

from .limits import RATE
from .status import Status


class RunKind(models.TextChoices):
    CHECK = "check", _("Check")
    REPAIR = "repair", _("Repair")


class RunState(models.TextChoices):
    QUEUED = "queued", _("Queued")  # a background repair waiting for a worker
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    INTERRUPTED = "interrupted", _("Interrupted")
    FAILED = "failed", _("Failed")


class HealthCheckRun(models.Model):
    """One run of the desync check or of a repair, recorded as it happens.

    Created when it starts (``state`` running; who: ``triggered_by``, empty for
    cron or the system; where: ``host`` and ``pid``; what: ``kind``,
    ``specialization``, ``dry_run``; a background repair is first ``queued``), its
    ``updated_at`` and counts refreshed in every committed repair batch, and
    finished as done (the totals are the check at the end), interrupted or failed
    (``state_reason`` says why in English, ``shown_reason`` in the reader's language).
    A running run whose ``updated_at`` is older than
    SYNC_RUN_INTERRUPTED_AFTER_SECONDS reads as interrupted
    (``selectors.run_state``). The totals are empty until a check has completed.
    """

    kind = models.CharField(
        _("kind"), max_length=10, choices=RunKind.choices, default=RunKind.CHECK
    )
    state = models.CharField(
        _("state"), max_length=12, choices=RunState.choices, default=RunState.DONE
    )
    state_reason = models.CharField(
        _("state reason"),
        max_length=500,
        blank=True,
        help_text=_("Why it was interrupted or failed."),
    )
    state_reason_message = models.JSONField(
        _("state reason (as a message)"),
        null=True,
        blank=True,
        help_text=_(
            "The reason as a catalogue entry and its values, shown in the reader's language."
        ),
    )
    dry_run = models.BooleanField(_("dry run"), default=False)
    host = models.CharField(_("host"), max_length=255, blank=True)
    pid = models.PositiveIntegerField(_("process id"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), db_default=Now())
    updated_at = models.DateTimeField(
        _("updated at"),
        db_default=Now(),
        help_text=_("Heartbeat: refreshed with every committed repair batch."),
    )
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # A background repair (monitoring/tasks.py): queued by the admin, run by a worker.
    queued_at = models.DateTimeField(_("queued at"), null=True, blank=True)
    job_id = models.CharField(
        _("job id"), max_length=64, blank=True, help_text=_("The background job's id.")
    )
    planned = models.PositiveIntegerField(
        _("planned"),
        null=True,
        blank=True,
        help_text=_("Pairs a background repair was asked to look at."),
    )
    examined = models.PositiveIntegerField(
        _("examined"), default=0, help_text=_("Pairs a repair has looked at.")
    )
    skipped_locked = models.PositiveIntegerField(
        _("skipped (locked)"),
        default=0,
        help_text=_("Pairs a repair left because another transaction held their rows."),
    )
    skipped_sample = models.JSONField(_("skipped (sample)"), default=list, blank=True)
    checked_at = models.DateTimeField(_("checked at"), db_default=Now(), db_index=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    database = models.CharField(_("database"), max_length=100, default="default")
    replica_lag_seconds = models.FloatField(
        _("replica lag (s)"),
        null=True,
        blank=True,
        help_text=_("How far the checked replica was behind its primary (empty: the primary)."),
    )
    specialization = models.CharField(
        _("specialization"),
        max_length=CODE_MAX_LENGTH,
        blank=True,
        help_text=_("Empty: every specialization."),
    )
    total_checked = models.PositiveBigIntegerField(_("pairs checked"), null=True, blank=True)
    consistent = models.PositiveBigIntegerField(_("consistent"), null=True, blank=True)
    inconsistent = models.PositiveBigIntegerField(_("inconsistent"), null=True, blank=True)
    level_mismatch = models.PositiveBigIntegerField(Kind.LEVEL_MISMATCH.label, default=0)
    missing_license = models.PositiveBigIntegerField(Kind.MISSING_LICENSE.label, default=0)
    missing_progress = models.PositiveBigIntegerField(Kind.MISSING_PROGRESS.label, default=0)
    consistency_rate = models.DecimalField(
        _("consistency rate"), max_digits=5, decimal_places=2, null=True, blank=True
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, blank=True)
    warn_below = models.DecimalField(_("warn below"), max_digits=5, decimal_places=2)
    critical_below = models.DecimalField(_("critical below"), max_digits=5, decimal_places=2)
    violations_sample = models.JSONField(_("violations (sample)"), default=list, blank=True)
    # check_sync --ledger (empty: the run did not check the ledger).
    ledger_checked = models.PositiveBigIntegerField(
        _("ledger rows checked"),
        null=True,
        blank=True,
        help_text=_("Progress rows compared with the sum of their events."),
    )
    ledger_mismatches = models.PositiveBigIntegerField(
        _("ledger mismatches"),
        null=True,
        blank=True,
        help_text=_("Progress rows whose totals differ from their ledger."),
    )
    ledger_sample = models.JSONField(_("ledger (sample)"), default=list, blank=True)
    repaired = models.PositiveIntegerField(
        _("repaired"),
        default=0,
        help_text=_("Pairs this run changed, in its committed batches (each pair counted once)."),
    )
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("triggered by"),
        help_text=_("Empty: cron or the system."),
    )

    class Meta:
        verbose_name = _("health check run")
        verbose_name_plural = _("health check runs")
        ordering = ["-checked_at", "-id"]
        get_latest_by = ["checked_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(consistent__lte=models.F("total_checked")),
                name="healthcheckrun_consistent_lte_total",
            ),
            models.CheckConstraint(
                condition=Q(consistency_rate__gte=RATE[0]) & Q(consistency_rate__lte=RATE[1]),
                name="healthcheckrun_rate_0_100",
            ),
        ]
        indexes = [
            # The single-flight claim and the admin look for running repairs only.
            models.Index(
                fields=["kind", "specialization"],
                condition=Q(state="running"),
                name="healthcheckrun_running_idx",
            ),
        ]

    def __str__(self) -> str:
        # The run page's title: the kind, state and status as the active language names them.
        if self.state != RunState.DONE:
            kind, state = self.get_kind_display(), self.get_state_display()
            return f"{self.started_at:%Y-%m-%d %H:%M:%S} {str(kind).lower()} {str(state).lower()}"
        status = str(self.get_status_display()).lower()
        rate = number_format(self.consistency_rate, decimal_pos=2)
        return f"{self.checked_at:%Y-%m-%d %H:%M:%S} {status} {rate}%"

    @property
    def shown_reason(self) -> str:
        """The reason in the active language; as recorded when it was not a Text (a
        database's error) or came before Texts were recorded."""
        if self.state_reason_message:
            return str(Text.from_json(self.state_reason_message))
        return self.state_reason

    @property
    def by_kind(self) -> dict[str, int]:
        # One counter field per violation kind, named after it.
        return {kind: getattr(self, kind) for kind in VIOLATION_KINDS}


class RepairLease(models.Model):
    """The one row a repair's claim locks for a moment (``repair.claim.claim_repair``).

    Claims are serialized on it, so two repairs started together cannot both see
    "no repair running"; who holds the repair is read from the running runs.
    """

    name = models.CharField(primary_key=True, max_length=20)

    def __str__(self) -> str:
        return self.name


class DesyncCase(models.Model):
    """One live desync, read from a database view over ``licenses.consistency``.

    Unmanaged: the view (see ``monitoring/db_views.py``) is recreated after
    every ``migrate`` from the one desync query, so it cannot drift from it.
    The key is ``"<user_id>:<specialization>"``; the admin's Desync cases page
    is built on this model.
    """

    id = models.CharField(primary_key=True, max_length=20 + 1 + CODE_MAX_LENGTH)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        verbose_name=_("user"),
    )
    specialization = models.ForeignKey(
        "specializations.Specialization",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        verbose_name=_("specialization"),
    )
    progress_level = models.PositiveSmallIntegerField(_("progress level"), null=True)
    license_level = models.PositiveSmallIntegerField(_("licence level"), null=True)
    kind = models.CharField(_("kind"), max_length=20, choices=VIOLATION_CHOICES)

    class Meta:
        managed = False
        db_table = "monitoring_desynccase"
        verbose_name = _("desync case")
        verbose_name_plural = _("desync cases")
        ordering = ["user_id", "specialization_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "specialization"], name="desynccase_unique_pair"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id}/{self.specialization_id} {self.get_kind_display()}"
