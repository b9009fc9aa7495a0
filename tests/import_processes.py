"""The imports as real processes against the live test database (PostgreSQL): the
command started with production-like settings, and a poll for what it is doing."""

import subprocess
import time
from pathlib import Path

from django.db import connection

from tests.conftest import manage_process
from tests.production import database_url as url_of

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    return url_of(connection.settings_dict)


def import_process(*args: str, app_name: str) -> subprocess.Popen:
    """``manage.py <args>`` (an import command), its backends named ``app_name``."""
    return manage_process(
        *args,
        PGAPPNAME=app_name,  # libpq's application_name: these backends, not the suite's
        SECRET_KEY="import-process-test",
        DATABASE_URL=database_url(),
    )


def wait_for(condition, *, timeout=60.0):
    """``condition()``'s first true value, polled until ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")
