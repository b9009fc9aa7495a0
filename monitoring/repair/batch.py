"""One repair batch: a short transaction that locks, re-checks, writes in bulk and reports.

A batch locks exactly the rows it will write, by their (user, specialization)
keys: the progress row of a pair whose progress moves up or that gets a
licence (it guards the pair, as in update_progress), the licence row of a
licence that moves up. Rows another transaction holds are skipped (SKIP
LOCKED), never waited for; the batch then re-checks its pairs under the locks
with the one desync definition, writes in bulk and reports to its run in the
same transaction. Inserts say which rows they created (ON CONFLICT DO NOTHING
RETURNING), so a row another transaction inserted first is never counted.
What remains can wait only on an insert racing ours or a key lock on a user,
each bounded by ``lock_timeout`` (``SET LOCAL``); the loop (``loop.py``)
retries such a batch in smaller pieces. What to do to each pair: ``plan.py``.
"""

from django.db import connection, transaction
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL

from common.bulk_sql import bulk_set, exact_pairs, quoted
from licenses import consistency
from licenses.models import LicenseProgression, UserLicense
from licenses.planner import lock_timeout_scope
from licenses.services import ADVANCED_FIELDS, advance, issuance
from specializations.models import SpecializationProgress

from . import claim
from .plan import (
    CREATE_LICENSE,
    CREATE_PROGRESS,
    RAISE_LICENSE,
    RAISE_PROGRESS,
    REASONS,
    BatchResult,
    Key,
    RepairAction,
    plan,
)


def _lock(model, user_column: str, keys: list[Key]) -> dict:
    """The rows of ``keys`` this transaction could lock; rows held by others are left out."""
    if not keys:
        return {}
    sql, params = exact_pairs(quoted(model), user_column, keys)
    rows = model.objects.filter(RawSQL(sql, params, output_field=BooleanField()))
    return {
        (getattr(row, user_column), row.specialization_id): row
        for row in rows.select_for_update(skip_locked=True)
    }


def _lock_ids(model, user_column: str, keys: list[Key]) -> dict[Key, int]:
    """As ``_lock``, the row ids only (progress rows are written by id, no instance needed)."""
    if not keys:
        return {}
    table = quoted(model)
    where, params = exact_pairs(table, user_column, keys)
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    rows = _fetch(
        f"SELECT id, {user_column}, specialization_id FROM {table} WHERE {where}{lock}", params
    )
    return {(u, s): pk for pk, u, s in rows}


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _create_missing_progress(keys: list[Key]) -> dict[Key, int]:
    """Progress rows for licences that have none, at the licence's level: {key: level}.

    Runs before any licence is touched, in key order, as update_progress does
    (progress, then licence). A row another transaction inserted first is not
    ours: RETURNING names only the rows this statement created.
    """
    if not keys:
        return {}
    progress, licence = quoted(SpecializationProgress), quoted(UserLicense)
    where, params = exact_pairs(licence, "user_id", keys)
    rows = _fetch(
        f"INSERT INTO {progress} (student_id, specialization_id, current_level, total_xp,"
        " completed_sessions, completed_projects, theory_hours_completed,"
        " practice_hours_completed)"
        f" SELECT user_id, specialization_id, current_level, 0, 0, 0, 0, 0 FROM {licence}"
        f" WHERE {where} ORDER BY user_id, specialization_id"
        " ON CONFLICT (student_id, specialization_id) DO NOTHING"
        " RETURNING student_id, specialization_id, current_level",
        params,
    )
    return {(u, s): level for u, s, level in rows}


def _create_licences(progress_ids: list[int]) -> list[UserLicense]:
    """Licences at the level of these locked progress rows; only the ones created here."""
    if not progress_ids:
        return []
    progress, licence = quoted(SpecializationProgress), quoted(UserLicense)
    rows = _fetch(
        f"INSERT INTO {licence} (user_id, specialization_id, current_level, max_achieved_level,"
        " is_active)"
        f" SELECT student_id, specialization_id, current_level, current_level, %s FROM {progress}"
        f" WHERE id IN ({', '.join(['%s'] * len(progress_ids))})"
        " ORDER BY student_id, specialization_id"
        " ON CONFLICT (user_id, specialization_id) DO NOTHING"
        " RETURNING id, user_id, specialization_id, current_level",
        [True, *progress_ids],
    )
    return [
        UserLicense(
            pk=pk, user_id=u, specialization_id=s, current_level=level, max_achieved_level=level
        )
        for pk, u, s, level in rows
    ]


