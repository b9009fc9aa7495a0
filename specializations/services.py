"""Writes of the progression domain: enrolment and earning progress.

The licence follows every progress change through the auto-sync receiver in
``licenses/signals.py``, inside the transaction opened here.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from .catalogue import get_specialization
from .exceptions import InvalidAmount, NegativeAmount, UnknownUser
from .models import SpecializationProgress


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """``new_level`` is the level the progress row ended at: the levels these
    amounts earned, or, when its licence was ahead, the licence's level (the
    auto-sync hook raises a lagging progress row)."""

    progress: SpecializationProgress
    old_level: int
    new_level: int

    @property
    def levels_gained(self) -> int:
        return self.new_level - self.old_level


def require_saved_user(user, *, field: str = "student") -> None:
    """Refuse an unsaved user object; cheap, no query."""
    if getattr(user, "pk", None) is None:
        raise UnknownUser(user, field=field)


def require_existing_user(user, *, field: str) -> None:
    """A saved user whose row still exists (one query): a clear error, not a foreign-key one."""
    require_saved_user(user, field=field)
    if not get_user_model()._default_manager.filter(pk=user.pk).exists():
        raise UnknownUser(user, field=field)


def require_amount(field: str, value, *, allow_negative: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAmount(field, value)
    if value < 0 and not allow_negative:
        raise NegativeAmount(field, value)
    return value


def lock_progress(student, specialization: str, *, enrol: bool) -> SpecializationProgress | None:
    """The progress row, locked FOR UPDATE; with ``enrol`` a missing row is created (level 1).

    Must run inside a transaction. A concurrent enrolment of the same pair is
    settled by the unique constraint: the loser waits for the winner's row and
    locks it.
    """
    rows = SpecializationProgress.objects.select_for_update()
    progress = rows.filter(student_id=student.pk, specialization_id=specialization).first()
    if progress is not None or not enrol:
        return progress
    if not get_user_model()._default_manager.filter(pk=student.pk).exists():
        raise UnknownUser(student)
    try:
        with transaction.atomic():
            return SpecializationProgress.objects.create(
                student_id=student.pk, specialization_id=specialization
            )
    except IntegrityError:
        progress = rows.filter(student_id=student.pk, specialization_id=specialization).first()
        if progress is None:  # not a lost race: a real constraint violation
            raise
        return progress


def enroll(student, specialization: str) -> SpecializationProgress:
    """Enrol ``student`` (idempotent): progress at level 1 and, through the hook, a licence."""
    info = get_specialization(specialization)
    require_saved_user(student)
    with transaction.atomic():
        return lock_progress(student, info.code, enrol=True)


def update_progress(
    student,
    specialization: str,
    *,
    xp_gained: int = 0,
    sessions_completed: int = 0,
    projects_completed: int = 0,
    theory_hours: int = 0,
    practice_hours: int = 0,
) -> ProgressUpdate:
    """Add earned amounts and gain every level the new totals reach (never lose one)."""
    info = get_specialization(specialization)
    require_saved_user(student)
    xp = require_amount("xp_gained", xp_gained)
    sessions = require_amount("sessions_completed", sessions_completed)
    projects = require_amount("projects_completed", projects_completed)
    theory = require_amount("theory_hours", theory_hours)
    practice = require_amount("practice_hours", practice_hours)

    with transaction.atomic():
        progress = lock_progress(student, info.code, enrol=True)
        old_level = progress.current_level
        progress.total_xp += xp
        progress.completed_sessions += sessions
        progress.completed_projects += projects
        progress.theory_hours_completed += theory
        progress.practice_hours_completed += practice
        progress.current_level = info.level_for(
            current=old_level,
            xp=progress.total_xp,
            sessions=progress.completed_sessions,
            projects=progress.completed_projects,
            theory=progress.theory_hours_completed,
            practice=progress.practice_hours_completed,
        )
        progress.last_activity = timezone.now()
        fields = [
            "total_xp",
            "completed_sessions",
            "completed_projects",
            "theory_hours_completed",
            "practice_hours_completed",
            "last_activity",
        ]
        if progress.current_level != old_level:
            fields.append("current_level")  # tells the auto-sync hook to move the licence
        progress.save(update_fields=fields)
    return ProgressUpdate(progress=progress, old_level=old_level, new_level=progress.current_level)
