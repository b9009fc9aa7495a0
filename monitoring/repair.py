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

from django.db import DatabaseError, transaction

from licenses import consistency
from licenses.models import LicenseProgression, UserLicense
from licenses.services import ADVANCED_FIELDS, advance, issuance, new_license
from specializations.models import SpecializationProgress

from .exceptions import RepairInterrupted, first_line

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

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


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


def _around(user_column: str, keys: set[tuple[int, str]]) -> dict:
    """A filter for the rows of ``keys``: their users crossed with their specializations.

    A superset (a user's row in another of the batch's specializations comes
    too) that PostgreSQL answers from the unique index in a few milliseconds;
    an exact OR of 500 pairs costs ten times more to plan. Callers keep only
    the keys they asked for.
    """
    return {
        f"{user_column}__in": sorted({user_id for user_id, _ in keys}),
        "specialization_id__in": sorted({spec for _, spec in keys}),
    }


def _locked(model, user_column: str, keys: set[tuple[int, str]]) -> dict:
    """Rows of ``model`` for ``keys``, locked FOR UPDATE in id order (batches never deadlock)."""
    if not keys:
        return {}
    rows = model.objects.select_for_update().filter(**_around(user_column, keys)).order_by("pk")
    return {
        key: row
        for row in rows
        if (key := (getattr(row, user_column), row.specialization_id)) in keys
    }


def _create_missing_progress(keys: set[tuple[int, str]]) -> list[RepairAction]:
    """Create the progress rows of licences that have none, before any licence is locked.

    Lock order stays progress, then licence, as in update_progress and its hook.
    A first enrolment racing us for the same row wins or loses on the unique
    constraint (ignore_conflicts); either way the pair has its progress row.
    """
    if not keys:
        return []
    levels = dict(
        sorted(  # inserted in key order, so two repairs never wait on each other crosswise
            ((u, s), level)
            for u, s, level in UserLicense.objects.filter(**_around("user_id", keys)).values_list(
                "user_id", "specialization_id", "current_level"
            )
            if (u, s) in keys
        )
    )
    SpecializationProgress.objects.bulk_create(
        [
            SpecializationProgress(student_id=u, specialization_id=s, current_level=level)
            for (u, s), level in levels.items()
        ],
        ignore_conflicts=True,
    )
    return [
        RepairAction(u, s, consistency.MISSING_PROGRESS, CREATE_PROGRESS, None, level, level)
        for (u, s), level in levels.items()
    ]


def _rows_locked(action: RepairAction, progress: dict, licences: dict) -> bool:
    """The rows this action writes were locked above (a row inserted behind our back since
    is left for the next run, not written unlocked)."""
    key = (action.user_id, action.specialization_id)
    if action.action == RAISE_PROGRESS:
        return key in progress
    if action.action == RAISE_LICENSE:
        return key in licences
    return action.action == CREATE_LICENSE and key in progress


def _repair_batch(
    keys: list[tuple[int, str]],
    *,
    repaired_by,
    reason: str,
    on_batch: Callable[[list[RepairAction]], None] | None,
) -> list[RepairAction]:
    """One short transaction: lock the batch's rows, re-check them, write in bulk."""
    wanted = set(keys)
    with transaction.atomic():
        progress = _locked(SpecializationProgress, "student_id", wanted)
        created = _create_missing_progress(wanted - progress.keys())
        if created:
            new_keys = {(a.user_id, a.specialization_id) for a in created}
            progress |= _locked(SpecializationProgress, "student_id", new_keys)
        licences = _locked(UserLicense, "user_id", wanted)
        # Re-check under the locks with the one definition: a pair fixed since it
        # was listed is left alone.
        actions = [
            a
            for s in consistency.classify(keys).values()
            if (a := plan(s)) and _rows_locked(a, progress, licences)
        ]
        raised_progress, moved, new_licences, entries = [], [], [], []
        for a in actions:
            key = (a.user_id, a.specialization_id)
            if a.action == RAISE_PROGRESS:
                progress[key].current_level = a.target_level
                raised_progress.append(progress[key])
            elif a.action == CREATE_LICENSE:
                licence = new_license(a.user_id, a.specialization_id, level=a.target_level)
                new_licences.append(licence)
            elif a.action == RAISE_LICENSE:
                entries.append(
                    advance(
                        licences[key],
                        to_level=a.target_level,
                        by=repaired_by,
                        reason=reason or REASONS[RAISE_LICENSE],
                    )
                )
                moved.append(licences[key])
        # Bulk writes bypass the auto-sync hook on purpose: both sides are set here.
        if raised_progress:
            SpecializationProgress.objects.bulk_update(raised_progress, ["current_level"])
        if moved:
            UserLicense.objects.bulk_update(moved, ADVANCED_FIELDS)
        if new_licences:
            UserLicense.objects.bulk_create(new_licences)
            entries += [
                issuance(lic, by=repaired_by, reason=reason or REASONS[CREATE_LICENSE])
                for lic in new_licences
            ]
        if entries:
            LicenseProgression.objects.bulk_create(entries)
        actions = created + actions
        if on_batch and actions:
            on_batch(actions)  # inside the transaction: its records commit with the repair
    return actions


def repair_pairs(
    keys: Iterable[tuple[int, str]],
    *,
    dry_run: bool,
    repaired_by=None,
    reason: str = "",
    batch_size: int = 500,
    on_progress: Callable[[int], None] | None = None,
    on_batch: Callable[[list[RepairAction]], None] | None = None,
) -> RepairReport:
    started = time.perf_counter()
    report = RepairReport(dry_run=dry_run)
    keys = iter(keys)
    while batch := list(itertools.islice(keys, batch_size)):
        batch = list(dict.fromkeys(batch))  # a pair listed twice is repaired once
        try:
            if dry_run:
                actions = [a for s in consistency.classify(batch).values() if (a := plan(s))]
            else:
                actions = _repair_batch(
                    batch, repaired_by=repaired_by, reason=reason, on_batch=on_batch
                )
        except DatabaseError as exc:
            # This batch rolled back; the ones before it are committed and stay.
            raise RepairInterrupted(report.repaired, first_line(exc)) from exc
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
