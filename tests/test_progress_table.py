"""The progress table as every event writes it (PostgreSQL): room in each page for the
new row version, and no index an event would have to write for nothing."""

import pytest
from django.db import connection

from specializations.models import SpecializationProgress
from specializations.services import enroll, update_progress

from .conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db]

TABLE = SpecializationProgress._meta.db_table


def fetch(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def test_the_table_keeps_room_in_its_pages_for_updates():
    [(options,)] = fetch("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [TABLE])
    assert options == ["fillfactor=70"]


def test_an_event_updates_its_progress_row_in_place(student):
    enroll(student, "PLAYER")
    before = fetch("SELECT pg_stat_get_xact_tuples_hot_updated(%s::regclass)", [TABLE])

    update_progress(student, "PLAYER", xp_gained=5)  # the totals only: no indexed column

    after = fetch("SELECT pg_stat_get_xact_tuples_hot_updated(%s::regclass)", [TABLE])
    assert after[0][0] == before[0][0] + 1


def test_no_index_repeats_what_another_one_leads_with():
    definitions = [
        definition for (definition,) in fetch(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname", [TABLE]
        )
    ]  # fmt: skip
    leading = [d.split("USING btree (", 1)[1].split(")")[0] for d in definitions]
    # The student's and the specialization's foreign keys are served by the unique
    # (student, specialization) constraint and by (specialization, current_level).
    assert "student_id" not in leading and "specialization_id" not in leading
    assert "specialization_id varchar_pattern_ops" not in leading
    assert len(definitions) == 4, definitions
