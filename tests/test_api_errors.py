"""Every refusal is application/problem+json naming the field and the value, a 4xx,
and writes nothing."""

import json

import pytest

from api.problems import CONTENT_TYPE
from specializations.models import ProgressEvent, SpecializationProgress

pytestmark = pytest.mark.django_db


@pytest.fixture
def send(client, api_headers):
    headers = api_headers()

    def post(body, *, key="key-1", path="/api/v1/events", raw=None, **extra):
        data = raw if raw is not None else json.dumps(body)
        return client.post(
            path, data, content_type="application/json",
            headers={**headers, **({"Idempotency-Key": key} if key else {}), **extra},
        )  # fmt: skip

    return post


def problem(reply, status):
    assert reply.status_code == status, reply.content
    assert reply["Content-Type"] == CONTENT_TYPE
    body = reply.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert not ProgressEvent.objects.exclude(source="opening").exists()
    return body


@pytest.mark.parametrize(
    "change, field, value",
    [
        ({"xp": -5}, "xp", -5),
        ({"xp": 1.5}, "xp", 1.5),
        ({"xp": "150"}, "xp", "150"),
        ({"sessions": True}, "sessions", True),
        ({"xp": 1_000_001}, "xp", 1_000_001),
        ({"practice_hours": 10_001}, "practice_hours", 10_001),
        ({"colour": "red"}, "colour", "red"),
        ({"specialization": "player"}, "specialization", "player"),
        ({"occurred_at": "yesterday"}, "occurred_at", "yesterday"),
        ({"occurred_at": "2026-03-02T17:30:00"}, "occurred_at", "2026-03-02T17:30:00"),
        ({"reason": "x" * 256}, "reason", "x" * 100 + "..."),
    ],
)
def test_a_bad_field_is_a_422_naming_field_and_value(send, student, change, field, value):
    body = problem(send({"student_id": student.pk, "specialization": "PLAYER", **change}), 422)
    assert {"field": field, "value": value} in [
        {"field": e["field"], "value": e["value"]} for e in body["errors"]
    ]
    assert body["detail"].startswith(f"{field}={value!r}: ")


def test_both_or_neither_student_reference_is_a_422(send, student):
    problem(send({"specialization": "PLAYER", "xp": 1}), 422)
    problem(send({"student_id": student.pk, "external_id": "x", "specialization": "PLAYER"}), 422)


def test_an_unknown_specialization_is_a_422_naming_it(send, student):
    body = problem(send({"student_id": student.pk, "specialization": "CHESS", "xp": 1}), 422)
    assert body["errors"][0]["field"] == "specialization"
    assert body["errors"][0]["value"] == "CHESS"


def test_an_unknown_student_is_a_404_naming_the_id(send):
    body = problem(send({"student_id": 987654, "specialization": "PLAYER", "xp": 1}), 404)
    assert "987654" in body["detail"]


def test_an_unknown_external_id_is_a_404_naming_it_and_the_namespace(send):
    body = problem(send({"external_id": "src-404", "specialization": "PLAYER", "xp": 1}), 404)
    assert "'src-404'" in body["detail"] and "'attendance'" in body["detail"]


def test_malformed_json_is_a_400_saying_where(send):
    body = problem(send(None, raw=b'{"student_id": 1,'), 400)
    assert body["type"].endswith(":malformed-json") and "line 1" in body["detail"]


def test_a_body_that_is_not_utf8_is_a_400(send):
    problem(send(None, raw=b'{"reason": "\xff"}'), 400)


def test_an_array_body_is_a_422(send):
    problem(send(None, raw=b"[1, 2]"), 422)


def test_a_missing_idempotency_key_is_a_400(send, student):
    body = problem(send({"student_id": student.pk, "specialization": "PLAYER"}, key=None), 400)
    assert body["type"].endswith(":idempotency-key")


def test_a_key_with_a_space_is_a_400(send, student):
    problem(send({"student_id": student.pk, "specialization": "PLAYER"}, key="a b"), 400)


def test_a_body_over_one_mebibyte_is_a_413(send, student):
    body = {"student_id": student.pk, "specialization": "PLAYER", "reason": "x" * (1 << 20)}
    assert "1048576" in problem(send(body), 413)["detail"]


def test_a_chunked_body_is_a_411(send, student):
    problem(send({"student_id": student.pk}, **{"Transfer-Encoding": "chunked"}), 411)


@pytest.mark.parametrize(
    "raw",
    [b'{"specialization": "PLAYER", "reason": "a\\u0000b", "student_id": 1}',
     b'{"specialization": "PLAYER", "reason": "a\x00b", "student_id": 1}',
     b'{"specialization": "PLAYER", "reason": "\\\\\\u0000", "student_id": 1}'],
)  # fmt: skip
def test_a_nul_in_the_body_is_a_400(send, raw):
    assert problem(send(None, raw=raw), 400)["type"].endswith(":nul-character")


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(send, student):
    raw = b'{"specialization": "PLAYER", "reason": "\\\\u0000", "student_id": %d}' % student.pk
    assert send(None, raw=raw).status_code == 201


