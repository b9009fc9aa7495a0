"""GET /health/sync/metrics: the latest recorded run for Prometheus.

prometheus_client writes it: a custom collector reads the latest run when
scraped, and ``choose_encoder`` gives the format and its content type.
Content negotiation: OpenMetrics 1.0.0 when the Accept header prefers it (as
Prometheus does), the classic text format 0.0.4 otherwise (curl, promtool,
older scrapers). Reads only: two queries whatever the number of pairs or runs
(the latest run and the sum of repairs). Same access rule as /health/sync/.
Every series is present before the first run except
``<prefix>_last_check_timestamp_seconds`` (and ``<prefix>_replica_lag_seconds``,
only for a check of a replica): alert on its absence or its age against
``<prefix>_stale_after_seconds``, not on ``<prefix>_status`` alone.
"""

import re
from collections.abc import Iterator
from operator import attrgetter

from django.http import HttpResponse
from django.http.request import MediaType
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from licenses.consistency import VIOLATION_KINDS

from .conf import METRIC_NAME, app_settings
from .health import STATES, Health, judge
from .models import HealthCheckRun
from .plugin import EXIT_CODES
from .selectors import latest_run, total_repairs
from .views import staff_or_token, unavailable_without_database

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
CLASSIC = "text/plain; version=0.0.4; charset=utf-8"
BAD_PREFIX = "SYNC_METRICS_PREFIX={value!r} is not a valid metric name prefix"


def consistency_ratio(run: HealthCheckRun | None) -> float:
    """Exactly consistent / total (1.0 when nothing was checked; 0 before the first run)."""
    if run is None:
        return 0.0
    return run.consistent / run.total_checked if run.total_checked else 1.0


def families(run: HealthCheckRun | None, *, repairs_total: int, prefix: str) -> list[Metric]:
    """The metric families for one run (None: no check recorded yet)."""
    if not re.fullmatch(METRIC_NAME, prefix):
        raise ValueError(BAD_PREFIX.format(value=prefix))
    health = judge(run, now=timezone.now())
    by_kind = run.by_kind if run else dict.fromkeys(VIOLATION_KINDS, 0)

    def gauge(name, help_text, value=None, *, labels=(), unit=""):
        return GaugeMetricFamily(
            f"{prefix}_{name}", help_text, value, labels=list(labels) or None, unit=unit
        )

    desync = gauge(
        "desync_pairs", "Pairs out of sync at the latest check, by kind.", labels=["kind"]
    )
    for kind in VIOLATION_KINDS:
        desync.add_metric([kind], by_kind[kind])
    health_family = gauge(
        "health",
        "The health decision now (1 for the current state): the latest check's status, "
        "or stale, or unknown.",
        labels=["state"],
    )
    for state in STATES:
        health_family.add_metric([state], int(state == health.state))
    result = [
        gauge(
            "consistency_ratio",
            "Share of checked pairs in sync at the latest check (0..1).",
            consistency_ratio(run),
            unit="ratio",
        ),
        desync,
        gauge(
            "checked_pairs",
            "Pairs (user, specialization) checked by the latest check.",
            run.total_checked if run else 0,
        ),
        gauge(
            "check_duration_seconds",
            "How long the latest check took.",
            run.duration_ms / 1000 if run else 0.0,
            unit="seconds",
        ),
        # The monitoring plugin's numbers: the gauge reads as check_sync's exit code.
        gauge(
            "status",
            "Status of the latest check: 0 healthy, 1 degraded, 2 critical.",
            EXIT_CODES[run.status] if run else 0,
        ),
        health_family,
        CounterMetricFamily(
            f"{prefix}_repairs",
            "Pairs repaired, summed over every recorded run.",
            repairs_total,
        ),
        gauge(
            "stale_after_seconds",
            "Age after which the latest check is stale (SYNC_STALE_AFTER_SECONDS).",
            app_settings.SYNC_STALE_AFTER_SECONDS,
            unit="seconds",
        ),
        gauge(
            "max_replica_lag_seconds",
            "Replica lag above which a check of a replica is not believed "
            "(SYNC_MAX_REPLICA_LAG_SECONDS).",
            app_settings.SYNC_MAX_REPLICA_LAG_SECONDS,
            unit="seconds",
        ),
    ]
    if run is not None:
        result.append(
            gauge(
                "last_check_timestamp_seconds",
                "Unix time of the latest recorded check.",
                run.checked_at.timestamp(),
                unit="seconds",
            )
        )
        if run.replica_lag_seconds is not None:
            lag = gauge(
                "replica_lag_seconds",
                "How far the replica the latest check read was behind its primary.",
                labels=["database"],
                unit="seconds",
            )
            lag.add_metric([run.database], run.replica_lag_seconds)
            result.append(lag)
    return result


class LatestRunCollector:
    """A prometheus_client custom collector: the latest recorded run, read when
    collected, that is at each scrape (two queries whatever the number of pairs or
    runs: the latest run and the sum of repairs)."""

    def collect(self) -> Iterator[Metric]:
        yield from families(
            latest_run(), repairs_total=total_repairs(), prefix=app_settings.SYNC_METRICS_PREFIX
        )


# A registry of its own: the default one would add the process's and Python's metrics.
registry = CollectorRegistry()
registry.register(LatestRunCollector())


def _quality(ranges: list[MediaType], media_type: str) -> float:
    """The q-value the most specific range covering ``media_type`` gives it (0: none)."""
    main, sub = media_type.split("/")
    covering = [r for r in ranges if r.main_type in (main, "*") and r.sub_type in (sub, "*")]
    return max(covering, key=attrgetter("specificity")).quality if covering else 0.0


def wants_openmetrics(accept: str) -> bool:
    """OpenMetrics only when asked for by name and preferred to the classic text format,
    as Prometheus asks; otherwise, ``*/*`` or no Accept header included, the classic one.

    choose_encoder alone takes the first OpenMetrics range whatever its q-value, so a
    client preferring text/plain, or refusing OpenMetrics with q=0, would get OpenMetrics.
    """
    ranges = [MediaType(token) for token in accept.split(",") if token.strip()]
    if not any((r.main_type, r.sub_type) == ("application", "openmetrics-text") for r in ranges):
        return False
    openmetrics = _quality(ranges, "application/openmetrics-text")
    return openmetrics > 0 and openmetrics >= _quality(ranges, "text/plain")


def _unavailable_text(health: Health) -> HttpResponse:
    return HttpResponse(f"{health.reason}\n", status=503, content_type="text/plain; charset=utf-8")


@never_cache
@require_safe
@unavailable_without_database(_unavailable_text)
@staff_or_token
def sync_metrics(request) -> HttpResponse:
    # The client's preference picks the format, prometheus_client its encoder and content type.
    wanted = (
        "application/openmetrics-text"
        if wants_openmetrics(request.headers.get("Accept", ""))
        else ""
    )
    encode, content_type = choose_encoder(wanted)
    response = HttpResponse(encode(registry), content_type=content_type)
    patch_vary_headers(response, ["Accept"])
    return response
