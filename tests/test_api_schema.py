"""The OpenAPI schema: valid, served, documented from the code, and true: each documented
request example, sent to the endpoint, gets a documented answer of the documented shape."""

import json

import pytest
from django.contrib.staticfiles import finders
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from specializations.services import link_external_id

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client):
    reply = client.get("/api/v1/openapi.json")
    assert reply.status_code == 200
    return reply.json()


def test_the_schema_is_valid_openapi(schema):
    validate(schema)
    assert schema["info"]["version"] == "1"
    assert {"/api/v1/events", "/api/v1/events/batch", "/api/v1/catalogue"} <= set(schema["paths"])


def test_every_operation_documents_its_problems(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status in ("401", "403", "422"):
                content = operation["responses"][status]["content"]
                assert list(content) == ["application/problem+json"], (method, path, status)


def conforms(schema, reply, operation):
    """The reply's status, content type and body are as the operation documents them."""
    [(content_type, documented)] = operation["responses"][str(reply.status_code)]["content"].items()
    assert reply["Content-Type"].split(";")[0] == content_type
    OAS31Validator({**documented["schema"], "components": schema["components"]}).validate(
        reply.json()
    )


def request_examples(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody")
            if body is None:
                continue
            ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            for example in schema["components"]["schemas"][ref].get("examples", []):
                yield path, method, operation, example


def test_each_request_example_gets_a_documented_answer(client, schema, api_headers, student):
    headers = api_headers()
    link_external_id(student, source="attendance", external_id="src-17")
    walked = 0
    for path, method, operation, example in request_examples(schema):
        reply = getattr(client, method)(
            path, json.dumps(example), content_type="application/json",
            headers={**headers, "Idempotency-Key": f"example-{walked}"},
        )  # fmt: skip
        assert str(reply.status_code) in operation["responses"], (path, reply.content)
        assert reply.status_code < 300, (path, reply.content)
        conforms(schema, reply, operation)
        walked += 1
    assert walked >= 2


def test_a_batch_answers_in_its_documented_shape_applied_and_replayed(
    client, schema, api_headers, student
):
    # Its answer is written as JSON by the view, not by the response schema: held to it here.
    headers = api_headers()
    operation = schema["paths"]["/api/v1/events/batch"]["post"]
    event = {"student_id": student.pk, "specialization": "PLAYER", "xp": 5}
    first = [{**event, "key": "a"}, {**event, "key": "b", "reason": "Bambusz Tanítvány"}]
    for events in (first, [*first, {**event, "key": "c"}]):
        reply = client.post("/api/v1/events/batch", json.dumps({"events": events}),
                            content_type="application/json", headers=headers)  # fmt: skip
        assert reply.status_code == 200 and reply["Content-Type"].startswith("application/json")
        conforms(schema, reply, operation)
    assert [item["status"] for item in reply.json()["items"]] == ["replayed", "replayed", "applied"]


def test_each_read_answers_in_its_documented_shape(client, schema, api_headers, student):
    headers = api_headers()
    link_external_id(student, source="attendance", external_id="src-17")
    client.post(
        "/api/v1/events", json.dumps({"student_id": student.pk, "specialization": "PLAYER"}),
        content_type="application/json", headers={**headers, "Idempotency-Key": "k"},
    )  # fmt: skip
    paths = schema["paths"]
    by_id, by_external_id = "/api/v1/students/{student_id}", "/api/v1/students/external/"
    for template, path in [
        (by_id + "/progress", f"/api/v1/students/{student.pk}/progress"),
        (by_external_id + "{external_id}/progress", by_external_id + "src-17/progress"),
        ("/api/v1/catalogue", "/api/v1/catalogue"),
    ]:
        reply = client.get(path, headers=headers)
        assert reply.status_code == 200
        conforms(schema, reply, paths[template]["get"])
        for headers_sent in (headers, {}):  # an unknown student (404), no key (401)
            missing = path.replace(str(student.pk), "987654").replace("src-17", "x")
            conforms(schema, client.get(missing, headers=headers_sent), paths[template]["get"])


def test_a_documented_problem_is_what_an_error_returns(client, schema):
    reply = client.get("/api/v1/catalogue")
    conforms(schema, reply, schema["paths"]["/api/v1/catalogue"]["get"])


def test_the_docs_page_uses_the_apps_own_static_files(client):
    reply = client.get("/api/v1/docs")
    assert reply.status_code == 200
    page = reply.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in page
    assert "http://" not in page and "https://" not in page
    # Swagger UI's own default would fetch a validity badge from swagger.io.
    assert '"validatorUrl": null' in page
    for name in ("ninja/swagger-ui-bundle.js", "ninja/swagger-ui.css", "ninja/swagger-ui-init.js"):
        assert finders.find(name), name


def test_every_answer_of_sending_one_event_is_documented_headers_included(
    client, schema, api_headers, student, settings
):
    # Applied, replayed, conflicting, refused, too large, chunked, rate limited: each answer
    # of the endpoint holds to its documented status, content type, body and headers.
    # The door refuses 413 and 411 before the limit counts: the fifth counted is over it.
    settings.API_RATE_LIMIT_PER_MINUTE = 4
    operation = schema["paths"]["/api/v1/events"]["post"]
    headers = {**api_headers(), "Idempotency-Key": "k-1"}
    event = {"student_id": student.pk, "specialization": "PLAYER", "xp": 5}

    def send(body, **extra):
        return client.post("/api/v1/events", json.dumps(body), content_type="application/json",
                           headers={**headers, **extra})  # fmt: skip

    answers = [
        send(event),
        send(event),  # the replay
        send({**event, "xp": 6}),  # the same key, another event
        send({**event, "xp": -1}, **{"Idempotency-Key": "k-2"}),
        send(event, **{"Idempotency-Key": "k-3", "Content-Length": str(2**21)}),
        send(event, **{"Idempotency-Key": "k-4", "Transfer-Encoding": "chunked"}),
        send(event, **{"Idempotency-Key": "k-5"}),
    ]
    assert [reply.status_code for reply in answers] == [201, 200, 409, 422, 413, 411, 429]
    for reply in answers:
        conforms(schema, reply, operation)
        documented = operation["responses"][str(reply.status_code)].get("headers", {})
        for name, header in documented.items():
            OAS31Validator(header["schema"]).validate(reply[name])
    assert "Idempotent-Replayed" in operation["responses"]["200"]["headers"]
    assert answers[1]["Idempotent-Replayed"] == "true"
    assert "Retry-After" in operation["responses"]["429"]["headers"]
