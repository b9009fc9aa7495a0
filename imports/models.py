from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _

from monitoring.models import RunState


class ImportedRow(models.Model):
    """A source row this product imported: the row it became and a digest of what it held.

    A rerun compares each source row's digest with the one stored here, so it
    updates only what changed at the source and leaves local repairs alone.
    """

    source = models.CharField(max_length=50)
    table = models.CharField(max_length=50)
    source_id = models.BigIntegerField()
    target_id = models.BigIntegerField()
    digest = models.CharField(max_length=32)
    imported_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "table", "source_id"], name="imported_row_unique_source_row"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.table} {self.source_id} -> {self.target_id}"


class ImportKind(models.TextChoices):
    FILE = "file", _("File of progress events")
    SOURCE = "source", _("Replaced system's database")


class ImportRun(models.Model):
    """One import started from the admin, run by a background worker, recorded as it happens.

    Queued by the admin (who: ``triggered_by``; what: ``kind`` and the options), started
    by a worker (``host``, ``pid``, ``started_at``), its ``read`` counts and heartbeat
    (``updated_at``) refreshed while it runs, and ended done, failed or interrupted with
    ``report`` (what the import reported) and ``state_reason``. States are the runs' own
    (monitoring's RunState); a running run whose heartbeat is older than
    SYNC_RUN_INTERRUPTED_AFTER_SECONDS reads as interrupted, as a repair's does.
    """

    kind = models.CharField(_("kind"), max_length=10, choices=ImportKind.choices)
    state = models.CharField(
        _("state"), max_length=12, choices=RunState.choices, default=RunState.QUEUED
    )
    state_reason = models.TextField(
        _("state reason"), blank=True, help_text=_("Why it failed or was interrupted.")
    )
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("started by"),
    )
    # What is imported, and how.
    file_name = models.CharField(
        _("file"), max_length=255, blank=True, help_text=_("The uploaded file's name.")
    )
    stored_file = models.CharField(
        _("stored file"),
        max_length=500,
        blank=True,
        help_text=_("The upload in storage until its import has run (empty: deleted)."),
    )
    ledger_source = models.CharField(
        _("ledger source"),
        max_length=100,
        blank=True,
        help_text=_("The ledger source of the file's events."),
    )
    source_database = models.CharField(
        _("source database"),
        max_length=500,
        blank=True,
        help_text=_("The replaced system's database read (its password never shown)."),
    )
    dry_run = models.BooleanField(_("dry run"), default=False)
    skip_invalid = models.BooleanField(_("skip invalid rows"), default=False)
    # How far it has got.
    planned = models.PositiveBigIntegerField(
        _("lines in the file"), null=True, blank=True, help_text=_("Counted before reading.")
    )
    read = models.JSONField(
        _("read so far"),
        default=dict,
        blank=True,
        help_text=_("Lines of the file, or rows of each source table."),
    )
    report = models.JSONField(_("report"), default=dict, blank=True)
    # Where and when.
    host = models.CharField(_("host"), max_length=255, blank=True)
    pid = models.PositiveIntegerField(_("process id"), null=True, blank=True)
    job_id = models.CharField(
        _("job id"), max_length=64, blank=True, help_text=_("The background job's id.")
    )
    queued_at = models.DateTimeField(_("queued at"), db_default=Now())
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    updated_at = models.DateTimeField(
        _("updated at"),
        db_default=Now(),
        help_text=_("Heartbeat: refreshed while the import runs."),
    )
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("import run")
        verbose_name_plural = _("import runs")
        ordering = ["-queued_at", "-id"]

    def __str__(self) -> str:
        what = self.file_name if self.kind == ImportKind.FILE else self.get_kind_display()
        return f"{self.queued_at:%Y-%m-%d %H:%M:%S} {what}"
