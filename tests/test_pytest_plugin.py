"""The shipped pytest plugin (monitoring/testing/plugin.py): loaded through its entry
point, and each fixture holds what it says. (A host project's tests use it too:
tests/test_host_project.py.)"""

import importlib.metadata

import pytest
from django.contrib.auth import get_user_model

from licenses.services import validate_consistency
from specializations.models import Specialization


def test_the_plugin_is_loaded_through_its_entry_point(pytestconfig):
    (entry,) = [
        entry
        for entry in importlib.metadata.entry_points(group="pytest11")
        if entry.value == "monitoring.testing.plugin"
    ]
    assert pytestconfig.pluginmanager.get_plugin(entry.name).__name__ == entry.value


def test_level_catalogue_is_the_default_catalogue(level_catalogue):
    assert {"PLAYER", "COACH", "INTERNSHIP"} <= set(level_catalogue)
    assert level_catalogue["PLAYER"].max_level == 8


def test_committed_db_commits_with_the_catalogue_in_place(committed_db):
    assert Specialization.objects.filter(code="PLAYER").exists()


def test_pair_is_enrolled_and_in_sync(pair):
    found = validate_consistency(pair, "PLAYER")
    assert (found.kind, found.progress_level, found.license_level) == ("ok", 1, 1)


def test_desynced_pair_is_a_licence_one_level_behind(desynced_pair):
    found = validate_consistency(desynced_pair, "PLAYER")
    assert (found.kind, found.progress_level, found.license_level) == ("level_mismatch", 3, 2)


def test_make_user_gives_each_user_a_name_of_its_own(make_user):
    assert make_user().get_username() != make_user().get_username()


@pytest.mark.django_db
def test_staff_client_is_logged_in_as_the_superuser(staff_client, staff):
    page = staff_client.get("/admin/")
    assert page.status_code == 200
    assert page.context["user"] == staff and staff.is_superuser
    assert get_user_model().objects.filter(is_staff=True).count() == 1
