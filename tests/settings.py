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
