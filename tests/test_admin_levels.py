"""Level edits in the progress and licence admin: both rows move with history, a reason and
a level in range are required; the licence history is read-only."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from licenses.admin import REASON_REQUIRED
from licenses.models import LicenseProgression, UserLicense
from specializations.models import SpecializationProgress
from tests.admin_pages import (
    change_form,
    make_pairs,
)


@pytest.mark.django_db
def test_admin_level_edit_moves_both_rows_with_history(staff_client, staff):
    (user,) = make_pairs(1, specialization="COACH", level=2)
    licence = UserLicense.objects.get(user=user)
    url = reverse("admin:licenses_userlicense_change", args=[licence.pk])
    response = staff_client.post(
        url, change_form(staff_client, url, current_level=5, reason="transfer from partner academy")
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    licence.refresh_from_db()
    assert (licence.current_level, licence.max_achieved_level) == (5, 5)
    assert SpecializationProgress.objects.get(student=user).current_level == 5
    entry = licence.progressions.first()
    assert (entry.from_level, entry.to_level, entry.advanced_by, entry.reason) == (
        2,
        5,
        staff,
        "transfer from partner academy",
    )


@pytest.mark.django_db
def test_admin_edit_of_level_and_is_active_together_locks_progress_first(staff_client, staff):
    (user,) = make_pairs(1, level=2)
    licence = UserLicense.objects.get(user=user)
    url = reverse("admin:licenses_userlicense_change", args=[licence.pk])
    data = change_form(staff_client, url, current_level=4, reason="suspended after promotion")
    del data["is_active"]  # an unchecked box is not posted
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    licence.refresh_from_db()
    assert (licence.current_level, licence.is_active) == (4, False)
    assert SpecializationProgress.objects.get(student=user).current_level == 4
    assert licence.progressions.first().reason == "suspended after promotion"

    sql = [q["sql"] for q in queries]

    def first(prefix, table):
        return next(i for i, q in enumerate(sql) if q.startswith(prefix) and table in q)

    # Same lock order as every other writer: progress, then the licence.
    progress_table = SpecializationProgress._meta.db_table
    licence_table = UserLicense._meta.db_table
    assert first("UPDATE", progress_table) < first("UPDATE", licence_table)
    if connection.vendor == "postgresql":
        locks = [q for q in sql if q.rstrip().endswith("FOR UPDATE")]
        assert progress_table in locks[0].split(" WHERE ")[0]


@pytest.mark.django_db
def test_progress_add_checks_the_level_range(staff_client, student):
    url = reverse("admin:specializations_specializationprogress_add")
    form = {
        "student": student.pk,
        "specialization": "INTERNSHIP",
        "total_xp": 0,
        "completed_sessions": 0,
        "completed_projects": 0,
        "theory_hours_completed": 0,
        "practice_hours_completed": 0,
    }
    response = staff_client.post(url, {**form, "current_level": 9})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["current_level"] == [
        "Choose a level from 1 to 3."
    ]
    assert not SpecializationProgress.objects.exists() and not UserLicense.objects.exists()

    assert staff_client.post(url, {**form, "current_level": 2}).status_code == 302
    assert SpecializationProgress.objects.get(student=student).current_level == 2
    assert UserLicense.objects.get(user=student).current_level == 2


@pytest.mark.django_db
def test_progress_level_edit_in_the_admin_moves_the_licence_too(staff_client, staff):
    (user,) = make_pairs(1, level=3)
    progress = SpecializationProgress.objects.get(student=user)
    url = reverse("admin:specializations_specializationprogress_change", args=[progress.pk])
    data = change_form(staff_client, url, current_level=1, reason="level set back after audit")
    assert staff_client.post(url, data).status_code == 302
    licence = UserLicense.objects.get(user=user)
    assert (licence.current_level, licence.max_achieved_level) == (1, 3)
    assert licence.progressions.first().advanced_by == staff


@pytest.mark.django_db
def test_level_edit_needs_a_reason_and_a_level_in_range(staff_client):
    (user,) = make_pairs(1, specialization="INTERNSHIP", level=1)
    licence = UserLicense.objects.get(user=user)
    url = reverse("admin:licenses_userlicense_change", args=[licence.pk])
    response = staff_client.post(url, change_form(staff_client, url, current_level=2, reason=" "))
    assert REASON_REQUIRED in response.context["adminform"].form.errors["reason"]
    response = staff_client.post(url, change_form(staff_client, url, current_level=9, reason="x"))
    assert "current_level" in response.context["adminform"].form.errors
    assert SpecializationProgress.objects.get(student=user).current_level == 1
    assert UserLicense.objects.get(user=user).current_level == 1


@pytest.mark.django_db
def test_licence_history_is_read_only(staff_client):
    make_pairs(1)
    entry = LicenseProgression.objects.get()
    url = reverse("admin:licenses_licenseprogression_change", args=[entry.pk])
    response = staff_client.get(url)
    assert response.status_code == 200
    assert b'name="reason"' not in response.content
    assert staff_client.post(url, {"reason": "rewritten"}).status_code == 403
    assert staff_client.get(reverse("admin:licenses_licenseprogression_add")).status_code == 403


@pytest.mark.django_db
def test_without_a_user_admin_a_new_progress_row_takes_the_student_by_id(
    staff_client, no_user_admin
):
    from tests.urls_without_user_admin import site

    page = staff_client.get(reverse("admin:specializations_specializationprogress_add"))
    assert page.status_code == 200
    html = page.content.decode()
    assert '<input type="text" name="student"' in html and "admin-autocomplete" not in html
    assert site.check(None) == []  # no admin.E039 for the missing user admin


@pytest.mark.django_db
def test_with_a_user_admin_a_new_progress_row_searches_the_student(staff_client):
    page = staff_client.get(reverse("admin:specializations_specializationprogress_add"))
    assert "admin-autocomplete" in page.content.decode()
