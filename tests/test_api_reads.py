"""Reads for other systems: a student's progress with what the next level needs, and
the catalogue; a fixed number of queries however many specializations."""

from datetime import datetime, timedelta

import pytest

from licenses.models import UserLicense
from specializations.catalogue import get_specialization
from specializations.services import enroll, link_external_id, update_progress

pytestmark = pytest.mark.django_db


@pytest.fixture
def headers(api_headers):
    return api_headers()


def test_progress_shows_level_totals_licence_and_what_is_missing(client, headers, student):
    update_progress(student, "PLAYER", xp_gained=24_650, sessions_completed=10)
    reply = client.get(f"/api/v1/students/{student.pk}/progress", headers=headers)
    assert reply.status_code == 200
    body = reply.json()
    assert (body["student_id"], body["external_id"]) == (student.pk, None)
    [player] = body["specializations"]
    level_2 = get_specialization("PLAYER").levels[1]
    licence = UserLicense.objects.get(user=student)
    assert player["specialization"] == "PLAYER" and player["level"] == 1
    assert player["level_name"] == get_specialization("PLAYER").levels[0].name
    assert player["totals"] == {"xp": 24_650, "sessions": 10, "projects": 0,
                                "theory_hours": 0, "practice_hours": 0}  # fmt: skip
    started = datetime.fromisoformat(player["licence"].pop("started_at"))
    assert abs(started - licence.started_at) < timedelta(milliseconds=1)
    assert player["licence"] == {"level": 1, "highest_level": 1, "active": True}
    assert player["next_level"]["number"] == 2 and player["next_level"]["name"] == level_2.name
    assert player["next_level"]["missing"] == {
        "xp": level_2.required_xp - 24_650,
        "sessions": level_2.required_sessions - 10,
    }


def test_the_top_level_has_no_next_level(client, headers, student):
    info = get_specialization("INTERNSHIP")
    top = info.levels[-1]
    update_progress(
        student, "INTERNSHIP", xp_gained=top.required_xp, sessions_completed=top.required_sessions,
        theory_hours=top.theory_hours + top.total_hours, practice_hours=top.practice_hours,
    )  # fmt: skip
    [row] = client.get(f"/api/v1/students/{student.pk}/progress", headers=headers).json()[
        "specializations"
    ]
    assert row["level"] == info.max_level and row["next_level"] is None


def test_progress_by_external_id_reads_the_clients_namespace(client, headers, student):
    link_external_id(student, source="attendance", external_id="src-17")
    enroll(student, "COACH")
    body = client.get("/api/v1/students/external/src-17/progress", headers=headers).json()
    assert (body["student_id"], body["external_id"]) == (student.pk, "src-17")
    assert [row["specialization"] for row in body["specializations"]] == ["COACH"]


def test_an_unknown_student_is_a_404_problem(client, headers):
    assert client.get("/api/v1/students/987654/progress", headers=headers).status_code == 404
    assert (
        client.get("/api/v1/students/external/nobody/progress", headers=headers).status_code == 404
    )


def test_a_student_in_nothing_has_an_empty_list(client, headers, student):
    body = client.get(f"/api/v1/students/{student.pk}/progress", headers=headers).json()
    assert body["specializations"] == []


def test_reading_progress_costs_two_queries_whatever_the_specializations(
    client, headers, student, django_assert_num_queries
):
    client.get("/api/v1/catalogue", headers=headers)  # the key (then cached), the catalogue
    for code in ("PLAYER", "COACH", "INTERNSHIP"):
        enroll(student, code)
    with django_assert_num_queries(2):  # the progress rows, the licences
        body = client.get(f"/api/v1/students/{student.pk}/progress", headers=headers).json()
    assert len(body["specializations"]) == 3


def test_a_student_in_no_specialization_costs_one_more_query(
    client, headers, student, django_assert_num_queries
):
    client.get("/api/v1/catalogue", headers=headers)
    with django_assert_num_queries(2):  # no progress rows: is there such a student?
        body = client.get(f"/api/v1/students/{student.pk}/progress", headers=headers).json()
    assert body == {"student_id": student.pk, "external_id": None, "specializations": []}


def test_the_catalogue_lists_every_specialization_and_level(client, headers):
    body = client.get("/api/v1/catalogue", headers=headers).json()
    coach = next(s for s in body["specializations"] if s["code"] == "COACH")
    info = get_specialization("COACH")
    assert coach["max_level"] == info.max_level and len(coach["levels"]) == len(info.levels)
    assert coach["levels"][1]["requires"]["theory_hours"] == info.levels[1].theory_hours


def test_the_catalogue_costs_two_queries(client, headers, django_assert_num_queries):
    client.get("/api/v1/catalogue", headers=headers)
    with django_assert_num_queries(2):  # the specializations, the levels (the key is cached)
        assert client.get("/api/v1/catalogue", headers=headers).status_code == 200


def test_the_catalogue_shows_the_requirements_the_product_does_not_check(client, headers):
    from specializations.models import Level

    Level.objects.filter(specialization_id="COACH", number=2).update(
        unchecked_requirements={"min_age": 18, "mandatory_courses": ["first aid"]},
        name_en="Assistant",
    )
    body = client.get("/api/v1/catalogue", headers=headers).json()
    coach = next(s for s in body["specializations"] if s["code"] == "COACH")
    assert coach["levels"][1]["unchecked_requirements"] == {
        "min_age": 18, "mandatory_courses": ["first aid"]
    }  # fmt: skip
    assert coach["levels"][1]["name_en"] == "Assistant"
    assert coach["levels"][0]["unchecked_requirements"] == {}


def test_missing_projects_are_named(client, headers, student):
    from specializations.models import Level

    Level.objects.filter(specialization_id="PLAYER", number=2).update(
        required_xp=0, required_sessions=0, required_projects=3
    )
    update_progress(student, "PLAYER", projects_completed=1)
    [row] = client.get(f"/api/v1/students/{student.pk}/progress", headers=headers).json()[
        "specializations"
    ]
    assert row["next_level"]["missing"] == {"projects": 2}
    assert row["next_level"]["requires"]["projects"] == 3
