"""Bad input raises a ProgressionError naming the field and the value, and writes nothing."""

import pytest
from django.contrib.auth import get_user_model
from model_bakery import baker

from licenses.models import LicenseProgression, UserLicense
from licenses.services import (
    sync_license_to_progress,
    sync_progress_to_license,
    update_level_atomic,
    validate_consistency,
)
from specializations.exceptions import (
    InactiveSpecialization,
    InvalidAmount,
    InvalidReason,
    LevelOutOfRange,
    NegativeAmount,
    NotEnrolled,
    ProgressionError,
    UnknownSpecialization,
    UnknownUser,
)
from specializations.models import ProgressEvent, Specialization, SpecializationProgress
from specializations.services import enroll, update_progress

pytestmark = pytest.mark.django_db


def unsaved_user(_student):
    return baker.prepare(get_user_model(), username="ghost")


def deactivated(code, call):
    """``call``, run once ``code`` is deactivated (saved, so the cached catalogue follows)."""

    def run(student):
        spec = Specialization.objects.get(code=code)
        spec.is_active = False
        spec.save()
        return call(student)

    return run


def missing_user(_student):
    """A user object whose row does not exist (deleted elsewhere, or a stale id)."""
    return get_user_model()(pk=987_654, username="vanished")


# (id, call, exception, text the message must contain). ``call`` gets a saved student.
BAD_INPUT = [
    (
        "unknown-specialization",
        lambda s: update_progress(s, "GOLF", xp_gained=10),
        UnknownSpecialization,
        "specialization='GOLF'",
    ),
    (
        "unknown-specialization-enroll",
        lambda s: enroll(s, "player"),
        UnknownSpecialization,
        "specialization='player'",
    ),
    (
        "unknown-specialization-atomic",
        lambda s: update_level_atomic(s, "GOLF", new_level=2),
        UnknownSpecialization,
        "specialization='GOLF'",
    ),
    (
        "unknown-specialization-not-a-string",
        lambda s: enroll(s, None),
        UnknownSpecialization,
        "specialization=None",
    ),
    (
        "level-zero",
        lambda s: update_level_atomic(s, "PLAYER", new_level=0),
        LevelOutOfRange,
        "new_level=0",
    ),
    (
        "level-negative",
        lambda s: update_level_atomic(s, "COACH", new_level=-3),
        LevelOutOfRange,
        "new_level=-3",
    ),
    (
        "level-above-max",
        lambda s: update_level_atomic(s, "PLAYER", new_level=9),
        LevelOutOfRange,
        "new_level=9",
    ),
    (
        "level-above-internship-max",
        lambda s: update_level_atomic(s, "INTERNSHIP", new_level=4),
        LevelOutOfRange,
        "new_level=4",
    ),
    (
        "level-not-an-integer",
        lambda s: update_level_atomic(s, "PLAYER", new_level="3"),
        LevelOutOfRange,
        "new_level='3'",
    ),
    (
        "negative-xp",
        lambda s: update_progress(s, "PLAYER", xp_gained=-1),
        NegativeAmount,
        "xp_gained=-1",
    ),
    (
        "negative-sessions",
        lambda s: update_progress(s, "PLAYER", xp_gained=100, sessions_completed=-2),
        NegativeAmount,
        "sessions_completed=-2",
    ),
    (
        "negative-projects",
        lambda s: update_progress(s, "INTERNSHIP", projects_completed=-1),
        NegativeAmount,
        "projects_completed=-1",
    ),
    (
        "negative-theory-hours",
        lambda s: update_progress(s, "COACH", theory_hours=-5),
        NegativeAmount,
        "theory_hours=-5",
    ),
    (
        "negative-practice-hours",
        lambda s: update_progress(s, "COACH", practice_hours=-7),
        NegativeAmount,
        "practice_hours=-7",
    ),
    (
        "xp-change-below-zero-total",
        lambda s: update_level_atomic(s, "PLAYER", new_level=2, xp_change=-1000),
        NegativeAmount,
        "xp_change=-1000",
    ),
    (
        "sessions-change-below-zero-total",
        lambda s: update_level_atomic(s, "PLAYER", new_level=2, sessions_change=-1),
        NegativeAmount,
        "sessions_change=-1",
    ),
    (
        "float-xp",
        lambda s: update_progress(s, "PLAYER", xp_gained=1.5),
        InvalidAmount,
        "xp_gained=1.5",
    ),
    (
        "string-sessions",
        lambda s: update_progress(s, "PLAYER", sessions_completed="12"),
        InvalidAmount,
        "sessions_completed='12'",
    ),
    (
        "bool-xp",
        lambda s: update_progress(s, "PLAYER", xp_gained=True),
        InvalidAmount,
        "xp_gained=True",
    ),
    (
        "none-hours",
        lambda s: update_progress(s, "COACH", practice_hours=None),
        InvalidAmount,
        "practice_hours=None",
    ),
    (
        "float-xp-change",
        lambda s: update_level_atomic(s, "PLAYER", new_level=2, xp_change=10.0),
        InvalidAmount,
        "xp_change=10.0",
    ),
    (
        "inactive-specialization",
        deactivated("INTERNSHIP", lambda s: update_progress(s, "INTERNSHIP", xp_gained=10)),
        InactiveSpecialization,
        "specialization='INTERNSHIP'",
    ),
    (
        "inactive-specialization-enroll",
        deactivated("INTERNSHIP", lambda s: enroll(s, "INTERNSHIP")),
        InactiveSpecialization,
        "specialization='INTERNSHIP'",
    ),
    (
        "inactive-specialization-atomic",
        deactivated("INTERNSHIP", lambda s: update_level_atomic(s, "INTERNSHIP", new_level=2)),
        InactiveSpecialization,
        "specialization='INTERNSHIP'",
    ),
    (
        "unsaved-user",
        lambda s: update_progress(unsaved_user(s), "PLAYER", xp_gained=10),
        UnknownUser,
        "student=<User: ghost>",
    ),
    (
        "unsaved-user-enroll",
        lambda s: enroll(unsaved_user(s), "PLAYER"),
        UnknownUser,
        "student=<User: ghost>",
    ),
    (
        "user-that-does-not-exist",
        lambda s: update_progress(missing_user(s), "PLAYER", xp_gained=10),
        UnknownUser,
        "student=<User: vanished>",
    ),
    (
        "user-that-does-not-exist-atomic",
        lambda s: update_level_atomic(missing_user(s), "PLAYER", new_level=2),
        UnknownUser,
        "student=<User: vanished>",
    ),
    (
        "unsaved-advanced-by",
        lambda s: update_level_atomic(s, "PLAYER", new_level=2, advanced_by=unsaved_user(s)),
        UnknownUser,
        "advanced_by=<User: ghost>",
    ),
    (
        "sync-to-licence-without-progress",
        lambda s: sync_progress_to_license(s, "PLAYER"),
        NotEnrolled,
        "student=<User: ",
    ),
    (
        "sync-to-progress-without-licence",
        lambda s: sync_license_to_progress(s, "COACH"),
        NotEnrolled,
        "student=<User: ",
    ),
    (
        "advanced-by-a-vanished-user",
        lambda s: update_level_atomic(s, "PLAYER", new_level=3, advanced_by=missing_user(s)),
        UnknownUser,
        "advanced_by=<User: vanished>",
    ),
    (
        "reason-too-long",
        lambda s: update_level_atomic(s, "PLAYER", new_level=3, reason="x" * 256),
        InvalidReason,
        "reason='xxxxxxxxxx",
    ),
]


