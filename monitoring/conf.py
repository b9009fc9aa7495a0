"""The settings monitoring reads, with their defaults and validation (common/conf.py)."""

from django.core.exceptions import ImproperlyConfigured

from common.conf import AppSettings, Setting

from .limits import RATE, REPAIR_BATCH_SIZE, REPAIR_LOCK_TIMEOUT

# A Prometheus metric name: the classic rule, prometheus_client's METRIC_NAME_RE (a test
# keeps the two equal); the prefix setting and the exposition both check it.
METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"

BAD_THRESHOLDS = (
    "SYNC_CRITICAL_BELOW={critical:g} must not be above SYNC_WARN_BELOW={warn:g}"
    " (critical is the lower rate)"
)


def _thresholds_in_order(values: dict) -> None:
    warn, critical = values["SYNC_WARN_BELOW"], values["SYNC_CRITICAL_BELOW"]
    if critical > warn:
        raise ImproperlyConfigured(BAD_THRESHOLDS.format(critical=critical, warn=warn))


app_settings = AppSettings(
    # The status thresholds of a check's consistency rate (DESIGN.md).
    Setting("SYNC_WARN_BELOW", 99.0, minimum=RATE[0], maximum=RATE[1]),
    Setting("SYNC_CRITICAL_BELOW", 95.0, minimum=RATE[0], maximum=RATE[1]),
    Setting("SYNC_VIOLATION_SAMPLE_SIZE", 1000, minimum=0, maximum=1_000_000),
    # At most a century: the cut-off date must stay a date.
    Setting("SYNC_SAMPLE_RETENTION_DAYS", 30, minimum=1, maximum=36_500),
    Setting("SYNC_STALE_AFTER_SECONDS", 900, minimum=1),
    # A replica further behind its primary than this is not believed: UNKNOWN.
    Setting("SYNC_MAX_REPLICA_LAG_SECONDS", 60.0, minimum=0),
    # Repair: the longest it waits for any lock (rows held by others are skipped, not
    # waited for); pairs per batch transaction; and how long a running run may go
    # without a heartbeat before it reads as interrupted and stops blocking the next.
    Setting(
        "SYNC_REPAIR_LOCK_TIMEOUT",
        2.0,
        minimum=REPAIR_LOCK_TIMEOUT[0],
        maximum=REPAIR_LOCK_TIMEOUT[1],
    ),
    Setting(
        "SYNC_REPAIR_BATCH_SIZE",
        500,
        minimum=REPAIR_BATCH_SIZE[0],
        maximum=REPAIR_BATCH_SIZE[1],
    ),
    Setting("SYNC_RUN_INTERRUPTED_AFTER_SECONDS", 120, minimum=1, maximum=86_400),
    # The bearer token of /health/sync/ for probes without a staff session; "" accepts none.
    Setting("SYNC_HEALTH_TOKEN", ""),
    Setting(
        "SYNC_METRICS_PREFIX",
        "academy_sync",
        pattern=METRIC_NAME,
        pattern_says="a valid Prometheus metric name prefix",
    ),
    # The admin repairs a selection of up to this many pairs within the request; a
    # larger one, or every matching case across pages, becomes a background job.
    Setting("SYNC_ADMIN_INLINE_REPAIR_LIMIT", 2000, minimum=1, maximum=100_000),
    rules=(_thresholds_in_order,),
)
