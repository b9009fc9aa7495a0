"""Strict reading of the environment for the settings.

Numbers go through Python's own ``int()`` / ``float()`` (django-environ's
float keeps only digits, dots and signs, so ``9.9e1`` became 9.91) and are
range-checked; NaN and infinities are refused. Every refusal is an
``ImproperlyConfigured`` naming the variable and its value, so the web server,
``manage.py`` and ``check_sync`` (which reports it as UNKNOWN) all stop with
the same one line. An empty variable counts as unset.

The settings file (``ACADEMY_ENV_FILE``, else the checkout's ``.env``) is read
as strictly: ``NAME=value`` lines, ``#`` comments and blank lines, and nothing
else. A malformed line, a name given twice, or a name the settings never read
(``DATABSE_URL``, a misspelled ``SYNC_*``) is refused with the file and line;
the value is never shown, since it may be a secret. libpq's ``PG*`` variables
pass through to the database driver.
"""

import difflib
import math
import os
import re
import warnings
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

# Every name the settings asked for: the settings file may only name these (and PG*).
READ: set[str] = set()
# Names the settings file set, with their line numbers, checked by check_file_names().
FILE_NAMES: dict[str, int] = {}
FILE_PATH: list[str] = []
LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)")
PASSED_THROUGH = re.compile(r"PG[A-Z_]+")  # libpq's own variables (PGSSLMODE, PGAPPNAME...)

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}
DATABASE_ENGINES = {
    "django.db.backends.postgresql",
    "django.db.backends.sqlite3",
}
DATABASE_URL_EXAMPLE = "postgres://user@host:5432/name or sqlite:////path/to/db.sqlite3"


def _raw(name: str) -> str | None:
    READ.add(name)
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
    FILE_PATH[:] = [str(path)]
    for name, value in parse_env_file(str(path), content).items():
        os.environ.setdefault(name, value)


def parse_env_file(path: str, content: str) -> dict[str, str]:
    """``NAME=value`` lines (optionally ``export``-ed, the value optionally quoted)."""
    found: dict[str, str] = {}
    FILE_NAMES.clear()
    for number, line in enumerate(content.splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        where = f"the settings file {path!r}, line {number}"
        match = LINE.fullmatch(text)
        if match is None:
            # Only the line's first word: what follows may be the secret itself.
            head = re.split(r"[\s=]", text, maxsplit=1)[0][:40]
            raise ImproperlyConfigured(
                f"{where}: expected NAME=value with nothing around the '=' (the line starts"
                f" {head!r}; the rest is not shown)"
            )
        name, value = match.groups()
        if name in FILE_NAMES:
            raise ImproperlyConfigured(f"{where}: {name} is already set on line {FILE_NAMES[name]}")
        FILE_NAMES[name] = number
        found[name] = _unquote(value)
    return found


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def check_names() -> None:
    """After every setting is read: refuse the names that nothing reads.

    In the settings file any such name; in the environment those of this product's
    own ``SYNC_`` namespace (a misspelled one would silently keep its default).
    """
    for name in sorted(os.environ):
        if name.startswith("SYNC_") and name not in READ and name not in FILE_NAMES:
            raise ImproperlyConfigured(f"{name} (in the environment) is not a setting{_hint(name)}")
    for name, number in FILE_NAMES.items():
        if name in READ or PASSED_THROUGH.fullmatch(name):
            continue
        where = f"the settings file {FILE_PATH[0]!r}, line {number}"
        if name.startswith("GUNICORN_"):
            raise ImproperlyConfigured(
                f"{where}: {name} is read by gunicorn before the settings load: set it in"
                " the web unit (Environment=) or on gunicorn's command line"
            )
        raise ImproperlyConfigured(f"{where}: {name} is not a setting{_hint(name)}")


def _hint(name: str) -> str:
    close = difflib.get_close_matches(name, sorted(READ), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


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
