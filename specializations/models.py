from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models, router, transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _

CODE_MAX_LENGTH = 50
# \A and \Z, not ^ and $: in Python (and so in SQLite's REGEXP) "$" also matches
# before a trailing newline. PostgreSQL's regular expressions read them alike.
CODE_PATTERN = r"\A[A-Z][A-Z0-9_]{0,49}\Z"
CODE_FORMAT = "an upper-case letter, then up to 49 upper-case letters, digits or underscores"
validate_code = RegexValidator(
    CODE_PATTERN,
    message=_(
        "A specialization code is an upper-case letter, then up to 49 upper-case letters, "
        "digits or underscores (e.g. LFA_COACH)."
    ),
)


def shown_level_name(name: str, name_en: str) -> str:
    """A level's name as the active language shows it: the catalogue's names are data.

    Stored as loaded: ``name`` as the file names it (Hungarian in the replaced system's
    files) and ``name_en`` beside it when the file has one. An English page shows
    ``name_en`` where there is one; every other language (Hungarian) shows ``name``.
    """
    language = get_language() or ""
    return name_en if name_en and language.startswith("en") else name


class Specialization(models.Model):
    """A catalogue entry: any academy's specialization, loaded from its files or the admin."""

    code = models.CharField(
        primary_key=True,
        max_length=CODE_MAX_LENGTH,
        validators=[validate_code],
        verbose_name=_("code"),
        help_text=_("Fixed once created: progress, licences and history point at it."),
    )
    name = models.CharField(_("display name"), max_length=100)
    description = models.TextField(_("description"), blank=True, default="")
    max_level = models.PositiveSmallIntegerField(_("highest level"))
    is_active = models.BooleanField(
        _("active"),
        default=True,
        help_text=_("Inactive: no progress can be recorded in it; nothing is deleted."),
    )
    extra = models.JSONField(
        _("other keys"),
        default=dict,
        blank=True,
        help_text=_("The catalogue file's other top-level keys, kept as loaded (not used)."),
    )

    class Meta:
        verbose_name = _("specialization")
        verbose_name_plural = _("specializations")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_level__gte=1), name="specialization_max_level_gte_1"
            ),
            models.CheckConstraint(
                condition=Q(code__regex=CODE_PATTERN), name="specialization_code_format"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Level(models.Model):
    """What it takes to *reach* level ``number`` of a specialization."""

    specialization = models.ForeignKey(
        Specialization,
        on_delete=models.CASCADE,
        related_name="levels",
        verbose_name=_("specialization"),
    )
    number = models.PositiveSmallIntegerField(_("level"))
    name = models.CharField(
        _("name"), max_length=100, help_text=_("As the catalogue file names it.")
    )
    # The file's English name beside it (the replaced system's files name levels in
    # Hungarian and give `name_en`); empty when the file has none.
    name_en = models.CharField(_("English name"), max_length=100, blank=True, default="")
    description = models.TextField(_("description"), blank=True, default="")
    # Checked requirements: what level_for compares with a student's totals.
    required_xp = models.PositiveIntegerField(_("required XP"))
    required_sessions = models.PositiveIntegerField(_("required sessions"))
    required_projects = models.PositiveIntegerField(_("required projects"), default=0)
    theory_hours = models.PositiveIntegerField(_("theory hours"), default=0)
    practice_hours = models.PositiveIntegerField(_("practice hours"), default=0)
    total_hours = models.PositiveIntegerField(_("total hours"), default=0)
    license_title = models.CharField(_("licence title"), max_length=150)
    unchecked_requirements = models.JSONField(
        _("unchecked requirements"),
        default=dict,
        blank=True,
        help_text=_("Requirements kept from the catalogue file and not checked by the product."),
    )
    extra = models.JSONField(
        _("other keys"),
        default=dict,
        blank=True,
        help_text=_("The file's other keys for this level, kept as loaded (not used)."),
    )

    class Meta:
        verbose_name = _("level")
        verbose_name_plural = _("levels")
        ordering = ["specialization", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["specialization", "number"], name="level_unique_per_specialization"
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="level_number_gte_1"),
        ]

    def __str__(self) -> str:
        return f"{self.specialization_id} {self.number}: {self.shown_name}"

    @property
    def shown_name(self) -> str:
        """``name_en`` on an English page where the file gave one, else ``name``."""
        return shown_level_name(self.name, self.name_en)


