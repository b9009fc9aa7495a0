"""The one health decision: healthy, degraded, critical, stale or unknown.

A live check turns a consistency rate into healthy / degraded / critical with
``Thresholds.status_for``. Everything that reads the recorded runs (the
``/health/sync/`` endpoint, the metrics, the django-health-check check and the
system check) asks ``current_health()``, which adds the two states a record
can be in besides its status: *stale* (the latest run is older than
``SYNC_STALE_AFTER_SECONDS``: cron has stopped) and *unknown* (no run yet, or
the history cannot be read).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .conf import app_settings
from .exceptions import BadThresholds, first_line
from .limits import RATE
from .status import CRITICAL, DEGRADED, HEALTHY

# What a record can be in besides its status.
STALE, UNKNOWN = "stale", "unknown"
STATES = (HEALTHY, DEGRADED, CRITICAL, STALE, UNKNOWN)
# What a load balancer or uptime probe treats as up: a degraded run pages
# through check_sync, not by taking the application out of rotation.
UP_STATES = (HEALTHY, DEGRADED)

# The human reason, in the active language (the request's; English for check_sync and logs).
NO_RUN = _("no sync check has been recorded yet")
STALE_RUN = _("the latest sync check is %(age).0f s old (stale after %(limit)s s)")
RUN_STATUS = _("%(inconsistent)s of %(total)s pairs out of sync (%(rate)s%%)")
LEDGER_STATUS = _("; %(mismatches)s of %(checked)s progress rows differ from their ledger")
SEVERITY = {HEALTHY: 0, DEGRADED: 1, CRITICAL: 2}
UNREADABLE = _("database unavailable: %(error)s")


@dataclass(frozen=True, slots=True)
class Thresholds:
    warn_below: float
    critical_below: float

    def __post_init__(self):
        low, high = RATE
        if not low <= self.critical_below <= self.warn_below <= high:
            raise BadThresholds(self.warn_below, self.critical_below)

    @classmethod
    def from_settings(cls, *, warn_below=None, critical_below=None) -> Thresholds:
        return cls(
            warn_below=float(app_settings.SYNC_WARN_BELOW if warn_below is None else warn_below),
            critical_below=float(
                app_settings.SYNC_CRITICAL_BELOW if critical_below is None else critical_below
            ),
        )

    def as_dict(self) -> dict:
        return {"warn_below": self.warn_below, "critical_below": self.critical_below}

    def status_for(
        self, rate: float, *, ledger_rate: float = 100.0, ledger_mismatches: int = 0
    ) -> str:
        """The status of a check: its pairs' consistency rate against the thresholds and,
        for a check of the ledger, the share of progress rows that equal the sum of their
        events against the same thresholds, a single mismatch making it at least degraded."""
        status = self._by_rate(rate)
        if ledger_mismatches:
            ledger = max(DEGRADED, self._by_rate(ledger_rate), key=SEVERITY.__getitem__)
            status = max(status, ledger, key=SEVERITY.__getitem__)
        return status

    def _by_rate(self, rate: float) -> str:
        if rate >= self.warn_below:
            return HEALTHY
        if rate >= self.critical_below:
            return DEGRADED
        return CRITICAL


@dataclass(frozen=True, slots=True)
class Health:
    state: str
    reason: str
    run: object | None = None  # the HealthCheckRun the decision is based on
    age_seconds: float | None = None

    @property
    def up(self) -> bool:
        return self.state in UP_STATES

    @property
    def stale(self) -> bool:
        return self.state in (STALE, UNKNOWN)


def judge(run, *, now: datetime) -> Health:
    """The health a recorded run stands for at ``now`` (``run`` None: nothing recorded)."""
    if run is None:
        return Health(UNKNOWN, gettext(NO_RUN))
    age = max(0.0, (now - run.checked_at).total_seconds())
    if age > app_settings.SYNC_STALE_AFTER_SECONDS:
        reason = gettext(STALE_RUN) % {"age": age, "limit": app_settings.SYNC_STALE_AFTER_SECONDS}
        return Health(STALE, reason, run, age)
    reason = gettext(RUN_STATUS) % {
        "inconsistent": run.inconsistent,
        "total": run.total_checked,
        "rate": run.consistency_rate,
    }
    if run.ledger_mismatches:
        reason += gettext(LEDGER_STATUS) % {
            "mismatches": run.ledger_mismatches,
            "checked": run.ledger_checked,
        }
    return Health(str(run.status), reason, run, age)


def current_health(*, now: datetime | None = None) -> Health:
    """The decision for the latest full check.

    Raises ``DatabaseError`` when the history cannot be read: each caller says
    so its own way (a 503 and one log line, a failed health check) with
    ``unreadable(exc)`` as the decision.
    """
    from .selectors import latest_run  # models load with the apps; plugin.py imports this early

    return judge(latest_run(), now=now or timezone.now())


def unreadable(exc: DatabaseError) -> Health:
    return Health(UNKNOWN, gettext(UNREADABLE) % {"error": first_line(exc)})
