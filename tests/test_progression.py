"""Earning progress: enrolment, the level rule, the auto-sync hook and explicit level changes."""

import pytest
from django.db import connection

from licenses.models import LicenseProgression, UserLicense
from licenses.services import AUTO_SYNC_REASON, ISSUED_REASON, update_level_atomic
from specializations import catalogue
from specializations.models import Level, SpecializationProgress
from specializations.services import enroll, update_progress

pytestmark = pytest.mark.django_db


def rows(student, specialization):
    """The (progress, licence) pair as stored in the database."""
    progress = SpecializationProgress.objects.get(student=student, specialization_id=specialization)
    licence = UserLicense.objects.get(user=student, specialization_id=specialization)
    return progress, licence


def levels(student, specialization) -> tuple[int, int]:
    progress, licence = rows(student, specialization)
    return progress.current_level, licence.current_level


def audit(student, specialization) -> list[tuple]:
    """The licence's audit trail, oldest first: (from, to, advanced_by_id, reason)."""
    return list(
        LicenseProgression.objects.filter(
            license__user=student, license__specialization_id=specialization
        )
        .order_by("id")
        .values_list("from_level", "to_level", "advanced_by_id", "reason")
    )


# --- Scenario 1: enrolment -------------------------------------------------------------------


def test_enrolling_a_new_user_creates_progress_and_licence_at_level_one(make_user):
    student = make_user(username="new-student")

    returned = enroll(student, "PLAYER")

    progress, licence = rows(student, "PLAYER")
    assert returned.pk == progress.pk
    assert (progress.current_level, progress.total_xp, progress.completed_sessions) == (1, 0, 0)
    assert (licence.current_level, licence.max_achieved_level) == (1, 1)
    assert licence.started_at is not None
    assert licence.is_active
    assert audit(student, "PLAYER") == [(None, 1, None, ISSUED_REASON)]


def test_enroll_is_idempotent(student):
    first = enroll(student, "COACH")
    second = enroll(student, "COACH")

    assert first.pk == second.pk
    assert SpecializationProgress.objects.filter(student=student).count() == 1
    assert UserLicense.objects.filter(user=student).count() == 1
    assert LicenseProgression.objects.filter(license__user=student).count() == 1


def test_first_update_progress_enrols_the_student(student):
    update_progress(student, "PLAYER", xp_gained=500, sessions_completed=1)

    progress, licence = rows(student, "PLAYER")
    assert (progress.total_xp, progress.completed_sessions, progress.current_level) == (500, 1, 1)
    assert licence.current_level == 1
    assert licence.started_at is not None


def test_re_enrolment_beside_a_surviving_licence_starts_at_the_licence_level(student, staff):
    update_level_atomic(student, "PLAYER", new_level=4, advanced_by=staff)
    SpecializationProgress.objects.filter(student=student).delete()  # the licence survives
    audit_before = audit(student, "PLAYER")

    progress = enroll(student, "PLAYER")

    assert progress.current_level == 4
    assert levels(student, "PLAYER") == (4, 4)
    assert audit(student, "PLAYER") == audit_before  # the licence did not move


# --- Scenario 2: one level-up through the hook ------------------------------------------------


def test_reaching_level_two_moves_both_rows_with_an_audit_row(student):
    enroll(student, "PLAYER")

    result = update_progress(student, "PLAYER", xp_gained=25_000, sessions_completed=12)

    assert (result.old_level, result.new_level, result.levels_gained) == (1, 2, 1)
    assert levels(student, "PLAYER") == (2, 2)
    _, licence = rows(student, "PLAYER")
    assert licence.max_achieved_level == 2
    assert licence.last_advanced_at is not None
    entry = LicenseProgression.objects.get(license=licence, from_level=1)
    assert (entry.to_level, entry.reason, entry.advanced_by) == (2, AUTO_SYNC_REASON, None)
    assert entry.actor == "system"


def test_an_update_without_a_level_change_writes_no_audit_row(student):
    enroll(student, "PLAYER")

    result = update_progress(student, "PLAYER", xp_gained=24_999, sessions_completed=12)

    assert result.levels_gained == 0
    assert levels(student, "PLAYER") == (1, 1)
    assert audit(student, "PLAYER") == [(None, 1, None, ISSUED_REASON)]


