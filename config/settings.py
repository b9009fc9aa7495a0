"""Settings, all read from the environment (or an optional ``.env`` file).

Variables: DATABASE_URL, SECRET_KEY, DEBUG, ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS,
SECURE_SSL_REDIRECT, LANGUAGE_CODE, SYNC_* (see README "Configuration").
"""

import os
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config import env

BASE_DIR = Path(__file__).resolve().parent.parent

# ACADEMY_ENV_FILE locates the file outside the code (an installed wheel's BASE_DIR is
# site-packages); set, it must exist. Unset, the checkout's optional .env is read.
ENV_FILE = env.string("ACADEMY_ENV_FILE")
SETTINGS_FILE = env.read_env_file(
    Path(ENV_FILE) if ENV_FILE else BASE_DIR / ".env", required=bool(ENV_FILE)
)

DEBUG = env.boolean("DEBUG", default=False)

SECRET_KEY = env.string("SECRET_KEY")  # required without DEBUG: checked at the end

ALLOWED_HOSTS = env.strings("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.strings("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # SimpleAdminConfig: admin modules load with the URLconf (config/urls.py calls
    # autodiscover), not in every management command. It saves check_sync, which cron
    # starts every few minutes, 10-15 ms of its ~150 ms django.setup() (BENCHMARKS.md,
    # "Start-up"); the web server pays it once per worker, at its first request.
    "django.contrib.admin.apps.SimpleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # The ORM task backend's table and its worker (manage.py db_worker); see TASKS.
    "django_tasks_db",
    "specializations",
    "licenses",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves collectstatic's output (compressed, hashed, cached forever) from the app.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A NUL in a parameter is a 400 before any view can hand it to PostgreSQL.
    "config.middleware.RejectNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The staff member's browser language (Accept-Language), else LANGUAGE_CODE.
    "django.middleware.locale.LocaleMiddleware",
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
    "default": env.database("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# An optional read replica for `check_sync --database replica`.
if replica := env.database("REPLICA_DATABASE_URL"):
    DATABASES["replica"] = replica
# Connections are reused (a new PostgreSQL connection per request costs more than
# most pages) and checked before reuse, so a restarted server costs one error-free retry.
CONN_MAX_AGE = env.integer("CONN_MAX_AGE", default=60, minimum=0)
CONN_HEALTH_CHECKS = env.boolean("CONN_HEALTH_CHECKS", default=True)
for _db in DATABASES.values():
    if _db["ENGINE"] == "django.db.backends.sqlite3":
        # Wait for a competing writer instead of failing with "database is locked".
        _db.setdefault("OPTIONS", {}).setdefault("timeout", 20)
        _db["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    else:
        _db["CONN_MAX_AGE"] = CONN_MAX_AGE
        _db["CONN_HEALTH_CHECKS"] = CONN_HEALTH_CHECKS

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

# What staff read: English by default, Hungarian complete (each app's locale/). A
# staff member's browser picks between them (LocaleMiddleware); LANGUAGE_CODE is the
# fallback. Machine-read output (check_sync, metrics, API fields, logs) stays English.
LANGUAGES = [("en", "English"), ("hu", "Magyar")]
LANGUAGE_CODE = env.language("LANGUAGE_CODE", default="en-us", languages=LANGUAGES)
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Outside site-packages in an installed deployment: set STATIC_ROOT (README "Production").
STATIC_ROOT = env.string("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Security: strict unless DEBUG; each exception is listed in the README.
SECURE_SSL_REDIRECT = env.boolean("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env.integer(
    "SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.boolean("SECURE_HSTS_PRELOAD", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Plain-HTTP probes inside the network get the health JSON (200/503/401), not a 301.
SECURE_REDIRECT_EXEMPT = [r"^health/"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"()": "config.log.OneLineRefusedHosts"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "stream": sys.stderr, "formatter": "plain"}
    },
    "root": {"handlers": ["console"], "level": env.choice("LOG_LEVEL", "WARNING", LOG_LEVELS)},
}

# --- The sync monitor (see DESIGN.md, README "Configuration") ---
SYNC_WARN_BELOW = env.number("SYNC_WARN_BELOW", 99.0, minimum=0, maximum=100)
SYNC_CRITICAL_BELOW = env.number("SYNC_CRITICAL_BELOW", 95.0, minimum=0, maximum=100)
if SYNC_CRITICAL_BELOW > SYNC_WARN_BELOW:
    raise ImproperlyConfigured(
        f"SYNC_CRITICAL_BELOW={SYNC_CRITICAL_BELOW:g} must not be above "
        f"SYNC_WARN_BELOW={SYNC_WARN_BELOW:g} (critical is the lower rate)"
    )
SYNC_VIOLATION_SAMPLE_SIZE = env.integer(
    "SYNC_VIOLATION_SAMPLE_SIZE", 1000, minimum=0, maximum=1_000_000
)
# At most a century: the cut-off date must stay a date.
SYNC_SAMPLE_RETENTION_DAYS = env.integer(
    "SYNC_SAMPLE_RETENTION_DAYS", 30, minimum=1, maximum=36_500
)
SYNC_STALE_AFTER_SECONDS = env.integer("SYNC_STALE_AFTER_SECONDS", 900, minimum=1)
# A replica further behind its primary than this is not believed: the check says UNKNOWN.
SYNC_MAX_REPLICA_LAG_SECONDS = env.number("SYNC_MAX_REPLICA_LAG_SECONDS", 60.0, minimum=0)
# Repair: the longest it waits for any lock (rows held by others are skipped, not waited
# for); pairs per batch transaction; and how long a running run may go without a
# heartbeat before it reads as interrupted and stops blocking the next repair.
SYNC_REPAIR_LOCK_TIMEOUT = env.number("SYNC_REPAIR_LOCK_TIMEOUT", 2.0, minimum=0.001, maximum=600)
SYNC_REPAIR_BATCH_SIZE = env.integer("SYNC_REPAIR_BATCH_SIZE", 500, minimum=1, maximum=10_000)
SYNC_RUN_INTERRUPTED_AFTER_SECONDS = env.integer(
    "SYNC_RUN_INTERRUPTED_AFTER_SECONDS", 120, minimum=1, maximum=86_400
)
SYNC_HEALTH_TOKEN = env.string("SYNC_HEALTH_TOKEN")
# How long another process may keep a cached level catalogue after an edit
# (this process clears its cache on every change).
SYNC_CATALOGUE_CACHE_SECONDS = env.integer("SYNC_CATALOGUE_CACHE_SECONDS", 300, minimum=0)
SYNC_METRICS_PREFIX = env.metric_prefix("SYNC_METRICS_PREFIX", "academy_sync")
# PostgreSQL refuses a commit that leaves a touched pair out of sync (licenses/guard.py).
SYNC_DB_GUARD = env.boolean("SYNC_DB_GUARD", default=True)

# Background jobs (django.tasks): repairs too large for a request. The ORM backend needs
# no new server; its worker is `manage.py db_worker` (deploy/academy-worker.service).
# Swappable for another django.tasks backend (RQ, Celery: README "Background repairs").
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
# The admin repairs a selection of up to this many pairs within the request; a larger
# one, or every matching case across pages, becomes a background job.
SYNC_ADMIN_INLINE_REPAIR_LIMIT = env.integer(
    "SYNC_ADMIN_INLINE_REPAIR_LIMIT", 2000, minimum=1, maximum=100_000
)

# Last, once every setting is read: a name in the settings file (or a SYNC_* variable)
# that nothing read is a typo that would silently leave its default in place. A module
# extending these settings (README "Background repairs") calls it itself, at its end.
if os.environ.get("DJANGO_SETTINGS_MODULE", __name__) == __name__:
    env.check_names(SETTINGS_FILE)
if not SECRET_KEY:
    if not DEBUG:
        # One clear line instead of Django's generic message deep in a traceback; after
        # the names, so that a misspelled SECRET_KEY in the file is named as such.
        raise ImproperlyConfigured(
            "SECRET_KEY is not set: export SECRET_KEY (or set DEBUG=1 for local development)."
        )
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG"