def row_counts() -> tuple[int, int, int, int]:
    return (
        SpecializationProgress.objects.count(),
        UserLicense.objects.count(),
        LicenseProgression.objects.count(),
        ProgressEvent.objects.count(),
    )


@pytest.fixture
def internship_inactive(db):
    spec = Specialization.objects.get(code="INTERNSHIP")
    spec.is_active = False
    spec.save()


@pytest.mark.parametrize(
    "call, error, text", [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT]
)
def test_bad_input_raises_a_named_error_and_writes_nothing(student, call, error, text):
    before = row_counts()

    with pytest.raises(error) as raised:
        call(student)

    assert isinstance(raised.value, ProgressionError)
    assert text in str(raised.value)
    assert row_counts() == before


def test_bad_input_on_an_enrolled_student_leaves_the_rows_unchanged(student):
    update_progress(student, "PLAYER", xp_gained=500, sessions_completed=3)
    before = SpecializationProgress.objects.values().get(student=student)

    with pytest.raises(NegativeAmount):
        update_level_atomic(student, "PLAYER", new_level=8, xp_change=-501)

    assert SpecializationProgress.objects.values().get(student=student) == before
    assert UserLicense.objects.get(user=student).current_level == 1


def test_the_error_message_lists_the_known_specializations(student):
    with pytest.raises(UnknownSpecialization) as raised:
        enroll(student, "GOLF")

    assert str(raised.value) == (
        "specialization='GOLF' is not a known specialization"
        " (expected one of COACH, INTERNSHIP, PLAYER)"
    )


def test_the_level_error_message_gives_the_range(student):
    with pytest.raises(LevelOutOfRange) as raised:
        update_level_atomic(student, "INTERNSHIP", new_level=4)

    assert str(raised.value) == "new_level=4 is out of range for INTERNSHIP (expected 1..3)"


def test_reads_still_work_in_an_inactive_specialization(student, internship_inactive):
    # Deactivating stops new progress; checking and repairing existing rows stays possible.
    assert validate_consistency(student, "INTERNSHIP").kind == "absent"


def test_a_reactivated_specialization_accepts_progress_again(student, internship_inactive):
    with pytest.raises(InactiveSpecialization):
        enroll(student, "INTERNSHIP")
    spec = Specialization.objects.get(code="INTERNSHIP")
    spec.is_active = True
    spec.save()

    assert enroll(student, "INTERNSHIP").current_level == 1


def test_sync_by_a_vanished_user_is_refused_before_anything_changes(student):
    enroll(student, "PLAYER")
    SpecializationProgress.objects.filter(student=student).update(current_level=3)
    before = row_counts()
    with pytest.raises(UnknownUser, match="synced_by=<User: vanished>"):
        sync_progress_to_license(student, "PLAYER", synced_by=missing_user(student))
    assert row_counts() == before
    assert UserLicense.objects.get(user=student).current_level == 1
