"""`manage.py seed_demo`: a demo staff login, about 200 students, injected desyncs; rerunnable."""

import re
from io import StringIO
from pathlib import Path

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
from specializations.models import Level, Specialization, SpecializationProgress


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


def demo_catalogue() -> list[str]:
    """The paths `make demo` loads (the Makefile's DEMO_CATALOGUE), read from the Makefile."""
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    assert "manage.py load_catalogue $(DEMO_CATALOGUE)" in makefile
    (paths,) = re.findall(r"^DEMO_CATALOGUE := (.+)$", makefile, flags=re.M)
    return [str(Path(__file__).resolve().parent.parent / path) for path in paths.split()]


@pytest.mark.django_db
def test_the_demo_loads_the_two_example_files_beside_the_default_catalogue():
    out = StringIO()
    call_command("load_catalogue", *demo_catalogue(), stdout=out)
    assert "GANCUJU_PLAYER: added (8 levels)" in out.getvalue()
    seed()
    codes = {"PLAYER", "COACH", "INTERNSHIP", "GANCUJU_PLAYER", "LFA_FOOTBALL_PLAYER"}
    assert set(Specialization.objects.values_list("code", flat=True)) == codes
    seeded = SpecializationProgress.objects.values_list("specialization_id", flat=True)
    assert set(seeded.distinct()) == codes
    reed = Level.objects.get(specialization_id="GANCUJU_PLAYER", number=3)
    assert (reed.name, reed.name_en, reed.required_projects) == ("Rugalmas Nád", "Flexible Reed", 1)
