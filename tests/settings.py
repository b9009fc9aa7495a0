"""Settings for the test suite: production settings with a throwaway key and fast hashing.

The database comes from DATABASE_URL as in production (the Makefile points it at
PostgreSQL for the second run).
"""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret")

from config.settings import *  # noqa: E402,F403

SECURE_SSL_REDIRECT = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SYNC_HEALTH_TOKEN = "test-token-0123456789"
# The suite renders pages without running collectstatic first: unhashed names, no manifest.
# (tests/test_production.py boots the real storage behind gunicorn.)
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# No collectstatic output here: whitenoise looks files up per request instead of warning
# at every handler that STATIC_ROOT does not exist.
WHITENOISE_AUTOREFRESH = True
# A second alias for `check_sync --database`: a test mirror of the default database
# (the same test database), so a wrong alias is caught without a second server.
DATABASES["replica"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}  # noqa: F405
# Jobs run at once, inside the request that queues them (the admin's background repairs).
# tests/test_admin_jobs.py switches to the ORM backend to see them queued, and runs the
# real worker (db_worker) for them.
TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
