"""run_health_check: the one definition, counted in the database."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from licenses import consistency
from licenses.models import UserLicense
from monitoring.exceptions import BadThresholds, UnknownDatabase
from monitoring.models import HealthCheckRun
from monitoring.services import Thresholds, consistency_rate, iter_violations, run_health_check
from specializations.exceptions import UnknownSpecialization
from specializations.models import SpecializationProgress
from tests.conftest import requires_postgres
from tests.factories import delete_row, make_pairs, set_license_level, set_progress_level

pytestmark = pytest.mark.django_db


def inject_one_of_each():
    users = make_pairs(10, level=3)
    set_progress_level(users[0], "PLAYER", 5)  # progress ahead
    set_license_level(users[1], "PLAYER", 6)  # licence ahead
    delete_row(UserLicense, users[2], "PLAYER")
    delete_row(SpecializationProgress, users[3], "PLAYER")
    return users


def test_empty_database_is_fully_consistent_and_healthy():
    report = run_health_check()
    assert (report.total_checked, report.inconsistent, report.consistency_rate) == (0, 0, 100.0)
    assert report.status == "healthy"


def test_every_kind_is_detected_and_classified():
    users = inject_one_of_each()
    report = run_health_check()
    assert report.total_checked == 10
    assert report.by_kind == {"missing_license": 1, "missing_progress": 1, "level_mismatch": 2}
    assert (report.consistent, report.inconsistent) == (6, 4)
    assert report.consistency_rate == 60.0
    assert report.status == "critical"
    found = {(v.user_id, v.kind, v.progress_level, v.license_level) for v in report.violations}
    assert found == {
        (users[0].pk, "level_mismatch", 5, 3),
        (users[1].pk, "level_mismatch", 3, 6),
        (users[2].pk, "missing_license", 3, None),
        (users[3].pk, "missing_progress", None, 3),
    }


def test_violations_are_streamed_in_user_order_across_pages():
    users = make_pairs(30)
    for user in users[::2]:
        set_progress_level(user, "PLAYER", 2)
    streamed = list(iter_violations(chunk_size=4))
    assert [v.user_id for v in streamed] == [u.pk for u in users[::2]]


@pytest.mark.parametrize("chunk_size", [1, 2, 3])
def test_a_users_violations_in_two_specializations_survive_a_page_boundary(chunk_size):
    # Keyset pages continue after (user, specialization): a user whose second
    # violation starts the next page must not lose it (nor see the first twice).
    users = make_pairs(4, specialization="PLAYER") + make_pairs(4, specialization="COACH")
    for user in users[:4]:
        set_progress_level(user, "PLAYER", 2)
        make_pairs_for(user, "COACH", progress=3, licence=1)
        make_pairs_for(user, "INTERNSHIP", progress=2, licence=1)
    streamed = [(v.user_id, v.specialization_id) for v in iter_violations(chunk_size=chunk_size)]
    expected = sorted((u.pk, spec) for u in users[:4] for spec in ("COACH", "INTERNSHIP", "PLAYER"))
    assert streamed == expected


def make_pairs_for(user, specialization: str, *, progress: int, licence: int) -> None:
    SpecializationProgress.objects.bulk_create(
        [SpecializationProgress(student=user, specialization_id=specialization, current_level=1)]
    )
    UserLicense.objects.bulk_create(
        [UserLicense(user=user, specialization_id=specialization, current_level=1)]
    )
    set_progress_level(user, specialization, progress)
    set_license_level(user, specialization, licence)


def test_specialization_filter_counts_only_that_specialization():
    make_pairs(5, specialization="COACH")
    inject_one_of_each()
    report = run_health_check(specialization="COACH")
    assert (report.total_checked, report.inconsistent, report.specialization) == (5, 0, "COACH")


@pytest.mark.parametrize(
    "pairs, desyncs, rate, status",
    [
        (100, 1, 99.0, "healthy"),  # exactly at the warning threshold
        (1000, 11, 98.9, "degraded"),  # just below it
        (100, 5, 95.0, "degraded"),  # exactly at the critical threshold
        (1000, 51, 94.9, "critical"),  # just below it
    ],
)
def test_status_boundaries(pairs, desyncs, rate, status):
    # The one test of the thresholds' boundaries: each belongs to the better side.
    users = make_pairs(pairs)
    for user in users[:desyncs]:
        set_license_level(user, "PLAYER", 2)
    report = run_health_check()
    assert (report.consistency_rate, report.status) == (rate, status)


def test_rate_is_rounded_down_so_a_desync_never_reads_100():
    assert consistency_rate(99_999, 100_000) == 99.99
    assert consistency_rate(199_999, 200_000) == 99.99
    assert consistency_rate(0, 0) == 100.0


def test_thresholds_come_from_settings(settings):
    settings.SYNC_WARN_BELOW, settings.SYNC_CRITICAL_BELOW = 50.0, 10.0
    inject_one_of_each()
    report = run_health_check()
    assert (report.consistency_rate, report.status) == (60.0, "healthy")


def test_inconsistent_thresholds_are_refused_naming_both_values():
    with pytest.raises(BadThresholds, match="warn_below=90.0 and critical_below=95.0"):
        Thresholds(warn_below=90.0, critical_below=95.0)


def test_unknown_specialization_and_database_are_refused():
    with pytest.raises(UnknownSpecialization, match="specialization='GOLF'"):
        run_health_check(specialization="GOLF")
    with pytest.raises(UnknownDatabase, match="database='replica9'"):
        run_health_check(using="replica9")


def test_record_stores_the_run_with_totals_thresholds_and_sample(settings):
    settings.SYNC_VIOLATION_SAMPLE_SIZE = 3
    inject_one_of_each()
    report = run_health_check()
    run = HealthCheckRun.objects.get()
    assert report.run == run
    assert (run.total_checked, run.consistent, run.inconsistent) == (10, 6, 4)
    assert run.by_kind == {"level_mismatch": 2, "missing_license": 1, "missing_progress": 1}
    assert (float(run.consistency_rate), run.status, run.database) == (60.0, "critical", "default")
    assert (float(run.warn_below), float(run.critical_below)) == (99.0, 95.0)
    assert len(run.violations_sample) == 3 == len(report.violations)
    assert set(run.violations_sample[0]) == {
        "user_id",
        "specialization_id",
        "progress_level",
        "license_level",
        "kind",
    }


def test_no_record_stores_nothing():
    inject_one_of_each()
    assert run_health_check(record=False).run is None
    assert not HealthCheckRun.objects.exists()


@pytest.mark.parametrize("record", [True, False])
def test_query_count_is_the_same_for_10_and_500_pairs(record):
    def queries_with(total_pairs):
        make_pairs(total_pairs - SpecializationProgress.objects.count())
        # every pair out of sync: the sample is capped, the query count is not affected
        SpecializationProgress.objects.update(current_level=2)
        run_health_check(record=record, specialization="PLAYER")  # warm the catalogue cache
        with CaptureQueriesContext(connection) as ctx:
            report = run_health_check(record=record, specialization="PLAYER")
        assert report.inconsistent == total_pairs
        return len(ctx.captured_queries)

    assert queries_with(10) == queries_with(500)


@requires_postgres
def test_planner_and_timeout_settings_do_not_leak_into_an_enclosing_transaction():
    def settings_now():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('statement_timeout'), current_setting('enable_hashjoin')"
            )
            return cursor.fetchone()

    with transaction.atomic():
        before = settings_now()
        run_health_check(timeout=0.5, record=False)
        assert settings_now() == before


def test_specialization_filter_applies_to_counts_and_sample():
    players = make_pairs(4)
    coaches = make_pairs(4, specialization="COACH")
    set_progress_level(players[0], "PLAYER", 2)
    set_progress_level(coaches[1], "COACH", 3)
    delete_row(UserLicense, coaches[2], "COACH")
    report = run_health_check(specialization="COACH", record=False)
    assert (report.total_checked, report.inconsistent) == (4, 2)
    assert [(v.user_id, v.specialization_id, v.kind) for v in report.violations] == [
        (coaches[1].pk, "COACH", "level_mismatch"),
        (coaches[2].pk, "COACH", "missing_license"),
    ]


def test_sample_is_capped_and_sorted(settings):
    users = make_pairs(12)
    for user in reversed(users):
        set_license_level(user, "PLAYER", 2)
    report = run_health_check(sample_size=5, record=False)
    assert report.inconsistent == 12
    assert [v.user_id for v in report.violations] == sorted(v.user_id for v in report.violations)
    assert len(report.violations) == 5


def test_old_runs_keep_their_totals_but_lose_their_samples(settings):
    settings.SYNC_SAMPLE_RETENTION_DAYS = 30
    inject_one_of_each()
    old = run_health_check().run
    HealthCheckRun.objects.filter(pk=old.pk).update(checked_at=timezone.now() - timedelta(days=31))
    recent = run_health_check().run
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.violations_sample == [] and old.inconsistent == 4
    assert len(recent.violations_sample) == 4


def test_a_negative_sample_size_is_refused_naming_the_setting(settings):
    settings.SYNC_VIOLATION_SAMPLE_SIZE = -1
    with pytest.raises(
        ImproperlyConfigured, match=r"^SYNC_VIOLATION_SAMPLE_SIZE=-1 must be at least 0$"
    ):
        run_health_check()


def test_classify_answers_for_exactly_the_asked_pairs():
    # It reads every pair of the asked users (one query by user id); it must hand
    # back only the pairs asked for, absent ones left out.
    (user,) = make_pairs(1, specialization="PLAYER")
    make_pairs_for(user, "COACH", progress=2, licence=1)
    states = consistency.classify([(user.pk, "COACH"), (user.pk, "INTERNSHIP")])
    assert list(states) == [(user.pk, "COACH")]
    assert states[(user.pk, "COACH")].kind == "level_mismatch"
