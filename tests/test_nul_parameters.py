"""A NUL in a query parameter is a 400 naming it, before any view can reach the database."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from licenses.models import UserLicense

pytestmark = pytest.mark.django_db


AUTOCOMPLETE = {
    "app_label": "specializations",
    "model_name": "specializationprogress",
    "field_name": "student",
}


def test_the_admin_autocomplete_refuses_a_nul_search_term(staff_client):
    # Django's own view: its search would reach PostgreSQL, which cannot compare a NUL.
    response = staff_client.get(reverse("admin:autocomplete"), {**AUTOCOMPLETE, "term": "a\x00b"})
    assert response.status_code == 400
    assert response.content.decode() == "Bad query parameter 'term': it contains a NUL character."
    ok = staff_client.get(reverse("admin:autocomplete"), {**AUTOCOMPLETE, "term": "staff"})
    assert ok.status_code == 200


def test_a_nul_in_a_parameter_name_or_a_form_field_writes_nothing(staff_client):
    named = staff_client.get(reverse("admin:licenses_userlicense_changelist") + "?a%00b=1")
    assert named.status_code == 400 and "'a\\x00b'" in named.content.decode()  # repr shows it
    # A form field is refused by Django's own validator, as a form error.
    users = get_user_model().objects.count()
    response = staff_client.post(
        reverse("admin:auth_user_add"),
        {"username": "x\x00y", "password1": "long-enough-9", "password2": "long-enough-9"},
    )
    assert response.status_code == 200
    assert "Null characters are not allowed." in response.content.decode()
    assert get_user_model().objects.count() == users
    assert not UserLicense.objects.exists()
