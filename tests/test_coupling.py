"""Progress and licence stay coupled: desyncs are found, repaired, and never born from a failure."""

import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models.signals import post_save, pre_save

from licenses.models import LicenseProgression, UserLicense
from licenses.services import (
    SYNC_FROM_PROGRESS_REASON,
    sync_license_to_progress,
    sync_progress_to_license,
    update_level_atomic,
    validate_consistency,
)
from specializations import catalogue
from specializations.models import SpecializationProgress
from specializations.services import enroll, update_progress
from tests.factories import set_license_level

pytestmark = pytest.mark.django_db


class LicenceWriteFailed(Exception):
    pass


def fail(**_kwargs):
    raise LicenceWriteFailed("the licence write failed")


@pytest.fixture
def failing_licence_write():
    """Every licence or audit-row save raises, for the duration of the test."""
    receivers = [(pre_save, UserLicense), (post_save, LicenseProgression)]
    for signal, sender in receivers:
        signal.connect(fail, sender=sender, dispatch_uid=f"test-fail-{sender.__name__}")
    try:
        yield
    finally:
        for signal, sender in receivers:
            signal.disconnect(sender=sender, dispatch_uid=f"test-fail-{sender.__name__}")


def stored(student, specialization):
    progress = SpecializationProgress.objects.filter(
        student=student, specialization_id=specialization
    ).first()
    licence = UserLicense.objects.filter(user=student, specialization_id=specialization).first()
    return progress, licence


