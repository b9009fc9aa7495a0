"""check_sync's own start-up: a check that cannot even load its settings is UNKNOWN.

``manage.py`` hands ``check_sync`` here before Django is set up. A missing
SECRET_KEY, an unreadable settings file or a mistyped variable then prints
``SYNC UNKNOWN - configuration error: ...`` and exits 3, as every other
could-not-check does, instead of a traceback or Django's generic exit 1
(which Nagios and Icinga read as WARNING).
"""

import os
import sys

from .exceptions import first_line
from .plugin import UNKNOWN, unknown_line


def run_check_sync(argv: list[str]) -> None:
    try:
        import django

        django.setup()
    except Exception as exc:  # any failure to load the settings or the apps is the same UNKNOWN
        sys.stdout.write(unknown_line(f"configuration error: {first_line(exc)}") + "\n")
        sys.stdout.flush()
        sys.exit(UNKNOWN)
    from django.core.management import execute_from_command_line

    execute_from_command_line(argv)


def main() -> None:
    """The ``academy-check-sync`` console script (an installed wheel has no manage.py)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    run_check_sync(["academy-check-sync", "check_sync", *sys.argv[1:]])