def _rows_locked(action: RepairAction, progress: dict, licences: dict) -> bool:
    """This run holds the row the action writes (a row it could not lock is left for later)."""
    key = (action.user_id, action.specialization_id)
    if action.action == RAISE_LICENSE:
        return key in licences
    return action.action in (RAISE_PROGRESS, CREATE_LICENSE) and key in progress


def repair_batch(
    keys: list[Key],
    *,
    hints: dict | None = None,
    repaired_by=None,
    reason: str = "",
    on_batch=None,
    run=None,
    examined: int = 0,
    lock_timeout: float = 2.0,
) -> BatchResult:
    """One short transaction: lock the rows to write, re-check, write in bulk, report."""
    with transaction.atomic(), lock_timeout_scope(lock_timeout):
        states = hints if hints is not None else consistency.classify(keys)
        planned = {key: a for key in keys if (s := states.get(key)) and (a := plan(s))}
        by_action = {RAISE_LICENSE: [], RAISE_PROGRESS: [], CREATE_LICENSE: [], CREATE_PROGRESS: []}
        for key, a in planned.items():
            by_action[a.action].append(key)
        created = _create_missing_progress(by_action[CREATE_PROGRESS])
        progress = _lock_ids(
            SpecializationProgress,
            "student_id",
            by_action[RAISE_PROGRESS] + by_action[CREATE_LICENSE],
        )
        licences = _lock(UserLicense, "user_id", by_action[RAISE_LICENSE])
        # Re-check under the locks with the one definition: a pair fixed since it
        # was listed is left alone, one that changed shape waits for the retry.
        current = consistency.classify(list(planned))
        result = BatchResult(
            actions=[
                RepairAction(u, s, consistency.MISSING_PROGRESS, CREATE_PROGRESS, None, lvl, lvl)
                for (u, s), lvl in created.items()
            ]
        )
        todo = []
        for key in planned.keys() - created.keys():
            a = (state := current.get(key)) and plan(state)
            if not a:
                continue
            if _rows_locked(a, progress, licences):
                todo.append(a)
            else:
                result.locked.append(key)
        result.actions += _write(todo, progress, licences, repaired_by=repaired_by, reason=reason)
        result.in_sync = len(keys) - len(result.actions) - len(result.locked)
        if on_batch and result.actions:
            on_batch(result.actions)  # inside the transaction: its records commit with the repair
        if run is not None:
            claim.report_batch(run, repaired=len(result.actions), examined=examined)
    return result


def _write(actions, progress, licences, *, repaired_by, reason) -> list[RepairAction]:
    """Apply planned actions to locked rows with bulk statements; return what was done.

    ``progress`` maps keys to locked progress row ids, ``licences`` to locked licences.
    """
    raised, moved, entries, to_license = [], [], [], []
    for a in actions:
        key = (a.user_id, a.specialization_id)
        if a.action == RAISE_PROGRESS:
            raised.append((progress[key], a.target_level))
        elif a.action == RAISE_LICENSE:
            why = reason or REASONS[RAISE_LICENSE]
            entries.append(
                advance(licences[key], to_level=a.target_level, by=repaired_by, reason=why)
            )
            moved.append(licences[key])
        elif a.action == CREATE_LICENSE:
            to_license.append(progress[key])
    # Bulk writes bypass the auto-sync hook on purpose: both sides are set here.
    bulk_set(SpecializationProgress, ["current_level"], raised)
    bulk_set(
        UserLicense,
        ADVANCED_FIELDS,
        [(lic.pk, *(getattr(lic, name) for name in ADVANCED_FIELDS)) for lic in moved],
    )
    issued = _create_licences(to_license)
    why = reason or REASONS[CREATE_LICENSE]
    entries += [issuance(lic, by=repaired_by, reason=why) for lic in issued]
    if entries:
        LicenseProgression.objects.bulk_create(entries)
    done = {(lic.user_id, lic.specialization_id) for lic in issued}
    return [
        a for a in actions if a.action != CREATE_LICENSE or (a.user_id, a.specialization_id) in done
    ]
