"""GET /health/sync/metrics: the latest recorded run in the OpenMetrics text format.

Reads only (two queries whatever the number of pairs or runs: the latest run
and the sum of repairs). Same access rule as /health/sync/. Every series is
present before the first run (value 0) except ``<prefix>_last_check_timestamp_seconds``:
alert on its absence or its age, not on ``<prefix>_status`` alone.
"""

import re
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from licenses.consistency import VIOLATION_KINDS

from .models import HealthCheckRun, Status
from .selectors import latest_run, total_repairs
from .views import staff_or_token

CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
STATUS_VALUES = {Status.HEALTHY: 0, Status.DEGRADED: 1, Status.CRITICAL: 2}
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


def families(run: HealthCheckRun | None, *, repairs_total: int) -> list[Family]:
    """The metric families for one run (None: no check recorded yet)."""
    by_kind = run.by_kind if run else dict.fromkeys(VIOLATION_KINDS, 0)
    result = [
        Family(
            "consistency_ratio",
            "gauge",
            "Share of checked pairs in sync at the latest check (0..1).",
            [({}, float(run.consistency_rate) / 100 if run else 0.0)],
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
            "repairs",
            "counter",
            "Pairs repaired, summed over every recorded run.",
            [({}, repairs_total)],
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
    return result


def openmetrics_text(run: HealthCheckRun | None, *, repairs_total: int, prefix: str) -> str:
    """The exposition text: HELP/TYPE/UNIT then samples per family, ending with ``# EOF``."""
    if not _NAME.fullmatch(prefix):
        raise ValueError(BAD_PREFIX.format(value=prefix))
    lines = []
    for family in families(run, repairs_total=repairs_total):
        name = f"{prefix}_{family.name}"
        lines.append(f"# HELP {name} {family.help}")
        lines.append(f"# TYPE {name} {family.type}")
        if family.unit:
            lines.append(f"# UNIT {name} {family.unit}")
        sample_name = f"{name}_total" if family.type == "counter" else name
        lines.extend(
            f"{sample_name}{_labels(labels)} {_value(value)}" for labels, value in family.samples
        )
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@never_cache
@require_GET
@staff_or_token
def sync_metrics(request) -> HttpResponse:
    text = openmetrics_text(
        latest_run(), repairs_total=total_repairs(), prefix=settings.SYNC_METRICS_PREFIX
    )
    return HttpResponse(text, content_type=CONTENT_TYPE)
