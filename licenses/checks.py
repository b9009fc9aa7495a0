from django.core import checks

from . import signals


@checks.register()
def auto_sync_receiver_connected(app_configs=None, **kwargs):
    """licenses.E001: without the receivers every progress change desyncs its licence, and
    a catalogue change moves nobody (its writers refuse it)."""
    missing = signals.missing_receivers()
    if not missing:
        return []
    return [
        checks.Error(
            f"The auto-sync receiver is not connected to {' and '.join(missing)}.",
            hint="Call licenses.signals.connect_receivers() (LicensesConfig.ready() does).",
            id="licenses.E001",
        )
    ]


GUARD_MISSING = (
    "The commit guard's triggers are missing on database {alias!r} (missing: {missing}): "
    "a transaction can leave a pair out of sync unnoticed until check_sync runs."
)
GUARD_MISSING_HINT = (
    "Run `manage.py sync_guard --install` (migrate installs them too, but this error "
    "stops it), or set SYNC_DB_GUARD=0 to go without."
)


@checks.register()
def commit_guard_installed(app_configs=None, databases=None, **kwargs):
    """licenses.E002: SYNC_DB_GUARD is on and a PostgreSQL database lacks its triggers."""
    from django.db import DatabaseError, connections

    from . import guard
    from .conf import app_settings

    if not app_settings.SYNC_DB_GUARD:
        return []
    errors = []
    # Untagged, like monitoring.W001, so `manage.py check` and runserver say it: the
    # primary always, and any database the caller names.
    for alias in dict.fromkeys(["default", *(databases or [])]):
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue
        try:
            tables = set(connection.introspection.table_names())
            if not {guard._PROGRESS, guard._LICENSE} <= tables:
                continue  # before the first migrate: migrate will install them
            missing = guard.expected_triggers() - guard.installed_triggers(alias)
        except DatabaseError:
            continue  # no database: other checks and commands say so
        if missing:
            errors.append(
                checks.Error(
                    GUARD_MISSING.format(alias=alias, missing=", ".join(sorted(missing))),
                    hint=GUARD_MISSING_HINT,
                    id="licenses.E002",
                )
            )
    return errors
