"""Django's command line with this product's start-up: ``manage.py`` and ``academy-manage``.

An installed wheel has no ``manage.py``; its ``academy-manage`` console script is the
same command. A refused setting is an operator's mistake, not a crash: one line
(``Configuration error: ...``, exit 1), no traceback. ``check_sync`` goes to its own
start-up guard, which reports the same failures as UNKNOWN (exit 3).
"""

import os
import sys


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if argv[1:2] == ["check_sync"]:
        from monitoring.bootstrap import run_check_sync

        run_check_sync(argv)
        return
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(argv)
    except ImproperlyConfigured as exc:
        sys.exit(f"Configuration error: {exc}")


if __name__ == "__main__":
    main()