# --- Scenario 3: the level rule ---------------------------------------------------------------


def test_several_levels_are_gained_in_one_call(student):
    enroll(student, "PLAYER")

    result = update_progress(student, "PLAYER", xp_gained=100_000, sessions_completed=20)

    assert (result.old_level, result.new_level, result.levels_gained) == (1, 5, 4)
    assert levels(student, "PLAYER") == (5, 5)
    assert audit(student, "PLAYER")[-1] == (1, 5, None, AUTO_SYNC_REASON)


def test_levels_are_gained_across_calls_from_cumulative_totals(student):
    reached = [
        update_progress(student, "PLAYER", xp_gained=xp, sessions_completed=sessions).new_level
        for xp, sessions in [(25_000, 12), (20_000, 3), (25_000, 3), (1, 0)]
    ]

    assert reached == [2, 3, 4, 4]
    assert levels(student, "PLAYER") == (4, 4)
    assert [(f, t) for f, t, _, _ in audit(student, "PLAYER")] == [
        (None, 1),
        (1, 2),
        (2, 3),
        (3, 4),
    ]


def test_levels_are_gained_in_order_and_stop_at_the_first_unmet_requirement(student):
    # XP for level 8, sessions only up to level 3 (level 4 needs 18).
    result = update_progress(student, "PLAYER", xp_gained=250_000, sessions_completed=15)

    assert result.new_level == 3


def test_xp_alone_does_not_level_up_without_sessions(student):
    result = update_progress(student, "PLAYER", xp_gained=250_000, sessions_completed=11)

    assert result.new_level == 1


def test_coach_stays_without_the_hours_even_with_enough_xp_and_sessions(student):
    enroll(student, "COACH")

    result = update_progress(
        student,
        "COACH",
        xp_gained=35_000,
        sessions_completed=18,
        theory_hours=40,
        practice_hours=59,
    )

    assert result.new_level == 1
    assert levels(student, "COACH") == (1, 1)


def test_coach_levels_up_once_the_hours_are_completed(student):
    update_progress(
        student,
        "COACH",
        xp_gained=35_000,
        sessions_completed=18,
        theory_hours=40,
        practice_hours=59,
    )

    result = update_progress(student, "COACH", practice_hours=1)

    assert (result.old_level, result.new_level) == (1, 2)
    assert levels(student, "COACH") == (2, 2)


def test_internship_hours_are_theory_plus_practice(student):
    update_progress(
        student, "INTERNSHIP", xp_gained=18_000, sessions_completed=18, theory_hours=100
    )
    assert levels(student, "INTERNSHIP") == (1, 1)  # 100 of the 120 hours level 2 needs

    result = update_progress(student, "INTERNSHIP", practice_hours=20)

    assert result.new_level == 2


def test_internship_stops_at_its_max_level(student):
    result = update_progress(
        student,
        "INTERNSHIP",
        xp_gained=1_000_000,
        sessions_completed=100,
        theory_hours=500,
        practice_hours=500,
    )
    again = update_progress(student, "INTERNSHIP", xp_gained=1_000_000, sessions_completed=100)

    assert (result.new_level, result.levels_gained) == (3, 2)
    assert (again.new_level, again.levels_gained) == (3, 0)
    assert levels(student, "INTERNSHIP") == (3, 3)


def test_update_progress_never_lowers_a_level(student, staff):
    update_level_atomic(student, "PLAYER", new_level=5, advanced_by=staff)  # totals still zero

    result = update_progress(student, "PLAYER", xp_gained=10, sessions_completed=1)

    assert (result.old_level, result.new_level) == (5, 5)
    assert levels(student, "PLAYER") == (5, 5)


def test_update_progress_adds_every_amount(student):
    update_progress(
        student,
        "COACH",
        xp_gained=10,
        sessions_completed=2,
        projects_completed=3,
        theory_hours=4,
        practice_hours=5,
    )
    update_progress(student, "COACH", xp_gained=1, projects_completed=1)

    progress, _ = rows(student, "COACH")
    assert (
        progress.total_xp,
        progress.completed_sessions,
        progress.completed_projects,
        progress.theory_hours_completed,
        progress.practice_hours_completed,
    ) == (11, 2, 4, 4, 5)
    assert progress.last_activity is not None


