import pytest
from django.core.management import call_command

from specializations import catalogue
from specializations.models import Level, Specialization

pytestmark = pytest.mark.django_db

EXPECTED = {"PLAYER": 8, "COACH": 8, "INTERNSHIP": 3}


def test_catalogue_is_complete():
    assert dict(Specialization.objects.values_list("code", "max_level")) == EXPECTED
    for code, max_level in EXPECTED.items():
        numbers = list(
            Level.objects.filter(specialization_id=code)
            .order_by("number")
            .values_list("number", flat=True)
        )
        assert numbers == list(range(1, max_level + 1))


@pytest.mark.parametrize("code", EXPECTED)
def test_required_xp_strictly_increases(code):
    xp = list(
        Level.objects.filter(specialization_id=code)
        .order_by("number")
        .values_list("required_xp", flat=True)
    )
    assert all(a < b for a, b in zip(xp, xp[1:], strict=False))


def test_catalogue_holds_the_real_figures():
    player8 = Level.objects.get(specialization_id="PLAYER", number=8)
    assert (player8.name, player8.required_xp, player8.required_sessions) == (
        "Dragon Wisdom",
        250_000,
        30,
    )
    coach1 = Level.objects.get(specialization_id="COACH", number=1)
    assert (coach1.theory_hours, coach1.practice_hours, coach1.total_hours) == (30, 50, 80)
    intern3 = Level.objects.get(specialization_id="INTERNSHIP", number=3)
    assert (intern3.name, intern3.required_xp, intern3.total_hours) == (
        "Startup Leader",
        28_000,
        130,
    )


def test_catalogue_is_read_once_and_cached(django_assert_num_queries):
    catalogue.get_specialization("PLAYER")
    with django_assert_num_queries(0):
        for code in EXPECTED:
            catalogue.get_specialization(code)


def test_cache_follows_a_catalogue_change():
    assert catalogue.get_specialization("INTERNSHIP").levels[2].required_xp == 28_000
    level = Level.objects.get(specialization_id="INTERNSHIP", number=3)
    level.required_xp = 30_000
    level.save()
    assert catalogue.get_specialization("INTERNSHIP").levels[2].required_xp == 30_000


@pytest.mark.django_db(transaction=True)
def test_migrations_apply_from_zero_and_back(committed_db):
    call_command("migrate", "specializations", "zero", verbosity=0)
    call_command("migrate", verbosity=0)
    assert Level.objects.count() == 19


def test_an_edit_made_by_another_process_is_picked_up_after_the_cache_age(settings):
    settings.SYNC_CATALOGUE_CACHE_SECONDS = 0
    assert catalogue.get_specialization("PLAYER").levels[1].required_xp == 25_000
    # A queryset update sends no signal, like an edit in another process.
    Level.objects.filter(specialization_id="PLAYER", number=2).update(required_xp=26_000)
    assert catalogue.get_specialization("PLAYER").levels[1].required_xp == 26_000


def test_a_level_missing_from_the_catalogue_is_not_skipped(make_user):
    # Levels are reached in order: with level 3 gone (an admin deleted its row),
    # a student with enough for every level stops at 2 instead of jumping to 8.
    Level.objects.filter(specialization_id="PLAYER", number=3).delete()
    catalogue.clear_cache()
    from specializations.services import update_progress

    result = update_progress(make_user(), "PLAYER", xp_gained=10**9, sessions_completed=10**6)
    assert result.new_level == 2
