"""GET /health/sync/metrics: the latest run in the OpenMetrics text format."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import (
    text_string_to_metric_families as prometheus_text_to_metric_families,
)

from licenses.models import UserLicense
from monitoring.metrics import CONTENT_TYPE, openmetrics_text
from monitoring.models import HealthCheckRun
from monitoring.services import run_health_check
from specializations.models import SpecializationProgress
from tests.conftest import ACCESS_MATRIX

pytestmark = pytest.mark.django_db
URL = "/health/sync/metrics"
TOKEN = "test-token-0123456789"  # tests/settings.py
PREFIX = "academy_sync"


def make_pairs(n: int, *, prefix: str) -> list:
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"{prefix}{i}") for i in range(n)]
    )
    SpecializationProgress.objects.bulk_create(
        [SpecializationProgress(student=u, specialization_id="PLAYER") for u in users]
    )
    UserLicense.objects.bulk_create(
        [UserLicense(user=u, specialization_id="PLAYER") for u in users]
    )
    return users


def get(client, token=TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(URL, headers=headers)


def scrape(client) -> dict:
    """{family name: (type, unit, {(sample name, labels): value})} of a token scrape."""
    response = get(client)
    assert response.status_code == 200
    assert response["Content-Type"] == CONTENT_TYPE
    text = response.content.decode()
    assert text.endswith("# EOF\n")
    return {
        family.name: (
            family.type,
            family.unit,
            {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples},
        )
        for family in text_string_to_metric_families(text)
    }


@pytest.fixture
def mixed_run():
    """A recorded critical run with each kind of desync, after 3 + 4 repaired pairs."""
    users = make_pairs(10, prefix="m")
    SpecializationProgress.objects.filter(student__in=users[:2]).update(current_level=2)
    UserLicense.objects.filter(user=users[2]).delete()
    SpecializationProgress.objects.filter(student=users[3]).delete()
    run_health_check(repaired=3)
    return run_health_check(repaired=4).run


def test_every_family_with_its_type_and_the_latest_run_values(client, mixed_run):
    metrics = scrape(client)
    assert metrics == {
        f"{PREFIX}_consistency_ratio": (
            "gauge",
            "ratio",
            {(f"{PREFIX}_consistency_ratio", ()): 0.6},
        ),
        f"{PREFIX}_desync_pairs": (
            "gauge",
            "",
            {
                (f"{PREFIX}_desync_pairs", (("kind", "level_mismatch"),)): 2,
                (f"{PREFIX}_desync_pairs", (("kind", "missing_license"),)): 1,
                (f"{PREFIX}_desync_pairs", (("kind", "missing_progress"),)): 1,
            },
        ),
        f"{PREFIX}_checked_pairs": ("gauge", "", {(f"{PREFIX}_checked_pairs", ()): 10}),
        f"{PREFIX}_check_duration_seconds": (
            "gauge",
            "seconds",
            {(f"{PREFIX}_check_duration_seconds", ()): mixed_run.duration_ms / 1000},
        ),
        f"{PREFIX}_status": ("gauge", "", {(f"{PREFIX}_status", ()): 2}),
        f"{PREFIX}_repairs": ("counter", "", {(f"{PREFIX}_repairs_total", ()): 7}),
        f"{PREFIX}_last_check_timestamp_seconds": (
            "gauge",
            "seconds",
            {(f"{PREFIX}_last_check_timestamp_seconds", ()): mixed_run.checked_at.timestamp()},
        ),
    }


def test_before_the_first_run_every_series_is_zero_except_the_missing_timestamp(client):
    metrics = scrape(client)
    assert f"{PREFIX}_last_check_timestamp_seconds" not in metrics
    assert len(metrics) == 6
    samples = {key: value for _, _, family in metrics.values() for key, value in family.items()}
    assert len(samples) == 8  # three kinds of desync
    assert set(samples.values()) == {0}


@pytest.mark.parametrize(
    "status, rate, value",
    [("healthy", "100.00", 0), ("degraded", "98.50", 1), ("critical", "3.00", 2)],
)
def test_status_is_a_number_and_the_ratio_a_fraction(client, status, rate, value):
    HealthCheckRun.objects.create(
        duration_ms=1500,
        total_checked=200,
        consistent=197,
        inconsistent=3,
        level_mismatch=3,
        consistency_rate=rate,
        status=status,
        warn_below=99,
        critical_below=95,
    )
    metrics = scrape(client)
    assert metrics[f"{PREFIX}_status"][2] == {(f"{PREFIX}_status", ()): value}
    assert metrics[f"{PREFIX}_consistency_ratio"][2] == {
        (f"{PREFIX}_consistency_ratio", ()): float(rate) / 100
    }
    assert metrics[f"{PREFIX}_check_duration_seconds"][2] == {
        (f"{PREFIX}_check_duration_seconds", ()): 1.5
    }


def test_only_the_latest_run_counts_but_repairs_add_up_over_all_runs(client):
    make_pairs(4, prefix="l")
    run_health_check(repaired=5)
    HealthCheckRun.objects.update(checked_at=timezone.now() - timedelta(hours=1))
    latest = run_health_check(repaired=2).run
    metrics = scrape(client)
    assert metrics[f"{PREFIX}_repairs"][2] == {(f"{PREFIX}_repairs_total", ()): 7}
    assert metrics[f"{PREFIX}_last_check_timestamp_seconds"][2] == {
        (f"{PREFIX}_last_check_timestamp_seconds", ()): latest.checked_at.timestamp()
    }


def test_no_label_names_a_student(client, mixed_run):
    families = text_string_to_metric_families(get(client).content.decode())
    labels = {name: value for f in families for s in f.samples for name, value in s.labels.items()}
    assert set(labels) == {"kind"}


def test_the_prometheus_text_parser_reads_the_same_values(client, mixed_run):
    # Prometheus servers that fall back to the 0.0.4 text format still see every sample.
    text = get(client).content.decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in prometheus_text_to_metric_families(text)
        for s in family.samples
    }
    assert samples[(f"{PREFIX}_repairs_total", ())] == 7
    assert samples[(f"{PREFIX}_desync_pairs", (("kind", "missing_progress"),))] == 1
    assert len(samples) == 9


def test_the_prefix_comes_from_settings(client, settings, mixed_run):
    settings.SYNC_METRICS_PREFIX = "school_sync"
    names = {family.name for family in text_string_to_metric_families(get(client).content.decode())}
    assert names and all(name.startswith("school_sync_") for name in names)


def test_an_invalid_prefix_is_refused_with_its_value():
    with pytest.raises(ValueError, match="'bad-prefix'"):
        openmetrics_text(None, repairs_total=0, prefix="bad-prefix")


@ACCESS_MATRIX
def test_access_matrix(fetch_as, mixed_run, who, token, status):
    response = fetch_as(URL, who, token)
    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"] == CONTENT_TYPE
    else:
        assert PREFIX not in response.content.decode()  # no data for the refused


def test_never_cached_and_get_only(client):
    assert "no-cache" in get(client)["Cache-Control"]
    assert client.post(URL, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 405


@pytest.mark.parametrize("pairs, runs", [(3, 1), (300, 25)])
def test_query_count_does_not_grow_with_pairs_or_runs(
    client, django_assert_num_queries, pairs, runs
):
    make_pairs(pairs, prefix=f"q{pairs}-")
    for _ in range(runs):
        run_health_check(repaired=1)
    with django_assert_num_queries(2):  # the latest run, the sum of repairs
        metrics = scrape(client)
    assert metrics[f"{PREFIX}_checked_pairs"][2] == {(f"{PREFIX}_checked_pairs", ()): pairs}
    assert metrics[f"{PREFIX}_repairs"][2] == {(f"{PREFIX}_repairs_total", ()): runs}