def test_a_nul_in_the_query_or_path_is_a_400_problem(client, api_headers):
    headers = api_headers()
    assert problem(client.get("/api/v1/catalogue?x=a%00b", headers=headers), 400)
    assert problem(client.get("/api/v1/students/1%00/progress", headers=headers), 400)


def test_a_nul_in_a_header_is_a_400_problem_naming_the_header(send, student):
    body = {"student_id": student.pk, "specialization": "PLAYER", "xp": 1}
    answer = problem(send(body, **{"X-Request-Note": "a\x00b"}), 400)
    assert answer["type"].endswith(":nul-character") and "'X-Request-Note'" in answer["detail"]


def test_an_unknown_path_is_a_404_problem(client, api_headers):
    problem(client.get("/api/v1/nothing/here", headers=api_headers()), 404)
    problem(client.get("/api/v2/catalogue"), 404)


def test_a_wrong_method_is_a_405_problem_with_allow(client, api_headers):
    reply = client.delete("/api/v1/catalogue", headers=api_headers())
    problem(reply, 405)
    assert reply["Allow"] == "GET"
    assert problem(client.get("/api/v1/events", headers=api_headers()), 405)


def test_a_batch_over_the_limit_is_a_422_and_writes_nothing(send, student, settings):
    settings.API_MAX_BATCH_EVENTS = 3
    events = [
        {"key": f"k{i}", "student_id": student.pk, "specialization": "PLAYER", "xp": 1}
        for i in range(4)
    ]
    body = problem(send({"events": events}, key=None, path="/api/v1/events/batch"), 422)
    assert body["errors"] == [{"field": "events", "value": 4, "message": "at most 3 events"}]
    assert not SpecializationProgress.objects.exists()


def test_a_batch_over_the_limit_is_refused_for_its_length_whatever_else_is_wrong(
    send, student, settings
):
    settings.API_MAX_BATCH_EVENTS = 3  # so no event is looked up one by one past it
    events = [{"key": f"k{i}", "student_id": 987654, "specialization": "PLAYER", "xp": -i}
              for i in range(4)]  # fmt: skip
    body = problem(send({"events": events}, key=None, path="/api/v1/events/batch"), 422)
    assert body["errors"] == [{"field": "events", "value": 4, "message": "at most 3 events"}]


def test_the_default_limit_takes_1000_events_and_refuses_1001(send, student):
    def batch(n):
        return {"events": [{"key": f"k{i}", "student_id": student.pk, "specialization": "PLAYER",
                            "xp": 1} for i in range(n)]}  # fmt: skip

    body = problem(send(batch(1001), key=None, path="/api/v1/events/batch"), 422)
    assert body["errors"] == [{"field": "events", "value": 1001, "message": "at most 1000 events"}]
    reply = send(batch(1000), key=None, path="/api/v1/events/batch")
    assert reply.status_code == 200 and reply.json()["applied"] == 1000


def test_djangos_own_body_limit_caps_the_apis(send, student, settings):
    settings.API_MAX_BODY_BYTES = 10 << 20
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {"student_id": student.pk, "specialization": "PLAYER", "reason": "x" * 2000}
    assert "over the limit of 1000 bytes" in problem(send(body), 413)["detail"]


def strict_json(reply) -> dict:
    """The body as a strict parser reads it: no Infinity or NaN, valid UTF-8."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(reply.content.decode("utf-8"), parse_constant=refuse)


@pytest.mark.parametrize(
    "fields, field, value",
    [
        ('"reason": "a \\ud800"', "reason", "a \ud800"),  # a lone surrogate: no UTF-8 has it
        ('"reason": "\\udc00"', "reason", "\udc00"),
        ('"colour\\ud800": 1', "body", "colour\ud800"),  # an unknown field's name
        ('"specialization": "\\ud800"', "specialization", "\ud800"),
        ('"student_id": 9223372036854775808', "student_id", 2**63),  # past any 64-bit id
        ('"occurred_at": "9999-12-31T23:59:59-14:00"', "occurred_at", None),  # past year 9999
        ('"occurred_at": "0001-01-01T00:00:00+14:00"', "occurred_at", None),  # before year 1
        ('"xp": 1e400', "xp", "inf"),  # JSON's parser makes it infinite
    ],
)
def test_values_no_database_or_json_can_hold_are_a_422_in_valid_json(
    send, student, fields, field, value
):
    # A later key wins in JSON as Python reads it: ``fields`` may replace the first two.
    body = f'{{"student_id": {student.pk}, "specialization": "PLAYER", {fields}}}'
    reply = send(None, raw=body)
    assert reply.status_code == 422, reply.content
    answer = strict_json(reply)
    named = [error for error in answer.get("errors", []) if error["field"] == field]
    assert named, answer
    if value is not None:
        assert named[0]["value"] == value
    assert f"{field}=" in answer["detail"]
    assert not ProgressEvent.objects.exclude(source="opening").exists()


def test_a_path_id_past_any_64_bit_id_is_a_404(client, api_headers):
    reply = client.get("/api/v1/students/9223372036854775808/progress", headers=api_headers())
    assert reply.status_code == 404, reply.content
    assert "student_id=9223372036854775808" in strict_json(reply)["detail"]
