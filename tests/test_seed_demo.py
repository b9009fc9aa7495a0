"""`manage.py seed_demo`: a demo staff login, about 200 students, injected desyncs; rerunnable."""

from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from licenses import consistency
from licenses.models import UserLicense
from monitoring.management.commands.seed_demo import (
    EMAIL_DOMAIN,
    NOT_DEBUG,
    STAFF_PASSWORD,
    STAFF_USERNAME,
)
from specializations.models import SpecializationProgress


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", "--force", *args, stdout=out)
    return out.getvalue()


def students():
    return get_user_model().objects.filter(email__endswith=f"@{EMAIL_DOMAIN}")


@pytest.mark.django_db
def test_seed_creates_students_licences_and_desyncs_of_each_kind():
    output = seed()
    assert f"Demo staff login: {STAFF_USERNAME} / {STAFF_PASSWORD}" in output
    staff = authenticate(username=STAFF_USERNAME, password=STAFF_PASSWORD)
    assert staff is not None and staff.is_staff
    assert students().count() == 200
    specializations = set(
        SpecializationProgress.objects.values_list("specialization_id", flat=True).distinct()
    )
    assert specializations == {"PLAYER", "COACH", "INTERNSHIP"}
    assert SpecializationProgress.objects.values("current_level").distinct().count() >= 4
    counts = consistency.count_pairs()
    assert counts.by_kind == {
        "level_mismatch": 3,
        "missing_license": 3,
        "missing_progress": 3,
    }
    assert counts.consistent > 300
    assert UserLicense.objects.filter(progressions__isnull=True).count() == 0


@pytest.mark.django_db
def test_seed_twice_adds_nothing():
    seed()
    before = (students().count(), SpecializationProgress.objects.count(), consistency.count_pairs())
    assert "already present" in seed()
    after = (students().count(), SpecializationProgress.objects.count(), consistency.count_pairs())
    assert after == before


@pytest.mark.django_db
def test_reset_starts_over_and_keeps_other_users(make_user):
    outsider = make_user(username="real-student")
    seed()
    call_command("check_sync", "--repair", stdout=StringIO())
    assert consistency.count_pairs().inconsistent == 0
    output = seed("--reset")
    assert "Reset: removed the demo students" in output
    assert consistency.count_pairs().inconsistent == 9
    assert get_user_model().objects.filter(pk=outsider.pk).exists()


@pytest.mark.django_db
def test_refuses_to_publish_a_password_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG=1"):
        call_command("seed_demo", stdout=StringIO())
    assert NOT_DEBUG.startswith("seed_demo creates a staff account")
    assert not students().exists()
