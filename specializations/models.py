from django.conf import settings
from django.db import models, router, transaction
from django.db.models import Q
from django.db.models.functions import Now


class SpecializationCode(models.TextChoices):
    PLAYER = "PLAYER", "GanCuju player"
    COACH = "COACH", "Football coach"
    INTERNSHIP = "INTERNSHIP", "Startup internship"


class Specialization(models.Model):
    code = models.CharField(primary_key=True, max_length=20, choices=SpecializationCode.choices)
    name = models.CharField(max_length=100)
    max_level = models.PositiveSmallIntegerField()
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_level__gte=1), name="specialization_max_level_gte_1"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Level(models.Model):
    """What it takes to *reach* level ``number`` of a specialization."""

    specialization = models.ForeignKey(
        Specialization, on_delete=models.CASCADE, related_name="levels"
    )
    number = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100)
    required_xp = models.PositiveIntegerField()
    required_sessions = models.PositiveIntegerField()
    theory_hours = models.PositiveIntegerField(default=0)
    practice_hours = models.PositiveIntegerField(default=0)
    total_hours = models.PositiveIntegerField(default=0)
    license_title = models.CharField(max_length=150)

    class Meta:
        ordering = ["specialization", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["specialization", "number"], name="level_unique_per_specialization"
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="level_number_gte_1"),
        ]

    def __str__(self) -> str:
        return f"{self.specialization_id} {self.number}: {self.name}"


class SpecializationProgress(models.Model):
    """The source of truth: what a student has earned in one specialization."""

    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="specialization_progress"
    )
    specialization = models.ForeignKey(
        Specialization, on_delete=models.PROTECT, related_name="progress"
    )
    current_level = models.PositiveSmallIntegerField(default=1)
    total_xp = models.BigIntegerField(default=0)
    completed_sessions = models.IntegerField(default=0)
    completed_projects = models.IntegerField(default=0)
    theory_hours_completed = models.IntegerField(default=0)
    practice_hours_completed = models.IntegerField(default=0)
    last_activity = models.DateTimeField(default=None, null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        verbose_name_plural = "specialization progress"
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
        return f"{self.student_id}/{self.specialization_id} progress L{self.current_level}"

    def save(self, *args, **kwargs):
        # post_save fires after Model.save() has written the row; the auto-sync
        # receiver must share its transaction so a failing licence write undoes it.
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            super().save(*args, **kwargs)
