"""check_sync --database: the check reads the alias it is given, the run is recorded on the primary.

The suite's settings add ``replica``, a test mirror of the default database: the
same data through another connection, so a check that ignored the alias would
still count right, and only the queries each connection ran tell them apart.
"""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections
from django.test.utils import CaptureQueriesContext

from monitoring.management.commands.check_sync import Command
from monitoring.models import HealthCheckRun
from tests.factories import make_pairs, set_progress_level

# Committed: the mirror's connection sees only what the default one has committed.
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


def counted_on(queries: CaptureQueriesContext) -> bool:
    return any("COUNT(*) FILTER" in query["sql"] for query in queries.captured_queries)


def test_the_check_reads_the_alias_and_the_run_is_recorded_on_the_primary(committed_db):
    users = make_pairs(10)
    set_progress_level(users[0], "PLAYER", 2)
    command, out = Command(), StringIO()
    with (
        CaptureQueriesContext(connections["replica"]) as on_replica,
        CaptureQueriesContext(connections["default"]) as on_default,
    ):
        call_command(command, "--database", "replica", "--json", stdout=out, stderr=StringIO())
    report = json.loads(out.getvalue())
    assert (command.exit_code, report["database"], report["inconsistent"]) == (2, "replica", 1)
    assert counted_on(on_replica) and not counted_on(on_default)
    assert any("INSERT" in q["sql"] for q in on_default.captured_queries)  # the run
    assert not any("INSERT" in q["sql"] for q in on_replica.captured_queries)
    run = HealthCheckRun.objects.using("default").get()
    assert (run.database, run.inconsistent, run.replica_lag_seconds) == ("replica", 1, None)


def test_without_the_option_the_default_database_is_checked(committed_db):
    make_pairs(3)
    with CaptureQueriesContext(connections["replica"]) as on_replica:
        call_command(Command(), "--json", stdout=StringIO(), stderr=StringIO())
    assert not counted_on(on_replica)
    assert HealthCheckRun.objects.get().database == "default"
