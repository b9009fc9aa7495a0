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
from django.db import DatabaseError
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from monitoring.health import current_health, unreadable


@dataclasses.dataclass
class SyncHealth(HealthCheck):
    """Progress/licence sync, as recorded by the latest ``check_sync`` run."""

    async def run(self) -> None:
        # Thread-sensitive: the ORM runs on the request's thread and connection,
        # not on an executor thread whose connection nobody closes.
        await sync_to_async(self.check_latest_run, thread_sensitive=True)()

    def check_latest_run(self) -> None:
        try:
            health = current_health()
        except DatabaseError as exc:
            raise ServiceUnavailable(unreadable(exc).reason) from exc
        if not health.up:
            raise ServiceUnavailable(health.reason)
