"""GET /health/sync/metrics: the latest recorded run for Prometheus.

Content negotiation: OpenMetrics 1.0.0 when the Accept header asks for it (as
Prometheus does), the classic text format 0.0.4 otherwise (curl, promtool,
older scrapers). Reads only: two queries whatever the number of pairs or runs
(the latest run and the sum of repairs). Same access rule as /health/sync/.
Every series is present before the first run except
``<prefix>_last_check_timestamp_seconds`` (and ``<prefix>_replica_lag_seconds``,
only for a check of a replica): alert on its absence or its age against
``<prefix>_stale_after_seconds``, not on ``<prefix>_status`` alone.
"""

import re
from dataclasses import dataclass

from django.http import HttpResponse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from licenses.consistency import VIOLATION_KINDS

from .conf import app_settings
from .health import CRITICAL, DEGRADED, HEALTHY, STATES, Health, judge
from .models import HealthCheckRun
from .selectors import latest_run, total_repairs
from .views import staff_or_token, unavailable_without_database

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
CLASSIC = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE = OPENMETRICS  # what Prometheus asks for
STATUS_VALUES = {HEALTHY: 0, DEGRADED: 1, CRITICAL: 2}
BAD_PREFIX = "SYNC_METRICS_PREFIX={value!r} is not a valid metric name prefix"
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@dataclass(frozen=True, slots=True)
class Family:
    name: str  # without the prefix; a counter's samples get "_total"
    type: str
    help: str
    samples: list[tuple[dict[str, str], int | float]]
    unit: str = ""


def _value(value: int | float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items()) + "}"


def consistency_ratio(run: HealthCheckRun | None) -> float:
    """Exactly consistent / total (1.0 when nothing was checked; 0 before the first run)."""
    if run is None:
        return 0.0
    return run.consistent / run.total_checked if run.total_checked else 1.0


def families(run: HealthCheckRun | None, *, repairs_total: int) -> list[Family]:
    """The metric families for one run (None: no check recorded yet)."""
    health = judge(run, now=timezone.now())
    by_kind = run.by_kind if run else dict.fromkeys(VIOLATION_KINDS, 0)
    result = [
        Family(
            "consistency_ratio",
            "gauge",
            "Share of checked pairs in sync at the latest check (0..1).",
            [({}, consistency_ratio(run))],
            unit="ratio",
        ),
        Family(
            "desync_pairs",
            "gauge",
            "Pairs out of sync at the latest check, by kind.",
            [({"kind": kind}, by_kind[kind]) for kind in VIOLATION_KINDS],
        ),
        Family(
            "checked_pairs",
            "gauge",
            "Pairs (user, specialization) checked by the latest check.",
            [({}, run.total_checked if run else 0)],
        ),
        Family(
            "check_duration_seconds",
            "gauge",
            "How long the latest check took.",
            [({}, run.duration_ms / 1000 if run else 0.0)],
            unit="seconds",
        ),
        Family(
            "status",
            "gauge",
            "Status of the latest check: 0 healthy, 1 degraded, 2 critical.",
            [({}, STATUS_VALUES[run.status] if run else 0)],
        ),
        Family(
            "health",
            "gauge",
            "The health decision now (1 for the current state): the latest check's status, "
            "or stale, or unknown.",
            [({"state": state}, int(state == health.state)) for state in STATES],
        ),
        Family(
            "repairs",
            "counter",
            "Pairs repaired, summed over every recorded run.",
            [({}, repairs_total)],
        ),
        Family(
            "stale_after_seconds",
            "gauge",
            "Age after which the latest check is stale (SYNC_STALE_AFTER_SECONDS).",
            [({}, app_settings.SYNC_STALE_AFTER_SECONDS)],
            unit="seconds",
        ),
        Family(
            "max_replica_lag_seconds",
            "gauge",
            "Replica lag above which a check of a replica is not believed "
            "(SYNC_MAX_REPLICA_LAG_SECONDS).",
            [({}, float(app_settings.SYNC_MAX_REPLICA_LAG_SECONDS))],
            unit="seconds",
        ),
    ]
    if run is not None:
        result.append(
            Family(
                "last_check_timestamp_seconds",
                "gauge",
                "Unix time of the latest recorded check.",
                [({}, run.checked_at.timestamp())],
                unit="seconds",
            )
        )
        if run.replica_lag_seconds is not None:
            result.append(
                Family(
                    "replica_lag_seconds",
                    "gauge",
                    "How far the replica the latest check read was behind its primary.",
                    [({"database": run.database}, float(run.replica_lag_seconds))],
                    unit="seconds",
                )
            )
    return result


def exposition(
    run: HealthCheckRun | None, *, repairs_total: int, prefix: str, openmetrics: bool = True
) -> str:
    """The exposition text in OpenMetrics 1.0.0 or in the classic format 0.0.4.

    They differ where their parsers do: OpenMetrics names a counter family
    without ``_total`` and has UNIT lines and ``# EOF``; the classic format
    names every family as its samples and knows neither.
    """
    if not _NAME.fullmatch(prefix):
        raise ValueError(BAD_PREFIX.format(value=prefix))
    lines = []
    for family in families(run, repairs_total=repairs_total):
        sample_name = f"{prefix}_{family.name}" + ("_total" if family.type == "counter" else "")
        name = f"{prefix}_{family.name}" if openmetrics else sample_name
        lines.append(f"# HELP {name} {family.help}")
        lines.append(f"# TYPE {name} {family.type}")
        if family.unit and openmetrics:
            lines.append(f"# UNIT {name} {family.unit}")
        lines.extend(
            f"{sample_name}{_labels(labels)} {_value(value)}" for labels, value in family.samples
        )
    if openmetrics:
        lines.append("# EOF")
    return "\n".join(lines) + "\n"


def openmetrics_text(run: HealthCheckRun | None, *, repairs_total: int, prefix: str) -> str:
    return exposition(run, repairs_total=repairs_total, prefix=prefix, openmetrics=True)


def _quality(accept: str, media_type: str) -> float:
    """The q-value the Accept header gives ``media_type`` (exact or wildcard match)."""
    best, best_specificity = 0.0, -1
    main = media_type.split("/")[0]
    for item in accept.split(","):
        kind, *params = (part.strip() for part in item.split(";"))
        kind = kind.lower()
        specificity = {media_type: 2, f"{main}/*": 1, "*/*": 0}.get(kind, -1)
        if specificity <= best_specificity:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best, best_specificity = q, specificity
    return best


def wants_openmetrics(accept: str) -> bool:
    """OpenMetrics only when asked for by name and preferred to the classic text format."""
    if "application/openmetrics-text" not in accept.lower():
        return False
    openmetrics = _quality(accept, "application/openmetrics-text")
    return openmetrics > 0 and openmetrics >= _quality(accept, "text/plain")


def _unavailable_text(health: Health) -> HttpResponse:
    return HttpResponse(f"{health.reason}\n", status=503, content_type="text/plain; charset=utf-8")


@never_cache
@require_safe
@unavailable_without_database(_unavailable_text)
@staff_or_token
def sync_metrics(request) -> HttpResponse:
    openmetrics = wants_openmetrics(request.headers.get("Accept", ""))
    text = exposition(
        latest_run(),
        repairs_total=total_repairs(),
        prefix=app_settings.SYNC_METRICS_PREFIX,
        openmetrics=openmetrics,
    )
    response = HttpResponse(text, content_type=OPENMETRICS if openmetrics else CLASSIC)
    patch_vary_headers(response, ["Accept"])
    return response
