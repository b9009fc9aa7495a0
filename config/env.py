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
from dataclasses import dataclass, field
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

# Every name the settings asked for (each reader records it): check_names() refuses the
# settings file's other names.
READ: set[str] = set()
LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)")
LEADING_NAME = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)")
PASSED_THROUGH = re.compile(r"PG[A-Z_]+")  # libpq's own variables (PGSSLMODE, PGAPPNAME...)
# Names read before the settings file is: set in it, they would do nothing.
READ_BEFORE = {
    "ACADEMY_ENV_FILE": "it names this file: set it in the environment (the unit, cron's line)",
    "DJANGO_SETTINGS_MODULE": "it chooses the settings: set it in the environment (the unit)",
}
GUNICORN_NAMES = (
    "it is read by gunicorn before the settings load: set it in the web unit (Environment=)"
    " or on gunicorn's command line"
)


@dataclass(frozen=True)
class SettingsFile:
    """The settings file read: where, and the line of each name it set."""

    path: str
    lines: dict[str, int] = field(default_factory=dict)
    # Lines that are not NAME=value: (number, the word they start with). Refused by
    # check_names(), which knows by then whether that word is a setting's name or
    # may be the secret itself.
    malformed: list[tuple[int, str]] = field(default_factory=list)

    def where(self, number: int) -> str:
        return f"the settings file {self.path!r}, line {number}"


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


def read_env_file(path: Path, *, required: bool) -> SettingsFile | None:
    """Load ``path`` into ``os.environ``, under what the real environment already sets.

    A missing file is fine unless the operator named it; a file that exists
    but cannot be read is a configuration error, never silently skipped. An
    empty variable of the environment counts as unset: the file's value applies.
    """
    try:
        # utf-8-sig: an editor's byte-order mark is not part of the first name.
        content = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        if required:
            raise ImproperlyConfigured(f"ACADEMY_ENV_FILE={str(path)!r} does not exist") from None
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ImproperlyConfigured(
            f"the settings file {str(path)!r} cannot be read: {reason}"
        ) from exc
    found = SettingsFile(str(path))
    for name, value in parse_env_file(found, content).items():
        if not os.environ.get(name, "").strip():
            os.environ[name] = value
    return found


def parse_env_file(found: SettingsFile, content: str) -> dict[str, str]:
    """``NAME=value`` lines (optionally ``export``-ed, the value optionally quoted)."""
    values: dict[str, str] = {}
    for number, line in enumerate(content.splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        match = LINE.fullmatch(text)
        if match is None:
            word = LEADING_NAME.match(text)
            found.malformed.append((number, word[1] if word else ""))
            continue
        name, value = match.groups()
        if name in found.lines:
            earlier = found.lines[name]
            raise ImproperlyConfigured(
                f"{found.where(number)}: {name} is already set on line {earlier}"
            )
        found.lines[name] = number
        values[name] = _unquote(value)
    return values


def _unquote(value: str) -> str:
    """As django-environ read them: single quotes literal; double quotes unescape all
    but ``\\n``, ``\\r`` and ``\\t``, which stay a backslash and the letter."""
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", lambda m: "\\" + m[1] if m[1] in "nrt" else m[1], value[1:-1])
    return value


def check_names(found: SettingsFile | None) -> None:
    """After every setting is read: refuse the names that nothing reads.

    In the settings file any such name; in the environment those of this product's
    own ``SYNC_`` namespace (a misspelled one would silently keep its default).
    A settings module that extends ``config.settings`` and reads names of its own
    reads them with this module and calls this last itself.
    """
    in_file = found.lines if found else {}
    if found and found.malformed:
        number, word = found.malformed[0]
        # The word the line starts with only when it is a name: the rest may be a secret.
        known = word in READ or word in READ_BEFORE or PASSED_THROUGH.fullmatch(word)
        shown = f"starts with {word!r} and then not '='" if known else "is not shown"
        raise ImproperlyConfigured(
            f"{found.where(number)}: expected NAME=value with nothing around the '='"
            f" (the line {shown})"
        )
    for name in sorted(os.environ):
        if name.startswith("SYNC_") and name not in READ and name not in in_file:
            raise ImproperlyConfigured(f"{name} (in the environment) is not a setting{_hint(name)}")
    for name, number in in_file.items():
        where = found.where(number)
        if name in READ_BEFORE:
            raise ImproperlyConfigured(f"{where}: {name} does nothing here: {READ_BEFORE[name]}")
        if name in READ or PASSED_THROUGH.fullmatch(name):
            continue
        if name.startswith("GUNICORN_"):
            raise ImproperlyConfigured(f"{where}: {name} does nothing here: {GUNICORN_NAMES}")
        raise ImproperlyConfigured(f"{where}: {name} is not a setting{_hint(name)}")


def _hint(name: str) -> str:
    by_upper = {known.upper(): known for known in READ}
    close = difflib.get_close_matches(name.upper(), sorted(by_upper), n=1, cutoff=0.6)
    return f" (did you mean {by_upper[close[0]]}?)" if close else ""


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


def language(name: str, default: str, languages: list[tuple[str, str]]) -> str:
    """A language tag whose primary language is one of ``languages`` ("hu", "en-us")."""
    raw = _raw(name)
    if raw is None:
        return default
    value = raw.strip().lower().replace("_", "-")
    offered = [code for code, _name in languages]
    if value.split("-")[0] not in offered:
        raise _refuse(name, raw, f"is not a language this product offers ({', '.join(offered)})")
    return value


def overrides(declared) -> dict:
    """The settings of ``declared`` (an app's ``conf.app_settings``) that the environment
    sets, read by their type, within their bounds; the unset ones keep the app's default."""
    found = {}
    for setting in declared:
        name, default, kind = setting.name, setting.default, setting.kind
        if _raw(name) is None:
            continue
        if kind is bool:
            value = boolean(name, default)
        elif kind is int:
            value = integer(name, default, minimum=setting.minimum, maximum=setting.maximum)
        elif kind is float:
            value = number(name, default, minimum=setting.minimum, maximum=setting.maximum)
        else:
            value = string(name, default)
            if setting.pattern and not re.fullmatch(setting.pattern, value):
                raise _refuse(name, value, f"is not {setting.pattern_says}")
        found[name] = value
    return found


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
