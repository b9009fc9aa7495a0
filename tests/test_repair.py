"""repair(): the lower side moves up, missing rows are created, everything audited."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from licenses.models import LicenseProgression, UserLicense
from monitoring.services import RepairOptions, iter_violations, repair, run_health_check
from specializations.exceptions import InvalidReason, UnknownUser
from specializations.models import SpecializationProgress
from tests.conftest import requires_postgres
from tests.factories import delete_row, make_pairs, set_license_level, set_progress_level

pytestmark = pytest.mark.django_db


def levels(user, specialization="PLAYER"):
    progress = SpecializationProgress.objects.filter(student=user, specialization_id=specialization)
    licence = UserLicense.objects.filter(user=user, specialization_id=specialization)
    return (
        progress.values_list("current_level", flat=True).first(),
        licence.values_list("current_level", flat=True).first(),
    )


def test_licence_behind_progress_is_raised_with_an_audit_row(staff):
    (user,) = make_pairs(1, level=3)
    set_progress_level(user, "PLAYER", 5)
    report = repair(repaired_by=staff)
    assert (report.repaired, dict(report.by_kind)) == (1, {"level_mismatch": 1})
    assert levels(user) == (5, 5)
    entry = LicenseProgression.objects.get(license__user=user)
    assert (entry.from_level, entry.to_level, entry.advanced_by) == (3, 5, staff)
    assert "Repair" in entry.reason
    assert UserLicense.objects.get(user=user).max_achieved_level == 5


def test_progress_behind_licence_is_raised_and_the_licence_keeps_its_level():
    (user,) = make_pairs(1, level=3)
    set_license_level(user, "PLAYER", 6)
    repair()
    assert levels(user) == (6, 6)
    assert not LicenseProgression.objects.exists()  # the licence level did not change


def test_missing_licence_is_created_from_progress_and_audited_as_system():
    (user,) = make_pairs(1, level=4)
    delete_row(UserLicense, user, "PLAYER")
    repair()
    licence = UserLicense.objects.get(user=user)
    assert (licence.current_level, licence.max_achieved_level) == (4, 4)
    assert licence.started_at is not None
    entry = licence.progressions.get()
    assert (entry.from_level, entry.to_level, entry.advanced_by, entry.actor) == (
        None,
        4,
        None,
        "system",
    )


def test_missing_progress_is_created_from_the_licence():
    (user,) = make_pairs(1, level=7)
    delete_row(SpecializationProgress, user, "PLAYER")
    repair()
    assert levels(user) == (7, 7)
    assert SpecializationProgress.objects.get(student=user).total_xp == 0


def test_repair_never_lowers_a_level():
    users = make_pairs(4, level=4)
    set_progress_level(users[0], "PLAYER", 2)
    set_license_level(users[1], "PLAYER", 2)
    set_progress_level(users[2], "PLAYER", 8)
    set_license_level(users[3], "PLAYER", 8)
    repair()
    assert [levels(u) for u in users] == [(4, 4), (4, 4), (8, 8), (8, 8)]
    assert run_health_check(record=False).inconsistent == 0


def test_max_achieved_level_never_decreases():
    (user,) = make_pairs(1, level=2)
    UserLicense.objects.filter(user=user).update(max_achieved_level=7)
    set_progress_level(user, "PLAYER", 5)
    repair()
    licence = UserLicense.objects.get(user=user)
    assert (licence.current_level, licence.max_achieved_level) == (5, 7)


def test_a_second_repair_changes_nothing():
    users = make_pairs(6, level=3)
    set_progress_level(users[0], "PLAYER", 5)
    delete_row(UserLicense, users[1], "PLAYER")
    delete_row(SpecializationProgress, users[2], "PLAYER")
    first = repair()
    audit_rows = LicenseProgression.objects.count()
    second = repair()
    assert (first.repaired, second.repaired, second.examined) == (3, 0, 0)
    assert LicenseProgression.objects.count() == audit_rows


def test_pairs_fixed_since_they_were_listed_are_skipped():
    users = make_pairs(2, level=3)
    set_progress_level(users[0], "PLAYER", 5)
    listed = [(users[0].pk, "PLAYER"), (users[1].pk, "PLAYER")]  # the second is in sync
    report = repair(pairs=listed)
    assert (report.repaired, report.skipped) == (1, 1)


def test_dry_run_plans_without_writing():
    users = make_pairs(3, level=3)
    set_progress_level(users[0], "PLAYER", 5)
    delete_row(UserLicense, users[1], "PLAYER")
    report = repair(dry_run=True)
    assert report.dry_run and report.repaired == 2
    assert {a.action for a in report.actions} == {"raise_license", "create_license"}
    assert run_health_check(record=False).inconsistent == 2
    assert not LicenseProgression.objects.exists()


def test_repair_spans_several_batches_and_specializations():
    players = make_pairs(25, level=2)
    coaches = make_pairs(25, specialization="COACH", level=2)
    for user in players + coaches:
        set_progress_level(user, "PLAYER", 3)
        set_license_level(user, "COACH", 4)
    report = repair(options=RepairOptions(batch_size=7))
    assert report.repaired == 50
    assert run_health_check(record=False).inconsistent == 0


def test_specialization_filter_repairs_only_that_specialization():
    (player,) = make_pairs(1, level=2)
    (coach,) = make_pairs(1, specialization="COACH", level=2)
    set_progress_level(player, "PLAYER", 3)
    set_progress_level(coach, "COACH", 3)
    repair(specialization="COACH")
    assert levels(coach, "COACH") == (3, 3)
    assert levels(player) == (3, 2)


def test_repair_query_count_does_not_grow_per_pair():
    # The run's claim, one batch and the check after: the same statements for 20
    # desyncs as for 200 (one batch of 500 either way).
    def queries_for(desyncs: int) -> int:
        users = make_pairs(desyncs, level=2)
        for user in users:
            set_progress_level(user, "PLAYER", 3)
        with CaptureQueriesContext(connection) as ctx:
            report = repair(
                pairs=[(u.pk, "PLAYER") for u in users], options=RepairOptions(batch_size=500)
            )
        assert report.repaired == desyncs
        return len(ctx.captured_queries)

    assert queries_for(20) == queries_for(200) <= 40


def test_the_key_stream_finds_every_violation_across_sparse_user_ids():
    # Pages are ranges of user ids sized to hold about a chunk of violations;
    # gaps in the ids and a dense stretch after a sparse one lose nothing.
    users = make_pairs(60, level=2)
    far = get_user_model().objects.create(id=users[-1].pk + 50_000, username="far-away")
    UserLicense.objects.create(
        user=far, specialization_id="COACH", current_level=2, max_achieved_level=2
    )
    wanted = users[:5] + users[20:50]
    for user in wanted:
        set_progress_level(user, "PLAYER", 3)
    streamed = [(v.user_id, v.kind) for v in iter_violations(chunk_size=4)]
    assert streamed == [(u.pk, "level_mismatch") for u in wanted] + [(far.pk, "missing_progress")]


def test_on_batch_sees_every_action_inside_the_batch_transaction(monkeypatch):
    monkeypatch.setattr("monitoring.repair.plan.ACTIONS_SAMPLE", 3)  # the report's sample only
    users = make_pairs(12, level=2)
    for user in users:
        set_progress_level(user, "PLAYER", 3)
    seen, atomic = [], []

    def on_batch(actions):
        seen.extend(actions)
        atomic.append(connection.in_atomic_block)

    report = repair(options=RepairOptions(batch_size=5, on_batch=on_batch))
    assert report.repaired == len(seen) == 12
    assert len(report.actions) == 3
    assert len(atomic) == 3 and all(atomic)


def test_a_failing_on_batch_rolls_its_batch_back():
    users = make_pairs(4, level=2)
    for user in users:
        set_progress_level(user, "PLAYER", 3)

    def on_batch(actions):
        raise RuntimeError("log write failed")

    with pytest.raises(RuntimeError):
        repair(options=RepairOptions(on_batch=on_batch))
    assert run_health_check(record=False).inconsistent == 4
    assert not LicenseProgression.objects.exists()


def test_repair_by_a_vanished_user_is_refused(make_user):
    (user,) = make_pairs(1, level=2)
    set_progress_level(user, "PLAYER", 3)
    ghost = make_user()
    ghost_copy = type(ghost)(pk=ghost.pk, username=ghost.username)
    ghost.delete()
    with pytest.raises(UnknownUser, match="repaired_by="):
        repair(repaired_by=ghost_copy)
    assert levels(user) == (3, 2)


def test_an_over_long_reason_is_refused_before_any_write():
    (user,) = make_pairs(1, level=2)
    set_progress_level(user, "PLAYER", 3)
    with pytest.raises(InvalidReason, match="reason="):
        repair(reason="r" * 300)
    assert levels(user) == (3, 2)


@requires_postgres
def test_a_missing_progress_row_is_created_before_any_licence_is_locked():
    # update_progress inserts the progress row, then its hook locks the licence;
    # repair must take the same order or the two can deadlock.
    missing, behind = make_pairs(2, level=4)
    delete_row(SpecializationProgress, missing, "PLAYER")
    set_progress_level(behind, "PLAYER", 6)
    with CaptureQueriesContext(connection) as ctx:
        report = repair()
    sql = [q["sql"] for q in ctx.captured_queries]
    insert = next(i for i, q in enumerate(sql) if q.startswith('INSERT INTO "specializations_'))
    licence_lock = next(
        i for i, q in enumerate(sql) if 'FROM "licenses_userlicense"' in q and "FOR UPDATE" in q
    )
    assert insert < licence_lock
    assert report.repaired == 2
    assert (levels(missing), levels(behind)) == ((4, 4), (6, 6))


@requires_postgres
def test_each_batch_locks_exactly_the_rows_it_writes():
    # Not every row of the batch's users in its specializations: a licence that
    # moves up locks only that licence, a raised progress row only itself.
    behind, ahead, *others = make_pairs(5, level=3)
    set_progress_level(behind, "PLAYER", 5)
    set_license_level(ahead, "PLAYER", 6)
    make_pairs(1, specialization="COACH")  # another specialization in the same table
    with CaptureQueriesContext(connection) as ctx:
        repair()
    locks = [q["sql"] for q in ctx.captured_queries if "FOR UPDATE SKIP LOCKED" in q["sql"]]
    assert len(locks) == 2  # progress rows, licence rows
    assert all("unnest(" in q for q in locks)
    progress_lock, licence_lock = locks
    assert f"'{{{ahead.pk}}}'::bigint[]" in progress_lock  # array literals: '{id,...}'
    assert f"'{{{behind.pk}}}'::bigint[]" in licence_lock
