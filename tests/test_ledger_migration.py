"""Migration 0003 on a database built with the previous schema: one opening event per row."""

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from specializations.models import LEDGER_FIELDS, ProgressEvent, SpecializationProgress

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_LEDGER = [("specializations", "0002_level_catalogue")]
LEDGER = [("specializations", "0003_progress_ledger")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    # The models as the applied migrations (of every app) define them.
    executor = MigrationExecutor(connection)
    return executor._create_project_state(with_applied_migrations=True).apps


@pytest.fixture
def previous_schema(committed_db):
    """The database at the last release's migrations; put back to the latest afterwards."""
    apps = migrate(BEFORE_LEDGER)
    yield apps
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_migration_opens_the_ledger_with_one_event_per_existing_row(previous_schema):
    apps = previous_schema
    User = apps.get_model("auth", "User")
    Progress = apps.get_model("specializations", "SpecializationProgress")
    License = apps.get_model("licenses", "UserLicense")
    active = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    with transaction.atomic():  # both rows of a pair in one commit (the guard checks)
        ada, bo = User.objects.create(username="ada"), User.objects.create(username="bo")
        rows = [
            Progress.objects.create(
                student=ada,
                specialization_id="COACH",
                current_level=3,
                total_xp=61_000,
                completed_sessions=21,
                completed_projects=2,
                theory_hours_completed=36,
                practice_hours_completed=56,
                last_activity=active,
            ),
            Progress.objects.create(student=bo, specialization_id="PLAYER"),  # all zero
        ]
        for row in rows:
            License.objects.create(
                user_id=row.student_id,
                specialization_id=row.specialization_id,
                current_level=row.current_level,
                max_achieved_level=row.current_level,
            )

    migrate(LEDGER)

    assert ProgressEvent.objects.count() == 2
    for progress in SpecializationProgress.objects.all():
        (event,) = progress.events.all()
        assert event.amounts() == {
            amount: getattr(progress, total) for amount, total in LEDGER_FIELDS
        }
        assert (event.source, event.idempotency_key, event.actor_id) == ("opening", None, None)
        assert event.level_before == event.level_after == progress.current_level
        assert event.occurred_at == (progress.last_activity or progress.created_at)
    assert ProgressEvent.objects.get(progress__student__username="ada").occurred_at == active


def test_the_opening_events_are_one_statement_whatever_the_number_of_rows(previous_schema):
    apps = previous_schema
    User = apps.get_model("auth", "User")
    Progress = apps.get_model("specializations", "SpecializationProgress")
    License = apps.get_model("licenses", "UserLicense")
    with transaction.atomic():
        users = User.objects.bulk_create(User(username=f"s{i}") for i in range(50))
        Progress.objects.bulk_create(
            Progress(student=u, specialization_id="PLAYER", total_xp=i) for i, u in enumerate(users)
        )
        License.objects.bulk_create(
            License(user=u, specialization_id="PLAYER", current_level=1, max_achieved_level=1)
            for u in users
        )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()

    with connection.execute_wrapper(counter := StatementCounter()):
        executor.migrate(LEDGER)

    assert counter.inserts == 1
    assert ProgressEvent.objects.count() == 50


def test_migrating_back_removes_the_ledger(previous_schema):
    migrate(LEDGER)
    migrate(BEFORE_LEDGER)

    assert "specializations_progressevent" not in connection.introspection.table_names()


class StatementCounter:
    def __init__(self):
        self.inserts = 0

    def __call__(self, execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("INSERT INTO SPECIALIZATIONS_PROGRESSEVENT"):
            self.inserts += 1
        return execute(sql, params, many, context)
