"""Writes that keep a licence coupled to its progress row.

Lock order everywhere: the progress row, then the licence row. Every change
of a licence level writes a LicenseProgression row in the same transaction.
"""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from specializations.catalogue import get_specialization
from specializations.exceptions import LevelOutOfRange, NegativeAmount, NotEnrolled
from specializations.models import SpecializationProgress
from specializations.services import (  # require_reason: imported from here by others
    ADMIN_SOURCE,
    SYSTEM_SOURCE,
    lock_progress,
    record_event,
    require_amount,
    require_existing_user,
    require_reason,
    require_saved_user,
)

from . import consistency
from .models import LicenseProgression, UserLicense

AUTO_SYNC_REASON = "Auto-sync from progress"
ISSUED_REASON = "Licence issued on enrolment"
SYNC_FROM_PROGRESS_REASON = "Sync from progress"
MANUAL_LEVEL_REASON = "Level set manually"

CREATED, UPDATED, NONE = "created", "updated", "none"
ABSENT = "absent"


@dataclass(frozen=True, slots=True)
class SyncResult:
    action: str  # "created" | "updated" | "none"
    progress_level: int
    license_level: int


@dataclass(frozen=True, slots=True)
class AtomicUpdate:
    progress: SpecializationProgress
    license: UserLicense
    progression: LicenseProgression | None


@dataclass(frozen=True, slots=True)
class Consistency:
    kind: str  # "ok" | "level_mismatch" | "missing_license" | "missing_progress" | "absent"
    progress_level: int | None
    license_level: int | None

    @property
    def consistent(self) -> bool:
        return self.kind in (consistency.OK, ABSENT)


def lock_license(user_id: int, specialization: str) -> UserLicense | None:
    return (
        UserLicense.objects.select_for_update()
        .filter(user_id=user_id, specialization_id=specialization)
        .first()
    )


def new_license(user_id: int, specialization: str, *, level: int) -> UserLicense:
    """An unsaved licence at ``level`` (``started_at`` comes from the database)."""
    return UserLicense(
        user_id=user_id,
        specialization_id=specialization,
        current_level=level,
        max_achieved_level=level,
    )


def issuance(license: UserLicense, *, by=None, reason: str) -> LicenseProgression:
    """The unsaved audit row of a licence created at its current level."""
    return LicenseProgression(
        license=license,
        from_level=None,
        to_level=license.current_level,
        advanced_by=by,
        reason=reason,
    )


def advance(license: UserLicense, *, to_level: int, by=None, reason: str) -> LicenseProgression:
    """Apply a level change to a locked licence in memory; return its unsaved audit row.

    The licence rules live here, for ``move_license`` and for repair's bulk
    writes alike: ``max_achieved_level`` never drops, ``last_advanced_at`` is now.
    """
    entry = LicenseProgression(
        license=license,
        from_level=license.current_level,
        to_level=to_level,
        advanced_by=by,
        reason=reason,
    )
    license.current_level = to_level
    license.max_achieved_level = max(license.max_achieved_level, to_level)
    license.last_advanced_at = timezone.now()
    return entry


ADVANCED_FIELDS = ["current_level", "max_achieved_level", "last_advanced_at"]


def issue_license(
    user_id: int, specialization: str, *, level: int, by=None, reason: str
) -> tuple[UserLicense, LicenseProgression]:
    license = new_license(user_id, specialization, level=level)
    license.save(force_insert=True)
    progression = issuance(license, by=by, reason=reason)
    progression.save(force_insert=True)
    return license, progression


def move_license(
    license: UserLicense, *, to_level: int, by=None, reason: str
) -> LicenseProgression | None:
    """Set a locked licence to ``to_level`` with an audit row (None when already there)."""
    if license.current_level == to_level:
        return None
    entry = advance(license, to_level=to_level, by=by, reason=reason)
    license.save(update_fields=ADVANCED_FIELDS)
    entry.save(force_insert=True)
    return entry


def license_follow_progress(progress: SpecializationProgress, *, created: bool) -> None:
    """The auto-sync hook's work, inside the transaction that saved ``progress``."""
    license = lock_license(progress.student_id, progress.specialization_id)
    if license is None:
        issue_license(
            progress.student_id,
            progress.specialization_id,
            level=progress.current_level,
            reason=ISSUED_REASON if created else AUTO_SYNC_REASON,
        )
    elif license.current_level > progress.current_level:
        # The licence is ahead (a re-enrolment beside a surviving licence, or a
        # desync made behind the hook's back): as in repair, the lower side moves
        # up and an earned level is never taken away. Only update_level_atomic,
        # which bypasses this hook, may lower a level.
        SpecializationProgress.objects.filter(pk=progress.pk).update(
            current_level=license.current_level
        )
        progress.current_level = license.current_level
    else:
        move_license(license, to_level=progress.current_level, reason=AUTO_SYNC_REASON)


