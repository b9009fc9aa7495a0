#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if sys.argv[1:2] == ["check_sync"]:
        # The monitor reports its own start-up failures (exit 3, a SYNC UNKNOWN line).
        from monitoring.bootstrap import run_check_sync

        run_check_sync(sys.argv)
        return
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A missing variable is an operator's mistake, not a crash: one line, no traceback.
        sys.exit(f"Configuration error: {exc}")


if __name__ == "__main__":
    main()
