"""Errors of the doors in. Every message names what is wrong and where."""

from urllib.parse import urlsplit

SOURCE_UNREADABLE = "source={where}: {reason}"
UNKNOWN_SPECIALIZATIONS = (
    "specializations {codes} are in the source but not in the catalogue:"
    " load the catalogue first (manage.py load_catalogue)"
)
UNSUPPORTED_USER_MODEL = (
    "the user model {model} cannot take the import: its field {field} {reason}; nothing was written"
)
ALREADY_RUNNING = (
    "another import_source is writing to this database ({holder}): run this one when it"
    " has finished; nothing was written"
)
INVALID_ROWS = (
    "{count} source rows are invalid; nothing was written (--skip-invalid imports the rest)"
)


class ImportRefused(Exception):
    """Base class of the import errors."""


class SourceUnreadable(ImportRefused):
    def __init__(self, url: str, reason: str):
        super().__init__(
            SOURCE_UNREADABLE.format(where=_without_password(url), reason=reason.strip())
        )


class UnknownSpecializations(ImportRefused):
    def __init__(self, codes):
        self.codes = sorted(codes)
        super().__init__(UNKNOWN_SPECIALIZATIONS.format(codes=", ".join(self.codes)))


class UnsupportedUserModel(ImportRefused):
    def __init__(self, model: str, field: str, reason: str):
        self.field = field
        super().__init__(UNSUPPORTED_USER_MODEL.format(model=model, field=field, reason=reason))


class ImportAlreadyRunning(ImportRefused):
    def __init__(self, holder: str):
        super().__init__(ALREADY_RUNNING.format(holder=holder))


class InvalidSourceRows(ImportRefused):
    def __init__(self, problems):
        self.problems = problems
        super().__init__(INVALID_ROWS.format(count=len(problems)))


def _without_password(url: str) -> str:
    """The URL as it may be printed: never its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
