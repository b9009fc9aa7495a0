"""A django-health-check check for the sync monitor (``pip install 'academy-sync[healthcheck]'``).

Add it to the checks of your existing health view::

    path("ht/", HealthCheckView.as_view(checks=[..., "monitoring.contrib.health_check.SyncHealth"]))

It reads the latest recorded run only (the check itself runs from cron) and is
unhealthy when that run is critical, older than SYNC_STALE_AFTER_SECONDS, or
missing. A degraded run is healthy here: it pages through check_sync, not the
load balancer.
"""

import dataclasses

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from monitoring.models import Status
from monitoring.selectors import is_stale, latest_run, run_age_seconds

NO_RUN = "no sync check has been recorded yet"
STALE = "the latest sync check is {age:.0f} s old (stale after {limit} s)"
CRITICAL = "{inconsistent} of {total} pairs out of sync ({rate}%)"
UNREADABLE = "the sync check history cannot be read"


@dataclasses.dataclass
class SyncHealth(HealthCheck):
    """Progress/licence sync, as recorded by the latest ``check_sync`` run."""

    async def run(self) -> None:
        # Thread-sensitive: the ORM runs on the request's thread and connection,
        # not on an executor thread whose connection nobody closes.
        await sync_to_async(self.check_latest_run, thread_sensitive=True)()

    def check_latest_run(self) -> None:
        try:
            run = latest_run()
        except DatabaseError as exc:
            raise ServiceUnavailable(UNREADABLE) from exc
        now = timezone.now()
        if run is None:
            raise ServiceUnavailable(NO_RUN)
        if is_stale(run, now=now):
            raise ServiceUnavailable(
                STALE.format(
                    age=run_age_seconds(run, now=now), limit=settings.SYNC_STALE_AFTER_SECONDS
                )
            )
        if run.status == Status.CRITICAL:
            raise ServiceUnavailable(
                CRITICAL.format(
                    inconsistent=run.inconsistent,
                    total=run.total_checked,
                    rate=run.consistency_rate,
                )
            )