def sync_progress_to_license(student, specialization: str, *, synced_by=None) -> SyncResult:
    """Make the licence match the progress level (creating a missing licence)."""
    info = get_specialization(specialization, require_active=False)
    require_saved_user(student)
    if synced_by is not None:
        require_existing_user(synced_by, field="synced_by")
    with transaction.atomic():
        progress = lock_progress(student, info.code, enrol=False)
        if progress is None:
            raise NotEnrolled(student, specialization=info.code, row="progress")
        license = lock_license(student.pk, info.code)
        if license is None:
            license, _ = issue_license(
                student.pk,
                info.code,
                level=progress.current_level,
                by=synced_by,
                reason=SYNC_FROM_PROGRESS_REASON,
            )
            action = CREATED
        elif move_license(
            license, to_level=progress.current_level, by=synced_by, reason=SYNC_FROM_PROGRESS_REASON
        ):
            action = UPDATED
        else:
            action = NONE
    return SyncResult(action, progress.current_level, license.current_level)


def sync_license_to_progress(student, specialization: str) -> SyncResult:
    """Make the progress level match the licence (creating a missing progress row)."""
    info = get_specialization(specialization, require_active=False)
    require_saved_user(student)
    with transaction.atomic():
        action = None
        progress = lock_progress(student, info.code, enrol=False)
        if progress is None:
            licensed = UserLicense.objects.filter(user_id=student.pk, specialization_id=info.code)
            if not licensed.exists():
                raise NotEnrolled(student, specialization=info.code, row="licence")
            # Created through enrolment, before the licence is locked, so the lock order
            # stays progress -> licence (a concurrent first update cannot deadlock with
            # us); the hook starts the new row at the surviving licence's level.
            progress = lock_progress(student, info.code, enrol=True)
            action = CREATED
        license = lock_license(student.pk, info.code)
        if license is None:
            raise NotEnrolled(student, specialization=info.code, row="licence")
        if progress.current_level != license.current_level:
            # A queryset update on purpose: the licence is already right, no hook needed.
            SpecializationProgress.objects.filter(pk=progress.pk).update(
                current_level=license.current_level
            )
            progress.current_level = license.current_level
            action = action or UPDATED
        action = action or NONE
    return SyncResult(action, progress.current_level, license.current_level)


def update_level_atomic(
    student,
    specialization: str,
    *,
    new_level: int,
    xp_change: int = 0,
    sessions_change: int = 0,
    advanced_by=None,
    reason: str = "",
) -> AtomicUpdate:
    """Set both rows to ``new_level`` (any level in 1..max_level) under row locks."""
    info = get_specialization(specialization)
    require_saved_user(student)
    if advanced_by is not None:
        require_existing_user(advanced_by, field="advanced_by")
    if isinstance(new_level, bool) or not isinstance(new_level, int):
        raise LevelOutOfRange(new_level, specialization=info.code, max_level=info.max_level)
    if not 1 <= new_level <= info.max_level:
        raise LevelOutOfRange(new_level, specialization=info.code, max_level=info.max_level)
    xp_change = require_amount("xp_change", xp_change)
    sessions_change = require_amount("sessions_change", sessions_change)
    reason = require_reason(reason) or MANUAL_LEVEL_REASON

    with transaction.atomic():
        progress = lock_progress(student, info.code, enrol=True)  # the hook issues a licence
        license = lock_license(student.pk, info.code)
        level_before = progress.current_level
        total_xp = progress.total_xp + xp_change
        if total_xp < 0:
            raise NegativeAmount("xp_change", xp_change, total=total_xp)
        sessions = progress.completed_sessions + sessions_change
        if sessions < 0:
            raise NegativeAmount("sessions_change", sessions_change, total=sessions)
        progress.current_level, progress.total_xp, progress.completed_sessions = (
            new_level,
            total_xp,
            sessions,
        )
        progress.last_activity = timezone.now()
        # This service moves the licence itself (with the staff user as author),
        # so the progress row is written without firing the auto-sync hook.
        SpecializationProgress.objects.filter(pk=progress.pk).update(
            current_level=new_level,
            total_xp=total_xp,
            completed_sessions=sessions,
            last_activity=progress.last_activity,
        )
        if xp_change or sessions_change:  # the ledger records every change of the totals
            record_event(
                progress,
                level_before=level_before,
                amounts={"xp_gained": xp_change, "sessions_completed": sessions_change},
                source=ADMIN_SOURCE if advanced_by is not None else SYSTEM_SOURCE,
                reason=reason,
                actor=advanced_by,
            )
        if license is None:
            # A missing licence (a desync the hook never saw) is issued at the new level.
            license, progression = issue_license(
                student.pk, info.code, level=new_level, by=advanced_by, reason=reason
            )
        else:
            progression = move_license(license, to_level=new_level, by=advanced_by, reason=reason)
    return AtomicUpdate(progress=progress, license=license, progression=progression)


def validate_consistency(student, specialization: str) -> Consistency:
    """The state of one pair, from the one desync definition (a single query)."""
    info = get_specialization(specialization, require_active=False)
    require_saved_user(student)
    state = consistency.classify([(student.pk, info.code)]).get((student.pk, info.code))
    if state is None:
        return Consistency(ABSENT, None, None)
    return Consistency(state.kind, state.progress_level, state.license_level)
