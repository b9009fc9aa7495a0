"""A student addressed by user id or by the id a sending system knows them by."""

import pytest

from specializations.exceptions import (
    BadStudentReference,
    ExternalIdTaken,
    InvalidLedgerValue,
    UnknownExternalId,
    UnknownUser,
)
from specializations.models import ExternalId
from specializations.selectors import resolve_student
from specializations.services import link_external_id

pytestmark = pytest.mark.django_db


def test_a_student_is_found_by_user_id(student, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert resolve_student(user_id=student.pk) == student


def test_a_student_is_found_by_source_and_external_id(student, django_assert_num_queries):
    link_external_id(student, source="legacy", external_id="S-0042")

    with django_assert_num_queries(1):
        assert resolve_student(source="legacy", external_id="S-0042") == student


def test_an_external_id_is_unique_per_source_not_across_sources(student, make_user):
    other = make_user()
    link_external_id(student, source="legacy", external_id="7")
    link_external_id(other, source="quiz", external_id="7")

    assert resolve_student(source="legacy", external_id="7") == student
    assert resolve_student(source="quiz", external_id="7") == other


def test_linking_the_same_id_again_is_idempotent(student):
    first = link_external_id(student, source="legacy", external_id="S-1")

    assert link_external_id(student, source="legacy", external_id="S-1") == first
    assert ExternalId.objects.count() == 1


def test_an_external_id_that_names_another_student_is_refused(student, make_user):
    link_external_id(student, source="legacy", external_id="S-1")
    other = make_user()

    with pytest.raises(ExternalIdTaken) as raised:
        link_external_id(other, source="legacy", external_id="S-1")

    assert str(raised.value) == (
        f"external_id='S-1' of source='legacy' already names user {student.pk}, not user {other.pk}"
    )


def test_an_unknown_user_id_names_the_field_and_value():
    with pytest.raises(UnknownUser) as raised:
        resolve_student(user_id=999_999)

    assert str(raised.value) == "user_id=999999 is not a saved user"


def test_an_unknown_external_id_names_the_value_and_source(student):
    link_external_id(student, source="legacy", external_id="S-1")

    with pytest.raises(UnknownExternalId) as raised:
        resolve_student(source="quiz", external_id="S-1")

    assert str(raised.value) == "external_id='S-1' is not known for source='quiz'"


@pytest.mark.parametrize(
    "given, field",
    [
        ({}, "external_id"),
        ({"user_id": 1, "source": "legacy", "external_id": "x"}, "user_id"),
        ({"external_id": "x"}, "source"),
        ({"source": "legacy"}, "external_id"),
        ({"source": "legacy", "external_id": ""}, "external_id"),
        ({"user_id": "12"}, "user_id"),
        ({"user_id": True}, "user_id"),
        ({"user_id": 0}, "user_id"),
    ],
    ids=repr,
)
def test_a_reference_of_the_wrong_shape_names_the_field(given, field):
    with pytest.raises(BadStudentReference) as raised:
        resolve_student(**given)

    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}=")


def test_a_link_with_a_control_character_is_refused(student):
    with pytest.raises(InvalidLedgerValue) as raised:
        link_external_id(student, source="legacy", external_id="S\x00")

    assert raised.value.field == "external_id"
    assert not ExternalId.objects.exists()
