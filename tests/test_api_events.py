"""Sending progress: once per Idempotency-Key, through the ledger, the licence following."""

import json

import pytest

from licenses.models import UserLicense
from specializations.models import ProgressEvent, SpecializationProgress
from specializations.services import link_external_id

pytestmark = pytest.mark.django_db


@pytest.fixture
def headers(api_headers):
    return api_headers()


def post(client, headers, body, *, key="key-1", path="/api/v1/events"):
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(
        path, json.dumps(body), content_type="application/json", headers={**headers, **extra}
    )


def events():
    return ProgressEvent.objects.exclude(source="opening")


def test_an_event_is_applied_once_with_its_outcome(client, headers, student):
    body = {"student_id": student.pk, "specialization": "PLAYER", "xp": 25_000, "sessions": 12}
    reply = post(client, headers, {**body, "reason": "tournament"})
    assert reply.status_code == 201
    body = reply.json()
    event = events().get()
    assert body == {
        "event_id": event.pk,
        "student_id": student.pk,
        "external_id": None,
        "specialization": "PLAYER",
        "level_before": 1,
        "level_after": 2,
        "levels_gained": 1,
        "totals": {"xp": 25_000, "sessions": 12, "projects": 0, "theory_hours": 0,
                   "practice_hours": 0},
        "licence_level": 2,
        "occurred_at": body["occurred_at"],
    }  # fmt: skip
    assert (event.source, event.idempotency_key, event.reason) == (
        "attendance",
        "key-1",
        "tournament",
    )
    assert UserLicense.objects.get(user=student).current_level == 2
    assert "Idempotent-Replayed" not in reply


