"""Settings, all read from the environment (or an optional ``.env`` file).

Variables: DATABASE_URL, SECRET_KEY, DEBUG, ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS,
SECURE_SSL_REDIRECT, SYNC_* (see README "Configuration").
"""

import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        # One clear line instead of Django's generic message deep in a traceback.
        raise ImproperlyConfigured(
            "SECRET_KEY is not set: export SECRET_KEY (or set DEBUG=1 for local development)."
        )
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # SimpleAdminConfig: admin modules load with the URLconf (urls.py autodiscovers),
    # not in every management command; check_sync starts faster under cron.
    "django.contrib.admin.apps.SimpleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "specializations",
    "licenses",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# An optional read replica for `check_sync --database replica`.
if env.str("REPLICA_DATABASE_URL", default=""):
    DATABASES["replica"] = env.db("REPLICA_DATABASE_URL")
for _db in DATABASES.values():
    if _db["ENGINE"] == "django.db.backends.sqlite3":
        # Wait for a competing writer instead of failing with "database is locked".
        _db.setdefault("OPTIONS", {}).setdefault("timeout", 20)
        _db["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    else:
        _db.setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))

# The covering (INCLUDE) indexes serve PostgreSQL's index-only desync scan; on
# SQLite they are plain indexes on the same keys, which is all it needs.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# Security: strict unless DEBUG; each exception is listed in the README.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler", "stream": sys.stderr}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
}

# --- The sync monitor (see DESIGN.md, README "Configuration") ---
SYNC_WARN_BELOW = env.float("SYNC_WARN_BELOW", default=99.0)
SYNC_CRITICAL_BELOW = env.float("SYNC_CRITICAL_BELOW", default=95.0)
SYNC_VIOLATION_SAMPLE_SIZE = env.int("SYNC_VIOLATION_SAMPLE_SIZE", default=1000)
SYNC_SAMPLE_RETENTION_DAYS = env.int("SYNC_SAMPLE_RETENTION_DAYS", default=30)
SYNC_STALE_AFTER_SECONDS = env.int("SYNC_STALE_AFTER_SECONDS", default=900)
SYNC_HEALTH_TOKEN = env.str("SYNC_HEALTH_TOKEN", default="")
# How long another process may keep a cached level catalogue after an edit
# (this process clears its cache on every change).
SYNC_CATALOGUE_CACHE_SECONDS = env.int("SYNC_CATALOGUE_CACHE_SECONDS", default=300)
SYNC_METRICS_PREFIX = env.str("SYNC_METRICS_PREFIX", default="academy_sync")
