"""System checks of the sync monitor (``manage.py check``, and at startup)."""

from pathlib import Path

from django.conf import settings
from django.core import checks
from django.db import DatabaseError, transaction

from licenses.models import UserLicense
from specializations.models import SpecializationProgress

from .conf import app_settings
from .health import current_health

NO_RECENT_CHECK = "No sync check has been recorded for more than {limit} seconds."
NO_RECENT_CHECK_HINT = (
    "Schedule `manage.py check_sync` (cron, every few minutes) or raise SYNC_STALE_AFTER_SECONDS."
)


@checks.register()
def recent_sync_check(app_configs=None, **kwargs):
    """monitoring.W001: pairs exist but nobody has checked them lately (cron missing?)."""
    try:
        # A savepoint, so that a missing table (before migrate) spoils nothing around it.
        with transaction.atomic():
            if not current_health().stale:
                return []
            has_pairs = SpecializationProgress.objects.exists() or UserLicense.objects.exists()
    except DatabaseError:
        # No tables yet or no database at all: other checks and commands report that.
        return []
    if not has_pairs:
        return []
    return [
        checks.Warning(
            NO_RECENT_CHECK.format(limit=app_settings.SYNC_STALE_AFTER_SECONDS),
            hint=NO_RECENT_CHECK_HINT,
            id="monitoring.W001",
        )
    ]


@checks.register(deploy=True)
def production_database_named(app_configs=None, **kwargs):
    """monitoring.W002 (--deploy): the database is the embedded default, the checkout's SQLite file.

    The embedded default suits development; in production a missing (or misspelled)
    DATABASE_URL would migrate, serve and monitor an empty file next to the code.
    """
    database = settings.DATABASES["default"]
    base_dir = getattr(settings, "BASE_DIR", None)  # a host project's settings may lack it
    if base_dir is None:
        return []
    embedded = Path(base_dir) / "db.sqlite3"
    if settings.DEBUG or not (
        database["ENGINE"] == "django.db.backends.sqlite3" and Path(database["NAME"]) == embedded
    ):
        return []
    return [
        checks.Warning(
            f"DATABASE_URL is not set: the database is the embedded default, {database['NAME']}.",
            hint="Set DATABASE_URL in the settings file (docs/production.md); keep the"
            " SQLite default for development only.",
            id="monitoring.W002",
        )
    ]