# --- Scenario 6: the explicit, locked override ------------------------------------------------


def test_update_level_atomic_moves_both_rows_with_an_audit_row(student, staff):
    enroll(student, "PLAYER")

    result = update_level_atomic(
        student,
        "PLAYER",
        new_level=8,
        xp_change=1000,
        advanced_by=staff,
        reason="Board promotion",
    )

    progress, licence = rows(student, "PLAYER")
    assert (progress.current_level, progress.total_xp) == (8, 1000)
    assert (licence.current_level, licence.max_achieved_level) == (8, 8)
    assert licence.last_advanced_at is not None
    assert result.progression.pk == LicenseProgression.objects.get(license=licence, to_level=8).pk
    assert (
        result.progression.from_level,
        result.progression.advanced_by,
        result.progression.reason,
    ) == (1, staff, "Board promotion")
    assert (result.progress.current_level, result.license.current_level) == (8, 8)


def test_update_level_atomic_without_a_level_change_writes_no_audit_row(student, staff):
    enroll(student, "PLAYER")

    result = update_level_atomic(
        student, "PLAYER", new_level=1, xp_change=50, sessions_change=2, advanced_by=staff
    )

    assert result.progression is None
    progress, _ = rows(student, "PLAYER")
    assert (progress.total_xp, progress.completed_sessions) == (50, 2)
    assert len(audit(student, "PLAYER")) == 1


def test_update_level_atomic_may_lower_a_level_but_never_max_achieved_level(student, staff):
    update_level_atomic(student, "PLAYER", new_level=6, advanced_by=staff)

    result = update_level_atomic(
        student, "PLAYER", new_level=2, advanced_by=staff, reason="Correction"
    )

    progress, licence = rows(student, "PLAYER")
    assert (progress.current_level, licence.current_level, licence.max_achieved_level) == (2, 2, 6)
    assert (result.progression.from_level, result.progression.to_level) == (6, 2)


def test_update_level_atomic_enrols_a_new_student(student, staff):
    update_level_atomic(student, "COACH", new_level=3, advanced_by=staff)

    assert levels(student, "COACH") == (3, 3)


# --- Query budgets ----------------------------------------------------------------------------


@pytest.fixture
def enrolled(student):
    enroll(student, "PLAYER")
    catalogue.get_specialization("PLAYER")  # the cache is warm
    return student


def test_update_progress_without_a_level_change_costs_four_or_five_queries(
    enrolled, django_assert_num_queries
):
    # SAVEPOINT, the progress row locked, its update and its ledger event (one statement
    # on PostgreSQL), RELEASE: the licence is not touched.
    with django_assert_num_queries(4 if connection.vendor == "postgresql" else 5):
        result = update_progress(enrolled, "PLAYER", xp_gained=100, sessions_completed=1)
    assert result.levels_gained == 0


def test_update_progress_with_a_level_change_costs_eight_queries(
    enrolled, django_assert_num_queries
):
    # ... and the licence locked, moved, and its history row: three more.
    with django_assert_num_queries(8):
        result = update_progress(enrolled, "PLAYER", xp_gained=25_000, sessions_completed=12)
    assert result.levels_gained == 1


# --- The cached catalogue -----------------------------------------------------------------------


def test_a_catalogue_change_is_reloaded_after_its_commit(
    student, django_capture_on_commit_callbacks, django_assert_num_queries
):
    level = Level.objects.get(specialization_id="PLAYER", number=2)
    with django_capture_on_commit_callbacks(execute=True):
        level.required_xp = 20_000
        level.save()
        # Another thread reloading here would cache the old rows until the commit.
        catalogue.get_specialization("PLAYER")

    with django_assert_num_queries(1):
        assert catalogue.get_specialization("PLAYER").levels[1].required_xp == 20_000


def test_the_level_rule_follows_a_catalogue_change(student):
    level = Level.objects.get(specialization_id="PLAYER", number=2)
    level.required_xp = 20_000
    level.save()

    assert (
        update_progress(student, "PLAYER", xp_gained=20_000, sessions_completed=12).new_level == 2
    )
