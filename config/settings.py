"""Settings, all read from the environment (or an optional ``.env`` file).

Variables: DATABASE_URL, SECRET_KEY, DEBUG, ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS,
SECURE_SSL_REDIRECT, LANGUAGE_CODE, MEDIA_ROOT, IMPORTS_SOURCE_URL, SYNC_* (see
docs/configuration.md; each SYNC_* setting's default, bounds and rules are in its app's
conf.py, the environment overrides them here).
"""

import os
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config import env
from licenses.conf import app_settings as licenses_settings
from monitoring.conf import app_settings as monitoring_settings
from specializations.conf import app_settings as specializations_settings

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
    "common.tasks_app.BackgroundJobsConfig",  # django_tasks_db, its name translated
    "common",
    "specializations",
    "licenses",
    "monitoring",
    # The HTTP API (/api/v1/); "ninja" for its documentation page's own static files.
    "ninja",
    "api",
    "imports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves collectstatic's output (compressed, hashed, cached forever) from the app.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # /api/: NUL, body size and every error as application/problem+json.
    "api.middleware.ApiDoorMiddleware",
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
# Outside site-packages in an installed deployment: set STATIC_ROOT (docs/production.md).
STATIC_ROOT = env.string("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
# Uploaded import files wait here for the worker (never served: no MEDIA_URL route); the
# web server and the worker must both reach it (docs/moving-in.md).
MEDIA_ROOT = env.string("MEDIA_ROOT", default=str(BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Security: strict unless DEBUG; each exception is listed in docs/configuration.md.
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
# A debug page or an error report hides IMPORTS_SOURCE_URL (its password) with the secrets.
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.reports.SafeSettingsFilter"

# --- The apps' SYNC_* settings (see DESIGN.md) ---
# Their defaults, bounds and rules are in each app's conf.py (a host project needs none
# of them); here the environment overrides them, read as strictly as the rest, and the
# apps' rules (critical below warn) are checked once at start-up.
for _app_settings in (specializations_settings, licenses_settings, monitoring_settings):
    _overrides = env.overrides(_app_settings)
    globals().update(_overrides)
    _app_settings.check(
        {setting.name: _overrides.get(setting.name, setting.default) for setting in _app_settings}
    )

# Background jobs (django.tasks): repairs too large for a request. The ORM backend needs
# no new server; its worker is `manage.py db_worker` (deploy/academy-worker.service).
# Swappable for another django.tasks backend (RQ, Celery: docs/repair.md).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

# The HTTP API (api/conf.py holds every API_* default; the environment may override this
# one; unset, the default stays). The rate limit's cache must be shared (Redis, Memcached)
# for it to hold across workers and servers: LocMem, the default cache, counts per process.
if (_api_rate := env.integer("API_RATE_LIMIT_PER_MINUTE", -1, minimum=0)) >= 0:
    API_RATE_LIMIT_PER_MINUTE = _api_rate
# The imports' settings (imports/conf.py holds their defaults and checks; nothing imports
# that app, so this reads them by name): the replaced system's database that the admin's
# "Run source import" reads. It holds a password: the settings file, never a unit's
# Environment= line (systemctl show prints those) nor the browser.
if _source_url := env.string("IMPORTS_SOURCE_URL"):
    IMPORTS_SOURCE_URL = _source_url
# Last, once every setting is read: a name in the settings file (or a SYNC_* variable)
# that nothing read is a typo that would silently leave its default in place. A module
# extending these settings (docs/repair.md) calls it itself, at its end.
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