class SpecializationProgress(models.Model):
    """The source of truth: what a student has earned in one specialization."""

    # No index of their own: every event updates this table, and each index is one more
    # entry per new row version. The unique (student, specialization) constraint serves
    # the student's foreign key, progress_spec_level_idx the specialization's.
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="specialization_progress",
        verbose_name=_("student"),
        db_index=False,
    )
    specialization = models.ForeignKey(
        Specialization,
        on_delete=models.PROTECT,
        related_name="progress",
        verbose_name=_("specialization"),
        db_index=False,
    )
    current_level = models.PositiveSmallIntegerField(_("current level"), default=1)
    total_xp = models.BigIntegerField(_("total XP"), default=0)
    completed_sessions = models.IntegerField(_("completed sessions"), default=0)
    completed_projects = models.IntegerField(_("completed projects"), default=0)
    theory_hours_completed = models.IntegerField(_("theory hours completed"), default=0)
    practice_hours_completed = models.IntegerField(_("practice hours completed"), default=0)
    last_activity = models.DateTimeField(_("last activity"), default=None, null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), db_default=Now())

    class Meta:
        verbose_name = _("specialization progress")
        verbose_name_plural = _("specialization progress")
        constraints = [
            models.UniqueConstraint(
                fields=["student", "specialization"], name="progress_unique_student_specialization"
            ),
            models.CheckConstraint(condition=Q(current_level__gte=1), name="progress_level_gte_1"),
            models.CheckConstraint(condition=Q(total_xp__gte=0), name="progress_xp_gte_0"),
            models.CheckConstraint(
                condition=Q(completed_sessions__gte=0), name="progress_sessions_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(completed_projects__gte=0), name="progress_projects_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(theory_hours_completed__gte=0), name="progress_theory_hours_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(practice_hours_completed__gte=0), name="progress_practice_hours_gte_0"
            ),
        ]
        indexes = [
            # Covering index for the desync join: an index-only scan in (user, spec) order.
            models.Index(
                fields=["student", "specialization"],
                include=["current_level"],
                name="progress_sync_cover_idx",
            ),
            models.Index(
                fields=["specialization", "current_level"], name="progress_spec_level_idx"
            ),
        ]

    def __str__(self) -> str:
        # The admin's titles, breadcrumbs and delete confirmations show it: translated.
        return gettext("%(student)s/%(specialization)s progress L%(level)s") % {
            "student": self.student_id,
            "specialization": self.specialization_id,
            "level": self.current_level,
        }

    def save(self, *args, **kwargs):
        # post_save fires after Model.save() has written the row; the auto-sync
        # receiver must share its transaction so a failing licence write undoes it.
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            super().save(*args, **kwargs)


class ProgressEvent(models.Model):
    """One change of a progress row's totals: the ledger the totals are the sum of.

    Written by ``services.update_progress`` in the transaction that changes the
    totals (and by ``update_level_atomic`` for its amounts). Rows that existed
    before the ledger have one ``opening`` event each (migration 0003). A key is
    unique per source: the same (source, idempotency_key) again is a replay.
    """

    # No database constraint: the ledger is history, so a progress row deleted behind the
    # ORM's back (raw SQL, a restore) leaves its events instead of failing at commit;
    # check_sync --ledger sums events from the rows that exist. Deleting through the ORM
    # takes them along (one DELETE: events have no dependents).
    progress = models.ForeignKey(
        SpecializationProgress,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,  # the ledger index below leads with it
        db_constraint=False,
        verbose_name=_("progress"),
    )
    source = models.CharField(
        _("source"),
        max_length=100,
        help_text=_("Who sent it: system, admin, an API client, import:<file>."),
    )
    # NULL, not "": keyless events never collide in the unique constraint (NULLs are distinct).
    idempotency_key = models.CharField(  # noqa: DJ001
        _("idempotency key"),
        max_length=255,
        null=True,
        blank=True,
        help_text=_("Unique per source; empty: a call that asked for no replay protection."),
    )
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # a partial index below: most events have no actor
        verbose_name=_("actor"),
        help_text=_("Empty: the system or a client."),
    )
    occurred_at = models.DateTimeField(
        _("occurred at"), help_text=_("When it happened, as the sender says.")
    )
    recorded_at = models.DateTimeField(_("recorded at"), db_default=Now())
    level_before = models.PositiveSmallIntegerField(_("level before"))
    level_after = models.PositiveSmallIntegerField(_("level after"))
    # as wide as total_xp: the opening event
    xp_gained = models.BigIntegerField(_("XP gained"), default=0)
    sessions_completed = models.IntegerField(_("sessions completed"), default=0)
    projects_completed = models.IntegerField(_("projects completed"), default=0)
    theory_hours = models.IntegerField(_("theory hours"), default=0)
    practice_hours = models.IntegerField(_("practice hours"), default=0)

    class Meta:
        verbose_name = _("progress event")
        verbose_name_plural = _("progress events")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "idempotency_key"], name="progressevent_unique_source_key"
            ),
        ]
        indexes = [
            # One index for the foreign key, the admin's newest-first key pages of one
            # row, and check_sync --ledger's sums: an index-only scan in progress order.
            models.Index(
                fields=["progress", "id"],
                include=[
                    "xp_gained",
                    "sessions_completed",
                    "projects_completed",
                    "theory_hours",
                    "practice_hours",
                ],
                name="progressevent_ledger_idx",
            ),
            models.Index(
                fields=["actor"],
                condition=Q(actor__isnull=False),
                name="progressevent_actor_idx",
            ),
        ]

    def __str__(self) -> str:
        return gettext("%(source)s/%(key)s on progress %(progress)s") % {
            "source": self.source,
            "key": self.idempotency_key or "-",
            "progress": self.progress_id,
        }

    def amounts(self) -> dict[str, int]:
        """The five amounts by their update_progress keyword names."""
        return {name: getattr(self, name) for name, _ in LEDGER_FIELDS}


# The five amounts of an event and the total each one adds to: (event field, progress field).
LEDGER_FIELDS = (
    ("xp_gained", "total_xp"),
    ("sessions_completed", "completed_sessions"),
    ("projects_completed", "completed_projects"),
    ("theory_hours", "theory_hours_completed"),
    ("practice_hours", "practice_hours_completed"),
)


class ExternalId(models.Model):
    """The id a sending system knows a student by: unique per source."""

    source = models.CharField(_("source"), max_length=100)
    external_id = models.CharField(_("external id"), max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="external_ids",
        verbose_name=_("user"),
    )
    created_at = models.DateTimeField(_("created at"), db_default=Now())

    class Meta:
        verbose_name = _("external id")
        verbose_name_plural = _("external ids")
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], name="externalid_unique_per_source"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id} -> {self.user_id}"