def test_the_same_key_and_body_again_is_a_200_replay_with_the_same_body(client, headers, student):
    body = {"student_id": student.pk, "specialization": "PLAYER", "xp": 100}
    first = post(client, headers, body)
    again = post(client, headers, body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert SpecializationProgress.objects.get(student=student).total_xp == 100
    assert events().count() == 1


def test_the_same_key_with_another_body_is_a_409_and_writes_nothing(client, headers, student):
    post(client, headers, {"student_id": student.pk, "specialization": "PLAYER", "xp": 100})
    for other in ({"xp": 101}, {"xp": 100, "reason": "another"}):
        reply = post(client, headers, {"student_id": student.pk, "specialization": "PLAYER",
                                       **other})  # fmt: skip
        assert reply.status_code == 409
        assert reply.json()["type"].endswith(":idempotency-conflict")
        assert "'key-1'" in reply.json()["detail"]
    assert SpecializationProgress.objects.get(student=student).total_xp == 100


def test_keys_are_per_client(client, api_headers, student):
    body = {"student_id": student.pk, "specialization": "PLAYER", "xp": 100}
    assert post(client, api_headers("quiz"), body).status_code == 201
    assert post(client, api_headers("attendance"), body).status_code == 201
    assert SpecializationProgress.objects.get(student=student).total_xp == 200


def test_a_key_used_outside_the_api_under_the_clients_name_is_a_409(client, headers, student):
    from specializations.services import update_progress

    update_progress(student, "PLAYER", xp_gained=5, source="attendance", idempotency_key="k")
    body = {"student_id": student.pk, "specialization": "PLAYER", "xp": 5}
    assert post(client, headers, body, key="k").status_code == 409


def test_an_external_id_is_read_in_the_clients_own_namespace(client, headers, make_user):
    mine, theirs = make_user(), make_user()
    link_external_id(mine, source="attendance", external_id="src-17")
    link_external_id(theirs, source="replaced-system", external_id="src-17")
    reply = post(client, headers, {"external_id": "src-17", "specialization": "PLAYER", "xp": 9})
    assert reply.status_code == 201
    assert (reply.json()["student_id"], reply.json()["external_id"]) == (mine.pk, "src-17")


def test_a_client_configured_for_another_namespace_reads_its_ids(client, api_headers, make_user):
    theirs = make_user()
    link_external_id(theirs, source="replaced-system", external_id="src-17")
    headers = api_headers("quiz", external_id_source="replaced-system")
    reply = post(client, headers, {"external_id": "src-17", "specialization": "PLAYER", "xp": 9})
    assert reply.status_code == 201 and reply.json()["student_id"] == theirs.pk
    assert ProgressEvent.objects.get(idempotency_key="key-1").source == "quiz"


def batch(client, headers, items):
    return post(client, headers, {"events": items}, key=None, path="/api/v1/events/batch")


def item(key, student, **amounts):
    return {"key": key, "student_id": student.pk, "specialization": "PLAYER", **amounts}


def test_a_batch_is_applied_in_order_and_reports_each_item(client, headers, make_user):
    a, b = make_user(), make_user()
    reply = batch(client, headers, [item("a1", a, xp=10), item("b1", b, xp=5), item("a2", a, xp=1)])
    assert reply.status_code == 200
    body = reply.json()
    assert (body["applied"], body["replayed"]) == (3, 0)
    assert [i["event"]["totals"]["xp"] for i in body["items"]] == [10, 5, 11]
    assert [(i["index"], i["key"], i["status"]) for i in body["items"]] == [
        (0, "a1", "applied"), (1, "b1", "applied"), (2, "a2", "applied")
    ]  # fmt: skip


def test_replayed_items_in_a_batch_are_reported_not_applied_again(client, headers, student):
    assert post(client, headers, {"student_id": student.pk, "specialization": "PLAYER",
                                  "xp": 10}, key="k1").status_code == 201  # fmt: skip
    body = batch(client, headers, [item("k1", student, xp=10), item("k2", student, xp=1),
                                   item("k2", student, xp=1)]).json()  # fmt: skip
    assert [i["status"] for i in body["items"]] == ["replayed", "applied", "replayed"]
    assert (body["applied"], body["replayed"]) == (1, 2)
    assert SpecializationProgress.objects.get(student=student).total_xp == 11


def test_a_bad_batch_lists_every_bad_item_and_applies_nothing(client, headers, student):
    items = [
        item("ok", student, xp=10),
        item("neg", student, xp=-1),
        {"key": "who", "student_id": 987654, "specialization": "PLAYER"},
        item("spec", student) | {"specialization": "CHESS"},
        {"key": "ext", "external_id": "nobody", "specialization": "PLAYER"},
        item("dup", student, xp=1),
        item("dup", student, xp=2),
    ]
    reply = batch(client, headers, items)
    assert reply.status_code == 422
    # One answer: the schema's refusals (a negative amount) and those of the well-formed
    # events (an unknown student, specialization or external id, a key reused).
    assert reply.json()["detail"] == "5 of 7 events refused; nothing was applied."
    assert [(e["index"], e["field"], e["value"]) for e in reply.json()["errors"]] == [
        (1, "events.1.xp", -1),
        (2, "events.2.student_id", 987654),
        (3, "events.3.specialization", "CHESS"),
        (4, "events.4.external_id", "nobody"),
        (6, "events.6.key", "dup"),
    ]
    del items[1]  # the same refusals, one place earlier, without the schema's
    errors = batch(client, headers, items).json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [
        (1, "events.1.student_id"), (2, "events.2.specialization"),
        (3, "events.3.external_id"), (5, "events.5.key"),
    ]  # fmt: skip
    assert not events().exists()
    assert not SpecializationProgress.objects.exists()


def test_a_batch_conflicting_with_an_earlier_key_applies_nothing(client, headers, student):
    post(client, headers, {"student_id": student.pk, "specialization": "PLAYER", "xp": 10},
         key="k1")  # fmt: skip
    reply = batch(client, headers, [item("k2", student, xp=1), item("k1", student, xp=99)])
    assert reply.status_code == 409
    assert reply.json()["errors"][0]["index"] == 1
    assert SpecializationProgress.objects.get(student=student).total_xp == 10


def test_an_event_on_a_pair_without_its_licence_answers_licence_level_null(
    client, headers, student
):
    """A desync (check_sync reports it, repair creates the licence): the event still applies."""
    from licenses.models import LicenseProgression
    from specializations.services import enroll

    enroll(student, "PLAYER")
    LicenseProgression.objects.filter(license__user=student).delete()
    UserLicense.objects.filter(user=student).delete()
    reply = post(client, headers, {"student_id": student.pk, "specialization": "PLAYER", "xp": 5})
    assert reply.status_code == 201, reply.content
    assert reply.json()["licence_level"] is None
    replay = post(client, headers, {"student_id": student.pk, "specialization": "PLAYER", "xp": 5})
    assert replay.status_code == 200 and replay.json() == reply.json()


def test_one_event_costs_a_fixed_number_of_statements(client, headers, student):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    post(client, headers, {"student_id": student.pk, "specialization": "PLAYER", "xp": 5})
    with CaptureQueriesContext(connection) as queries:
        reply = post(client, headers, {"student_id": student.pk, "specialization": "PLAYER",
                                       "xp": 5}, key="key-2")  # fmt: skip
    assert reply.status_code == 201
    statements = [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]
    # The key is cached. The row lock, the totals and the event (one statement on
    # PostgreSQL), the answer with the licence level.
    assert len(statements) == (3 if connection.vendor == "postgresql" else 4), statements


def test_a_batch_lists_every_key_used_before_for_another_event(client, headers, student):
    for key in ("k1", "k2"):
        post(client, headers, {"student_id": student.pk, "specialization": "PLAYER", "xp": 10},
             key=key)  # fmt: skip
    reply = batch(client, headers, [item("k1", student, xp=10) | {"reason": "other"},
                                    item("k3", student, xp=1),
                                    item("k2", student, xp=10) | {"reason": "other"}])  # fmt: skip
    assert reply.status_code == 409
    assert [(e["index"], e["value"]) for e in reply.json()["errors"]] == [(0, "k1"), (2, "k2")]
    assert SpecializationProgress.objects.get(student=student).total_xp == 20


@pytest.mark.parametrize("size", [3, 30])
def test_a_batch_of_new_keys_costs_the_same_statements_whatever_its_size(
    client, headers, make_user, size
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    users = [make_user() for _ in range(size)]
    for user in users:
        post(client, headers, {"student_id": user.pk, "specialization": "PLAYER", "xp": 1},
             key=f"enrol-{user.pk}")  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        reply = batch(client, headers, [item(f"b-{u.pk}", u, xp=2) for u in users])
    assert reply.status_code == 200 and reply.json()["applied"] == size
    statements = [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]
    # The students; the ledger's earlier keys (none), the rows, their locks (where rows
    # lock), the totals, the events; the licence levels; the answers. (The key is cached.)
    assert len(statements) == (8 if connection.features.has_select_for_update else 7), statements


def test_a_full_batch_applies_every_event(client, headers):
    """1,000 events (API_MAX_BATCH_EVENTS) over 500 new students: each statement holds
    the whole batch on both databases."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    User.objects.bulk_create(User(username=f"full-{i}") for i in range(500))
    ids = list(User.objects.filter(username__startswith="full-").values_list("pk", flat=True))
    items = [{"key": f"f-{n}", "student_id": ids[n % 500], "specialization": "PLAYER", "xp": 3}
             for n in range(1000)]  # fmt: skip
    reply = batch(client, headers, items)
    assert reply.status_code == 200, reply.content[:300]
    assert reply.json()["applied"] == len(items) == 1000
    totals = SpecializationProgress.objects.filter(student_id__in=ids).values_list(
        "total_xp", flat=True
    )
    assert sorted(set(totals)) == [6]


def test_deleting_a_client_takes_its_recorded_answers_along(client, headers, student):
    """The answers have no database constraint to their client (its check ran for every
    answer at COMMIT, rows locked): the ORM's cascade is what removes them."""
    from api.models import ApiClient, IdempotentRequest

    body = {"student_id": student.pk, "specialization": "PLAYER", "xp": 5}
    assert post(client, headers, body).status_code == 201
    assert IdempotentRequest.objects.count() == 1

    ApiClient.objects.all().delete()

    assert IdempotentRequest.objects.count() == 0
    assert events().count() == 1  # the ledger keeps its history


def test_no_database_constraint_is_checked_per_recorded_answer():
    from django.db import connection

    from api.models import IdempotentRequest

    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(
            cursor, IdempotentRequest._meta.db_table
        )
    assert [name for name, c in constraints.items() if c["foreign_key"]] == []


def test_a_fingerprint_is_the_canonical_json_of_the_validated_event():
    # Recorded fingerprints outlive a deploy: a retry after an upgrade must still be a
    # replay, so the form is pinned (sorted keys, no spaces, ASCII escapes, defaults in,
    # the batch's key out).
    import hashlib

    from api.events import fingerprint
    from api.schemas import BatchEventIn

    event = BatchEventIn(
        key="k-1", external_id="src-17", specialization="COACH", xp=150,
        reason="edzés – Győr", occurred_at="2026-03-02T17:30:00+01:00",
    )  # fmt: skip
    canonical = (
        '{"external_id":"src-17","occurred_at":"2026-03-02T17:30:00+01:00","practice_hours":0,'
        '"projects":0,"reason":"edz\\u00e9s \\u2013 Gy\\u0151r","sessions":0,'
        '"specialization":"COACH","student_id":null,"theory_hours":0,"xp":150}'
    )
    assert fingerprint(event) == hashlib.sha256(canonical.encode()).hexdigest()
