"""Strict reading of the environment for the settings.

Numbers go through Python's own ``int()`` / ``float()`` (django-environ's
float keeps only digits, dots and signs, so ``9.9e1`` became 9.91) and are
range-checked; NaN and infinities are refused. Every refusal is an
``ImproperlyConfigured`` naming the variable and its value, so the web server,
``manage.py`` and ``check_sync`` (which reports it as UNKNOWN) all stop with
the same one line. An empty variable counts as unset.
"""

import io
import math
import os
import re
import warnings
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}
DATABASE_ENGINES = {
    "django.db.backends.postgresql",
    "django.db.backends.sqlite3",
}
DATABASE_URL_EXAMPLE = "postgres://user@host:5432/name or sqlite:////path/to/db.sqlite3"


def _raw(name: str) -> str | None:
    value = os.environ.get(name, "")
    return value if value.strip() else None


def _refuse(name: str, value: str, problem: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name}={value!r} {problem}")


def _redact(url: str) -> str:
    """The URL without its password (an error message ends up in cron mail and logs)."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _within(name: str, raw: str, value, minimum, maximum):
    if minimum is not None and value < minimum:
        raise _refuse(name, raw, f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise _refuse(name, raw, f"must be at most {maximum}")
    return value


def read_env_file(path: Path, *, required: bool) -> None:
    """Load ``path`` into ``os.environ`` (the real environment wins).

    A missing file is fine unless the operator named it; a file that exists
    but cannot be read is a configuration error, never silently skipped.
    """
    try:
        content = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ImproperlyConfigured(f"ACADEMY_ENV_FILE={str(path)!r} does not exist") from None
        return
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ImproperlyConfigured(
            f"the settings file {str(path)!r} cannot be read: {reason}"
        ) from exc
    environ.Env.read_env(io.StringIO(content), overwrite=False)


def string(name: str, default: str = "") -> str:
    raw = _raw(name)
    return default if raw is None else raw.strip()


def boolean(name: str, default: bool) -> bool:
    raw = _raw(name)
    if raw is None:
        return default
    if raw.strip().lower() in TRUE:
        return True
    if raw.strip().lower() in FALSE:
        return False
    raise _refuse(name, raw, "is not a boolean (use 1/0, true/false, yes/no, on/off)")


def integer(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None):
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise _refuse(name, raw, "is not an integer") from None
    return _within(name, raw, value, minimum, maximum)


def number(
    name: str, default: float, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise _refuse(name, raw, "is not a number") from None
    if not math.isfinite(value):
        raise _refuse(name, raw, "is not a finite number")
    return _within(name, raw, value, minimum, maximum)


def choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = _raw(name)
    if raw is None:
        return default
    value = raw.strip().upper()
    if value not in choices:
        raise _refuse(name, raw, f"is not one of {', '.join(choices)}")
    return value


METRIC_PREFIX = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_prefix(name: str, default: str) -> str:
    value = string(name, default)
    if not METRIC_PREFIX.fullmatch(value):
        raise _refuse(name, value, "is not a valid Prometheus metric name prefix")
    return value


def strings(name: str, default: list[str]) -> list[str]:
    raw = _raw(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def database(name: str, default: str | None = None) -> dict | None:
    """A DATABASES entry from a URL; None when unset and without a default."""
    raw = _raw(name)
    url = default if raw is None else raw.strip()
    if url is None:
        return None
    shown = _redact(url)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Engine not recognized": refused below instead
            config = environ.Env.db_url_config(url)
    except (ValueError, KeyError, TypeError) as exc:
        problem = f"is not a database URL ({exc}; e.g. {DATABASE_URL_EXAMPLE})"
        raise _refuse(name, shown, problem) from None
    if config.get("ENGINE") not in DATABASE_ENGINES:
        raise _refuse(name, shown, f"is not a supported database URL (e.g. {DATABASE_URL_EXAMPLE})")
    if config["ENGINE"] == "django.db.backends.postgresql" and not config.get("NAME"):
        raise _refuse(name, shown, f"names no database (e.g. {DATABASE_URL_EXAMPLE})")
    return config
