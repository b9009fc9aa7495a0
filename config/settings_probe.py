"""Load the settings; say in one line if they are refused: ``python -m config.settings_probe``.

gunicorn runs it before it listens (config/gunicorn_conf.py) and the web unit
before a reload (``ExecReload=``): a refused setting stops the start, or leaves the
running workers alone, with ``Configuration error: ...`` and exit 78 (EX_CONFIG,
which the unit does not restart into). Exit 0 when the settings load.
"""

import importlib
import os
import sys

from monitoring.exceptions import first_line

EX_CONFIG = 78


def main() -> None:
    try:
        importlib.import_module(os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings"))
    except Exception as exc:  # whatever stops the settings from loading stops the server
        sys.stderr.write(f"Configuration error: {first_line(exc)}\n")
        sys.exit(EX_CONFIG)


if __name__ == "__main__":
    main()
