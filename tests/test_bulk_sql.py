"""The array literals the set-based writers send to PostgreSQL (common/bulk_sql.array):
every value arrives as psycopg2's own adaptation of it would have it."""

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import connection

from common.bulk_sql import array, insert_rows

from .conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db]

TRICKY = [
    "plain", "", " spaced ", "NULL", "null", 'a "quoted" word', "back\\slash", "\\",
    '\\"', "{braces}", "a,comma", "Bambusz Tanítvány", "új\tsor\nvége", "'apostrophe'",
    "🏅", "trailing\\",
]  # fmt: skip


def unnest(literal, values, pg_type: str) -> tuple[list, list]:
    """The elements of the literal, and of psycopg2's ARRAY[...] of the same values."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT unnest(%s::{pg_type}[])", [literal])
        ours = [value for (value,) in cursor.fetchall()]
        cursor.execute(f"SELECT unnest(%s::{pg_type}[])", [values])
        theirs = [value for (value,) in cursor.fetchall()]
    return ours, theirs


@pytest.mark.parametrize(
    ("pg_type", "values"),
    [
        ("text", TRICKY),
        ("varchar", [*TRICKY, None]),
        ("varchar", ["PLAYER", "", "NULL", "a,b", "{x}", " "]),  # text with nothing to escape
        ("text", ["back\\slash", "\\", "trailing\\"]),  # backslashes, no quote
        ("bigint", [1, -2, 0, 2**62, None]),
        ("bigint", [5, 6, 7]),  # the all-int fast path
        ("boolean", [True, False, None]),
        ("numeric", [Decimal("1.50"), 2.25, None]),
        ("timestamptz", [datetime(2026, 12, 4, 14, 30, 15, 123456, tzinfo=UTC),
                         datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=1))), None]),
        ("timestamptz", [datetime(2026, 12, 4, 14, 30, 15, 123456, tzinfo=UTC),
                         datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5)))]),  # fast path
    ],
)  # fmt: skip
def test_every_value_arrives_as_psycopg2_would_send_it(pg_type, values):
    ours, theirs = unnest(array(values), values, pg_type)
    assert ours == theirs == [v if not isinstance(v, float) else Decimal(str(v)) for v in values]


def test_json_documents_arrive_whole():
    documents = [{"name": 'a "b" \\ c', "levels": [1, 2]}, {"é": None}]
    literal = array(json.dumps(document) for document in documents)
    with connection.cursor() as cursor:
        cursor.execute("SELECT unnest(%s::jsonb[])", [literal])
        assert [json.loads(value) for (value,) in cursor.fetchall()] == documents


def test_inserted_rows_keep_each_json_document_with_its_row():
    from api.models import IdempotentRequest
    from api.services import create_api_key

    client = create_api_key("bulk").api_key.client
    documents = [{"name": 'a "b" \\ c', "levels": [1, 2]}, {"é": None}, "null", [], 0, *TRICKY]
    rows = [(client.pk, f"k{i}", f"f{i}", document) for i, document in enumerate(documents)]

    insert_rows(IdempotentRequest, ["client_id", "key", "fingerprint", "response"], rows)

    stored = IdempotentRequest.objects.filter(client=client).order_by("id")
    assert [(r.key, r.fingerprint, r.response) for r in stored] == [row[1:] for row in rows]


def test_bytes_are_refused_rather_than_sent_as_their_repr():
    with pytest.raises(TypeError, match="bytes"):
        array([b"raw"])