def delete_raw(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def delete_licence_raw(student, specialization) -> None:
    """Remove a licence behind the ORM's back (its audit rows first: they PROTECT it)."""
    licence_table = UserLicense._meta.db_table
    delete_raw(
        f"DELETE FROM {LicenseProgression._meta.db_table} WHERE license_id IN"
        f" (SELECT id FROM {licence_table} WHERE user_id = %s AND specialization_id = %s)",
        [student.pk, specialization],
    )
    delete_raw(
        f"DELETE FROM {licence_table} WHERE user_id = %s AND specialization_id = %s",
        [student.pk, specialization],
    )


def delete_progress_raw(student, specialization) -> None:
    delete_raw(
        f"DELETE FROM {SpecializationProgress._meta.db_table}"
        " WHERE student_id = %s AND specialization_id = %s",
        [student.pk, specialization],
    )


# --- validate_consistency ---------------------------------------------------------------------


def test_an_enrolled_student_is_consistent(student):
    enroll(student, "PLAYER")

    result = validate_consistency(student, "PLAYER")

    assert (result.kind, result.progress_level, result.license_level) == ("ok", 1, 1)
    assert result.consistent


def test_a_student_without_rows_is_absent_and_consistent(student):
    result = validate_consistency(student, "PLAYER")

    assert (result.kind, result.progress_level, result.license_level) == ("absent", None, None)
    assert result.consistent


def test_validate_consistency_looks_only_at_the_given_specialization(student):
    enroll(student, "PLAYER")
    enroll(student, "COACH")
    UserLicense.objects.filter(user=student, specialization_id="COACH").update(
        current_level=2, max_achieved_level=2
    )

    assert validate_consistency(student, "PLAYER").kind == "ok"
    assert validate_consistency(student, "COACH").kind == "level_mismatch"


def test_validate_consistency_costs_one_query_and_one_for_a_cold_catalogue(
    student, django_assert_num_queries
):
    enroll(student, "PLAYER")
    catalogue.clear_cache()
    with django_assert_num_queries(2):  # the catalogue, then the one desync query
        validate_consistency(student, "PLAYER")
    with django_assert_num_queries(1):
        validate_consistency(student, "PLAYER")


# --- Scenario 4: a desync from a queryset update() --------------------------------------------


def test_a_queryset_update_desync_is_reported_as_level_mismatch(student):
    enroll(student, "PLAYER")
    SpecializationProgress.objects.filter(student=student).update(current_level=3)  # no hook

    result = validate_consistency(student, "PLAYER")

    assert (result.kind, result.progress_level, result.license_level) == ("level_mismatch", 3, 1)
    assert not result.consistent


def test_sync_progress_to_license_restores_consistency(student, staff):
    enroll(student, "PLAYER")
    SpecializationProgress.objects.filter(student=student).update(current_level=3)

    result = sync_progress_to_license(student, "PLAYER", synced_by=staff)

    assert (result.action, result.progress_level, result.license_level) == ("updated", 3, 3)
    assert validate_consistency(student, "PLAYER").kind == "ok"
    entry = LicenseProgression.objects.get(license__user=student, to_level=3)
    assert (entry.from_level, entry.advanced_by, entry.reason) == (
        1,
        staff,
        SYNC_FROM_PROGRESS_REASON,
    )
    assert UserLicense.objects.get(user=student).max_achieved_level == 3


def test_sync_progress_to_license_does_nothing_on_a_consistent_pair(student):
    enroll(student, "PLAYER")

    result = sync_progress_to_license(student, "PLAYER")

    assert (result.action, result.progress_level, result.license_level) == ("none", 1, 1)
    assert LicenseProgression.objects.filter(license__user=student).count() == 1


def test_sync_license_to_progress_restores_consistency_the_other_way(student):
    enroll(student, "COACH")
    UserLicense.objects.filter(user=student).update(current_level=4, max_achieved_level=4)

    result = sync_license_to_progress(student, "COACH")

    assert (result.action, result.progress_level, result.license_level) == ("updated", 4, 4)
    progress, licence = stored(student, "COACH")
    assert (progress.current_level, licence.current_level) == (4, 4)
    assert validate_consistency(student, "COACH").kind == "ok"


# --- Scenario 5: rows removed by raw SQL ------------------------------------------------------


def test_a_licence_removed_by_raw_sql_is_reported_as_missing_license(student):
    enroll(student, "PLAYER")
    delete_licence_raw(student, "PLAYER")

    result = validate_consistency(student, "PLAYER")

    assert (result.kind, result.progress_level, result.license_level) == (
        "missing_license",
        1,
        None,
    )
    assert not result.consistent


def test_a_progress_row_removed_by_raw_sql_is_reported_as_missing_progress(student):
    update_progress(student, "PLAYER", xp_gained=25_000, sessions_completed=12)
    delete_progress_raw(student, "PLAYER")

    result = validate_consistency(student, "PLAYER")

    assert (result.kind, result.progress_level, result.license_level) == (
        "missing_progress",
        None,
        2,
    )


def test_sync_progress_to_license_recreates_a_missing_licence(student):
    update_progress(student, "PLAYER", xp_gained=25_000, sessions_completed=12)
    delete_licence_raw(student, "PLAYER")

    result = sync_progress_to_license(student, "PLAYER")

    assert (result.action, result.progress_level, result.license_level) == ("created", 2, 2)
    _, licence = stored(student, "PLAYER")
    assert (licence.current_level, licence.max_achieved_level) == (2, 2)
    assert licence.started_at is not None
    assert validate_consistency(student, "PLAYER").kind == "ok"


def test_sync_license_to_progress_recreates_a_missing_progress_row(student):
    update_progress(student, "PLAYER", xp_gained=25_000, sessions_completed=12)
    delete_progress_raw(student, "PLAYER")

    result = sync_license_to_progress(student, "PLAYER")

    assert (result.action, result.progress_level, result.license_level) == ("created", 2, 2)
    assert validate_consistency(student, "PLAYER").kind == "ok"


def test_update_level_atomic_issues_a_missing_licence(student, staff):
    enroll(student, "PLAYER")
    delete_licence_raw(student, "PLAYER")

    result = update_level_atomic(student, "PLAYER", new_level=3, advanced_by=staff, reason="Fix")

    progress, licence = stored(student, "PLAYER")
    assert (progress.current_level, licence.current_level) == (3, 3)
    assert (result.progression.from_level, result.progression.to_level) == (None, 3)
    assert (result.progression.advanced_by, result.progression.reason) == (staff, "Fix")


def test_the_hook_issues_a_missing_licence_on_the_next_level_change(student):
    enroll(student, "PLAYER")
    delete_licence_raw(student, "PLAYER")

    update_progress(student, "PLAYER", xp_gained=25_000, sessions_completed=12)

    progress, licence = stored(student, "PLAYER")
    assert (progress.current_level, licence.current_level) == (2, 2)


# --- Atomicity: a failed licence write undoes the progress change -----------------------------


def test_a_failed_licence_write_leaves_the_progress_unchanged(student):
    enroll(student, "PLAYER")
    progress_before, licence_before = stored(student, "PLAYER")

    with pytest.raises(LicenceWriteFailed):
        post_save.connect(fail, sender=LicenseProgression, dispatch_uid="test-fail-audit")
        try:
            update_progress(student, "PLAYER", xp_gained=25_000, sessions_completed=12)
        finally:
            post_save.disconnect(sender=LicenseProgression, dispatch_uid="test-fail-audit")

    progress, licence = stored(student, "PLAYER")
    assert (progress.current_level, progress.total_xp, progress.completed_sessions) == (1, 0, 0)
    assert progress.last_activity == progress_before.last_activity
    assert (licence.current_level, licence.last_advanced_at) == (1, licence_before.last_advanced_at)
    assert LicenseProgression.objects.filter(license__user=student).count() == 1


def test_a_failed_licence_write_on_enrolment_leaves_no_progress_row(student, failing_licence_write):
    with pytest.raises(LicenceWriteFailed):
        enroll(student, "PLAYER")

    assert stored(student, "PLAYER") == (None, None)


def test_a_failed_licence_write_in_update_level_atomic_leaves_both_rows_unchanged(student, staff):
    enroll(student, "PLAYER")

    with pytest.raises(LicenceWriteFailed):
        post_save.connect(fail, sender=LicenseProgression, dispatch_uid="test-fail-audit")
        try:
            update_level_atomic(student, "PLAYER", new_level=8, xp_change=1000, advanced_by=staff)
        finally:
            post_save.disconnect(sender=LicenseProgression, dispatch_uid="test-fail-audit")

    progress, licence = stored(student, "PLAYER")
    assert (progress.current_level, progress.total_xp, licence.current_level) == (1, 0, 1)


def test_the_services_still_work_after_a_failed_licence_write(student):
    enroll(student, "PLAYER")
    post_save.connect(fail, sender=LicenseProgression, dispatch_uid="test-fail-audit")
    try:
        with pytest.raises(LicenceWriteFailed):
            update_progress(student, "PLAYER", xp_gained=25_000, sessions_completed=12)
    finally:
        post_save.disconnect(sender=LicenseProgression, dispatch_uid="test-fail-audit")

    result = update_progress(student, "PLAYER", xp_gained=25_000, sessions_completed=12)

    assert result.new_level == 2
    assert validate_consistency(student, "PLAYER").kind == "ok"


def test_hook_raises_a_lagging_progress_instead_of_lowering_the_licence(student):
    update_progress(student, "PLAYER")
    UserLicense.objects.filter(user=student).update(current_level=6, max_achieved_level=6)
    result = update_progress(student, "PLAYER", xp_gained=25_000, sessions_completed=12)
    licence = UserLicense.objects.get(user=student)
    assert (result.new_level, licence.current_level, licence.max_achieved_level) == (6, 6, 6)
    assert SpecializationProgress.objects.get(student=student).current_level == 6
    assert not licence.progressions.filter(to_level__lt=6, from_level=6).exists()
    assert validate_consistency(student, "PLAYER").consistent


def test_loading_a_fixture_writes_no_licence_and_no_history(student, tmp_path):
    # loaddata saves raw: a restored progress row must come back as it was, without
    # the hook issuing a licence or writing history on the restore's behalf.
    fixture = tmp_path / "progress.json"
    fixture.write_text(
        json.dumps(
            [
                {
                    "model": "specializations.specializationprogress",
                    "pk": 9001,
                    "fields": {
                        "student": student.pk,
                        "specialization": "COACH",
                        "current_level": 3,
                        "total_xp": 1200,
                    },
                }
            ]
        )
    )
    call_command("loaddata", str(fixture), verbosity=0)
    assert SpecializationProgress.objects.get(pk=9001).current_level == 3
    assert not UserLicense.objects.filter(user=student).exists()
    assert not LicenseProgression.objects.exists()
    assert validate_consistency(student, "COACH").kind == "missing_license"


def test_a_save_naming_fields_without_the_level_leaves_the_licence_alone(student):
    enroll(student, "PLAYER")
    set_license_level(student, "PLAYER", 3)  # a desync for the hook to react to, if it ran
    progress = SpecializationProgress.objects.get(student=student, specialization_id="PLAYER")
    progress.total_xp = 50
    progress.save(update_fields=["total_xp"])
    assert (progress.current_level, validate_consistency(student, "PLAYER").kind) == (
        1,
        "level_mismatch",
    )
    # Naming the level, the hook runs (and raises the lagging progress to the licence).
    progress.save(update_fields=["current_level", "total_xp"])
    assert validate_consistency(student, "PLAYER").kind == "ok"
    assert SpecializationProgress.objects.get(pk=progress.pk).current_level == 3
