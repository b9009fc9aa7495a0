"""GET /health/sync/metrics: the latest run, in OpenMetrics or the classic text format."""

import os
import shutil
import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import (
    text_string_to_metric_families as prometheus_text_to_metric_families,
)
from prometheus_client.validation import METRIC_NAME_RE

from licenses.models import UserLicense
from monitoring.conf import METRIC_NAME
from monitoring.metrics import CLASSIC, OPENMETRICS, families, wants_openmetrics
from monitoring.models import HealthCheckRun
from monitoring.services import run_health_check
from specializations.models import SpecializationProgress
from tests.conftest import ACCESS_MATRIX
from tests.factories import make_pairs, recorded_run

pytestmark = pytest.mark.django_db
URL = "/health/sync/metrics"
TOKEN = "test-token-0123456789"  # tests/settings.py
PREFIX = "academy_sync"
# What Prometheus 2.42 sends when it scrapes.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
# And what Prometheus 3 sends (escaping=allow-utf-8: our names need no escaping).
PROMETHEUS_3_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


def get(client, token=TOKEN, accept=PROMETHEUS_ACCEPT):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if accept:
        headers["Accept"] = accept
    return client.get(URL, headers=headers)


def scrape(client) -> dict:
    """{family name: (type, unit, {(sample name, labels): value})} of a Prometheus scrape."""
    response = get(client)
    assert response.status_code == 200
    assert response["Content-Type"] == OPENMETRICS
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
    users = make_pairs(10)
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
            {(f"{PREFIX}_consistency_ratio", ()): 6 / 10},
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
        f"{PREFIX}_health": ("gauge", "", health_samples("critical")),
        f"{PREFIX}_repairs": ("counter", "", {(f"{PREFIX}_repairs_total", ()): 7}),
        f"{PREFIX}_stale_after_seconds": (
            "gauge",
            "seconds",
            {(f"{PREFIX}_stale_after_seconds", ()): 900},
        ),
        f"{PREFIX}_max_replica_lag_seconds": (
            "gauge",
            "seconds",
            {(f"{PREFIX}_max_replica_lag_seconds", ()): 60.0},
        ),
        f"{PREFIX}_last_check_timestamp_seconds": (
            "gauge",
            "seconds",
            {(f"{PREFIX}_last_check_timestamp_seconds", ()): mixed_run.checked_at.timestamp()},
        ),
    }


def health_samples(state: str) -> dict:
    states = ["healthy", "degraded", "critical", "stale", "unknown"]
    return {(f"{PREFIX}_health", (("state", s),)): int(s == state) for s in states}


def test_before_the_first_run_every_series_is_there_except_the_missing_timestamp(client):
    metrics = scrape(client)
    assert f"{PREFIX}_last_check_timestamp_seconds" not in metrics
    assert f"{PREFIX}_replica_lag_seconds" not in metrics
    assert len(metrics) == 9
    samples = {key: value for _, _, family in metrics.values() for key, value in family.items()}
    assert len(samples) == 15  # three kinds of desync, five health states
    settings_given = {
        (f"{PREFIX}_stale_after_seconds", ()): 900,
        (f"{PREFIX}_max_replica_lag_seconds", ()): 60.0,
    }
    expected = {key: 0 for key in samples} | health_samples("unknown") | settings_given
    assert samples == expected


@pytest.mark.parametrize(
    "status, rate, value",
    [("healthy", "100.00", 0), ("degraded", "98.50", 1), ("critical", "3.00", 2)],
)
def test_status_is_a_number_and_the_ratio_a_fraction(client, status, rate, value):
    recorded_run(total=200, inconsistent=3, rate=rate, status=status, duration_ms=1500)
    metrics = scrape(client)
    assert metrics[f"{PREFIX}_status"][2] == {(f"{PREFIX}_status", ()): value}
    assert metrics[f"{PREFIX}_health"][2] == health_samples(status)
    assert metrics[f"{PREFIX}_consistency_ratio"][2] == {
        (f"{PREFIX}_consistency_ratio", ()): 197 / 200  # the counts, not the rounded rate
    }
    assert metrics[f"{PREFIX}_check_duration_seconds"][2] == {
        (f"{PREFIX}_check_duration_seconds", ()): 1.5
    }


def test_only_the_latest_run_counts_but_repairs_add_up_over_all_runs(client):
    make_pairs(4)
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
    assert set(labels) == {"kind", "state"}


@pytest.mark.parametrize("accept", [None, "*/*", "text/plain", "text/plain;version=0.0.4"])
def test_without_asking_for_openmetrics_the_classic_format_reads_the_same_values(
    client, mixed_run, accept
):
    response = get(client, accept=accept)
    assert response["Content-Type"] == CLASSIC
    text = response.content.decode()
    assert "# EOF" not in text and "# UNIT" not in text
    families = list(prometheus_text_to_metric_families(text))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families
        for s in family.samples
    }
    assert samples[(f"{PREFIX}_repairs_total", ())] == 7
    assert samples[(f"{PREFIX}_desync_pairs", (("kind", "missing_progress"),))] == 1
    assert samples[(f"{PREFIX}_consistency_ratio", ())] == 0.6
    assert len(samples) == 16
    # The classic parser names a family as its samples: the counter carries its help.
    repairs = next(f for f in families if f.name == f"{PREFIX}_repairs")
    assert (repairs.type, repairs.documentation) == (
        "counter",
        "Pairs repaired, summed over every recorded run.",
    )


