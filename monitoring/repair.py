"""Repair of desyncs, batch by batch. Rules (DESIGN.md): the lower side moves up
to the higher level, a missing row is created from the one that exists,
``max_achieved_level`` never decreases, every licence level change writes a
LicenseProgression row naming who (empty: the system) and why.
"""

import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from licenses import consistency
from licenses.models import LicenseProgression, UserLicense
from specializations.models import SpecializationProgress

RAISE_LICENSE = "raise_licence"
RAISE_PROGRESS = "raise_progress"
CREATE_LICENSE = "create_licence"
CREATE_PROGRESS = "create_progress"

REASONS = {
    RAISE_LICENSE: "Repair: licence raised to the progress level",
    CREATE_LICENSE: "Repair: missing licence created from progress",
}


@dataclass(frozen=True, slots=True)
class RepairAction:
    user_id: int
    specialization_id: str
    kind: str
    action: str
    progress_level: int | None
    license_level: int | None
    target_level: int


@dataclass(slots=True)
class RepairReport:
    dry_run: bool
    examined: int = 0
    repaired: int = 0
    skipped: int = 0  # already in sync when re-checked under the lock
    by_kind: Counter = field(default_factory=Counter)
    actions: list[RepairAction] = field(default_factory=list)  # capped sample
    duration_ms: int = 0

    def as_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "examined": self.examined,
            "repaired": self.repaired,
            "skipped": self.skipped,
            "by_kind": dict(self.by_kind),
            "duration_ms": self.duration_ms,
        }


ACTIONS_SAMPLE = 1000


def plan(state: consistency.PairState) -> RepairAction | None:
    """What repair would do to a pair in this state (None: nothing to do)."""
    p, lic = state.progress_level, state.license_level
    if state.kind == consistency.MISSING_LICENSE:
        action, target = CREATE_LICENSE, p
    elif state.kind == consistency.MISSING_PROGRESS:
        action, target = CREATE_PROGRESS, lic
    elif state.kind == consistency.LEVEL_MISMATCH:
        action, target = (RAISE_LICENSE, p) if p > lic else (RAISE_PROGRESS, lic)
    else:
        return None
    return RepairAction(state.user_id, state.specialization_id, state.kind, action, p, lic, target)


def _repair_batch(keys: list[tuple[int, str]], *, repaired_by, reason: str) -> list[RepairAction]:
    """Lock the batch's rows (progress, then licences, in id order), re-check, fix."""
    user_ids = sorted({user_id for user_id, _ in keys})
    wanted = set(keys)
    with transaction.atomic():
        progress = {
            (row.student_id, row.specialization_id): row
            for row in SpecializationProgress.objects.select_for_update()
            .filter(student_id__in=user_ids)
            .order_by("pk")
            if (row.student_id, row.specialization_id) in wanted
        }
        licences = {
            (row.user_id, row.specialization_id): row
            for row in UserLicense.objects.select_for_update()
            .filter(user_id__in=user_ids)
            .order_by("pk")
            if (row.user_id, row.specialization_id) in wanted
        }
        # Re-check under the locks with the one definition: a pair fixed since
        # it was listed is left alone.
        actions = [a for s in consistency.classify(keys).values() if (a := plan(s))]
        now = timezone.now()
        raised_progress, moved, new_licences, new_progress, entries = [], [], [], [], []
        for a in actions:
            key = (a.user_id, a.specialization_id)
            if a.action == RAISE_PROGRESS:
                progress[key].current_level = a.target_level
                raised_progress.append(progress[key])
            elif a.action == CREATE_PROGRESS:
                new_progress.append(
                    SpecializationProgress(
                        student_id=a.user_id,
                        specialization_id=a.specialization_id,
                        current_level=a.target_level,
                    )
                )
            elif a.action == CREATE_LICENSE:
                new_licences.append(
                    UserLicense(
                        user_id=a.user_id,
                        specialization_id=a.specialization_id,
                        current_level=a.target_level,
                        max_achieved_level=a.target_level,
                        started_at=now,
                    )
                )
            else:  # RAISE_LICENSE
                licence = licences[key]
                entries.append(
                    LicenseProgression(
                        license=licence,
                        from_level=licence.current_level,
                        to_level=a.target_level,
                        advanced_by=repaired_by,
                        reason=reason or REASONS[RAISE_LICENSE],
                    )
                )
                licence.current_level = a.target_level
                licence.max_achieved_level = max(licence.max_achieved_level, a.target_level)
                licence.last_advanced_at = now
                moved.append(licence)
        # Bulk writes bypass the auto-sync hook on purpose: both sides are set here.
        if raised_progress:
            SpecializationProgress.objects.bulk_update(raised_progress, ["current_level"])
        if new_progress:
            SpecializationProgress.objects.bulk_create(new_progress)
        if moved:
            UserLicense.objects.bulk_update(
                moved, ["current_level", "max_achieved_level", "last_advanced_at"]
            )
        if new_licences:
            UserLicense.objects.bulk_create(new_licences)
            entries.extend(
                LicenseProgression(
                    license=licence,
                    from_level=None,
                    to_level=licence.current_level,
                    advanced_by=repaired_by,
                    reason=reason or REASONS[CREATE_LICENSE],
                )
                for licence in new_licences
            )
        if entries:
            LicenseProgression.objects.bulk_create(entries)
    return actions


def repair_pairs(
    keys: Iterable[tuple[int, str]],
    *,
    dry_run: bool,
    repaired_by=None,
    reason: str = "",
    batch_size: int = 500,
    on_progress: Callable[[int], None] | None = None,
) -> RepairReport:
    started = time.perf_counter()
    report = RepairReport(dry_run=dry_run)
    keys = iter(keys)
    while batch := list(itertools.islice(keys, batch_size)):
        batch = list(dict.fromkeys(batch))  # a pair listed twice is repaired once
        if dry_run:
            actions = [a for s in consistency.classify(batch).values() if (a := plan(s))]
        else:
            actions = _repair_batch(batch, repaired_by=repaired_by, reason=reason)
        report.examined += len(batch)
        report.repaired += len(actions)
        report.skipped += len(batch) - len(actions)
        report.by_kind.update(a.kind for a in actions)
        room = ACTIONS_SAMPLE - len(report.actions)
        report.actions.extend(actions[:room])
        if on_progress:
            on_progress(report.examined)
    report.duration_ms = round((time.perf_counter() - started) * 1000)
    return report
