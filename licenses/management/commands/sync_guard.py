from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from licenses import guard
from licenses.conf import app_settings


class Command(BaseCommand):
    help = (
        "Show, install or drop the commit guard's triggers (PostgreSQL). migrate installs "
        "them after every run while SYNC_DB_GUARD is on; this is for the cases between."
    )
    # Runs even when licenses.E002 (triggers missing) would stop other commands: it is the fix.
    requires_system_checks = []

    def add_arguments(self, parser):
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--install", action="store_true", help="Create the triggers.")
        action.add_argument("--drop", action="store_true", help="Drop the triggers.")
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help="Database alias (default: default)."
        )

    def handle(self, *args, install, drop, database, **options):
        if database not in connections:
            raise CommandError(f"--database={database!r} is not a configured database alias")
        if connections[database].vendor != "postgresql":
            raise CommandError(
                f"--database={database!r} is {connections[database].vendor}: the guard needs "
                "PostgreSQL (check_sync is the net there)"
            )
        if install or drop:
            guard.sync_triggers(using=database, enabled=install)
        installed = guard.installed_triggers(database)
        missing = guard.expected_triggers() - installed
        state = "installed" if not missing else "not installed" if not installed else "partial"
        self.stdout.write(
            f"commit guard on {database!r}: {state}"
            f" (SYNC_DB_GUARD is {'on' if app_settings.SYNC_DB_GUARD else 'off'})"
        )
        if options["verbosity"] > 1:
            for name in sorted(guard.expected_triggers()):
                self.stdout.write(f"  {name}: {'present' if name in installed else 'missing'}")
