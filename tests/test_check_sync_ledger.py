"""check_sync --ledger: every progress row's totals equal the sum of its events, proved in SQL."""

import json

import pytest
from django.db import connection

from monitoring.health import current_health
from monitoring.models import HealthCheckRun
from monitoring.services import run_health_check
from specializations.ledger import check_ledger
from specializations.models import SpecializationProgress
from specializations.services import update_progress

pytestmark = pytest.mark.django_db


def raw_sql_total(student, value, *, column="total_xp", specialization="PLAYER") -> None:
    """A change of a total behind the services' back: no event records it."""
    table = SpecializationProgress._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = %s WHERE student_id = %s AND specialization_id = %s",
            [value, student.pk, specialization],
        )


@pytest.fixture
def earning(make_user):
    """Three students with a few events each (a replay and a correction among them)."""
    students = [make_user() for _ in range(3)]
    for student in students:
        update_progress(student, "PLAYER", xp_gained=900, sessions_completed=2)
        update_progress(student, "PLAYER", xp_gained=100, idempotency_key=f"q{student.pk}")
        update_progress(student, "PLAYER", xp_gained=100, idempotency_key=f"q{student.pk}")
        update_progress(student, "PLAYER", xp_gained=-50, reason="correction")
        update_progress(student, "COACH", theory_hours=4)
    return students


def test_a_ledger_that_adds_up_is_healthy(earning, check_sync):
    code, out, _ = check_sync("--ledger")

    assert code == 0
    assert out.startswith(
        "SYNC OK - 0 of 6 pairs out of sync (100.00%), 0 of 6 progress rows differ from "
        "their ledger |"
    )
    assert "'ledger_mismatches'=0;;;0;6 'ledger_checked'=6;;;0;" in out


def test_a_raw_sql_change_of_total_xp_is_found_and_judged_by_the_thresholds(earning, check_sync):
    raw_sql_total(earning[1], 12_400)

    code, out, _ = check_sync("--ledger")

    assert code == 2  # 5 of 6 rows in step: 83.33%, below the critical 95%
    lines = out.splitlines()
    assert lines[0].startswith(
        "SYNC CRITICAL - 0 of 6 pairs out of sync (100.00%), 1 of 6 progress rows differ"
    )
    assert lines[1:] == [
        "   user_id  specialization  field                            total        ledger",
        f"{earning[1].pk:>10}  PLAYER          {'total_xp':<24}  {12400:>12}  {950:>12}",
    ]


def test_the_json_report_counts_and_samples_the_mismatches(earning, check_sync):
    raw_sql_total(earning[0], 0, column="completed_sessions")
    raw_sql_total(earning[2], 7, column="theory_hours_completed", specialization="COACH")

    code, out, _ = check_sync("--ledger", "--json")

    data = json.loads(out)
    assert (code, data["status"], data["ledger_checked"], data["ledger_mismatches"]) == (
        2,
        "critical",
        6,
        2,
    )
    assert data["ledger_violations"] == [
        {
            "user_id": earning[0].pk,
            "specialization_id": "PLAYER",
            "field": "completed_sessions",
            "total": 0,
            "ledger_sum": 2,
        },
        {
            "user_id": earning[2].pk,
            "specialization_id": "COACH",
            "field": "theory_hours_completed",
            "total": 7,
            "ledger_sum": 4,
        },
    ]


def test_without_the_flag_the_ledger_is_not_checked(earning, check_sync):
    raw_sql_total(earning[0], 1)

    code, out, _ = check_sync("--json")

    data = json.loads(out)
    assert (code, data["ledger_checked"], data["ledger_mismatches"]) == (0, None, None)


def test_the_run_record_keeps_the_ledger_figures_and_the_health_says_why(earning, check_sync):
    raw_sql_total(earning[0], 5)

    check_sync("--ledger")

    run = HealthCheckRun.objects.get()
    assert (run.status, run.ledger_checked, run.ledger_mismatches) == ("critical", 6, 1)
    assert run.ledger_sample == [
        {
            "user_id": earning[0].pk,
            "specialization_id": "PLAYER",
            "field": "total_xp",
            "total": 5,
            "ledger_sum": 950,
        }
    ]
    health = current_health()
    assert health.state == "critical"
    assert health.reason.endswith("; 1 of 6 progress rows differ from their ledger")


def test_mismatches_below_the_critical_rate_make_it_critical(earning):
    for student in earning:
        raw_sql_total(student, 1)

    report = run_health_check(ledger=True, record=False)

    assert (report.ledger_mismatches, report.status) == (3, "critical")  # 50% of 6 rows


def test_a_mismatch_is_at_least_degraded_under_lenient_thresholds(earning, check_sync):
    raw_sql_total(earning[0], 1)

    code, out, _ = check_sync("--ledger", "--warn-below", "10", "--critical-below", "5")

    assert code == 1
    assert out.startswith("SYNC WARNING - 0 of 6 pairs out of sync (100.00%), 1 of 6")


def test_the_check_is_scoped_to_one_specialization(earning):
    raw_sql_total(earning[0], 1)

    report = run_health_check(ledger=True, record=False, specialization="COACH")

    assert (report.ledger_checked, report.ledger_mismatches) == (3, 0)


def test_a_row_without_events_is_in_step_while_its_totals_are_zero(make_user):
    from specializations.services import enroll

    student = make_user()
    enroll(student, "PLAYER")
    assert check_ledger().mismatches == 0

    raw_sql_total(student, 10)

    assert check_ledger(sample_size=5).sample[0].ledger_sum == 0


def test_the_ledger_check_costs_two_queries_whatever_the_number_of_rows(
    earning, django_assert_num_queries
):
    for student in earning:
        raw_sql_total(student, 3)

    with django_assert_num_queries(2):  # the counts, then the sample
        result = check_ledger(sample_size=1000)

    assert result.mismatches == len(result.sample) == 3


def test_ledger_with_repair_is_refused_as_unknown(check_sync):
    code, out, _ = check_sync("--ledger", "--repair")

    assert code == 3
    assert out.startswith("SYNC UNKNOWN - --ledger with --repair")