@pytest.mark.parametrize(
    "accept, openmetrics",
    [
        (PROMETHEUS_ACCEPT, True),
        (PROMETHEUS_3_ACCEPT, True),
        ("application/openmetrics-text; version=1.0.0", True),
        ("text/plain;q=1, application/openmetrics-text;q=0.5", False),
        ("application/openmetrics-text;q=0, text/plain", False),
        ("*/*", False),
        ("application/*", False),
        ("", False),
        ("application/json", False),
    ],
)
def test_openmetrics_only_when_preferred(accept, openmetrics):
    assert wants_openmetrics(accept) is openmetrics


def test_promtool_accepts_the_classic_output(client, mixed_run):
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing in CI (.ci/run installs Debian's prometheus)")
        pytest.skip("promtool (Debian's prometheus) is not installed")
    text = get(client, accept=None).content
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=30
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_the_ratio_is_exact_where_the_rate_is_rounded(client):
    recorded_run(total=362, inconsistent=9, rate="97.51", status="degraded")
    samples = scrape(client)[f"{PREFIX}_consistency_ratio"][2]
    assert samples == {(f"{PREFIX}_consistency_ratio", ()): 353 / 362}
    assert f"{PREFIX}_consistency_ratio 0.9751381215469613\n" in get(client).content.decode()


def test_a_replica_check_exports_its_lag(client):
    recorded_run(
        total=10,
        inconsistent=0,
        rate="100.00",
        status="healthy",
        database="replica",
        replica_lag_seconds=2.5,
    )
    samples = scrape(client)[f"{PREFIX}_replica_lag_seconds"][2]
    assert samples == {(f"{PREFIX}_replica_lag_seconds", (("database", "replica"),)): 2.5}


def test_the_stale_age_follows_the_setting(client, settings):
    settings.SYNC_STALE_AFTER_SECONDS = 120
    samples = scrape(client)[f"{PREFIX}_stale_after_seconds"][2]
    assert samples == {(f"{PREFIX}_stale_after_seconds", ()): 120}


def test_a_stale_run_reads_as_stale(client, settings, mixed_run):
    settings.SYNC_STALE_AFTER_SECONDS = 60
    HealthCheckRun.objects.update(checked_at=timezone.now() - timedelta(seconds=61))
    assert scrape(client)[f"{PREFIX}_health"][2] == health_samples("stale")


def test_the_prefix_comes_from_settings(client, settings, mixed_run):
    settings.SYNC_METRICS_PREFIX = "school_sync"
    names = {family.name for family in text_string_to_metric_families(get(client).content.decode())}
    assert names and all(name.startswith("school_sync_") for name in names)


def test_the_metric_name_rule_is_prometheus_clients():
    # Ours is read with the settings, before prometheus_client is imported.
    assert f"^{METRIC_NAME}$" == METRIC_NAME_RE.pattern


def test_an_invalid_prefix_is_refused_with_its_value():
    with pytest.raises(ValueError, match="'bad-prefix'"):
        families(None, repairs_total=0, prefix="bad-prefix")


@ACCESS_MATRIX
def test_access_matrix(fetch_as, mixed_run, who, token, status):
    response = fetch_as(URL, who, token)
    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"] == CLASSIC  # fetch_as sends no Accept header
    else:
        assert PREFIX not in response.content.decode()  # no data for the refused


def test_never_cached_varies_on_accept_and_reads_only(client):
    response = get(client)
    assert "no-cache" in response["Cache-Control"]
    assert "Accept" in response["Vary"]
    assert client.post(URL, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 405


def test_head_answers_like_get_without_a_body(client):
    response = client.head(URL, headers={"Authorization": f"Bearer {TOKEN}"})
    assert (response.status_code, response["Content-Type"], response.content) == (
        200,
        CLASSIC,
        b"",
    )


@pytest.mark.parametrize("pairs, runs", [(3, 1), (300, 25)])
def test_query_count_does_not_grow_with_pairs_or_runs(
    client, django_assert_num_queries, pairs, runs
):
    make_pairs(pairs)
    for _ in range(runs):
        run_health_check(repaired=1)
    with django_assert_num_queries(2) as queries:  # the latest run, the sum of repairs
        metrics = scrape(client)
    # The run's violation sample (up to 1,000 rows of JSON) is not read for a scrape.
    assert not any("violations_sample" in q["sql"] for q in queries.captured_queries)
    assert metrics[f"{PREFIX}_checked_pairs"][2] == {(f"{PREFIX}_checked_pairs", ()): pairs}
    assert metrics[f"{PREFIX}_repairs"][2] == {(f"{PREFIX}_repairs_total", ()): runs}
