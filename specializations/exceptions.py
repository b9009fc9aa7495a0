"""Errors of the progression domain. Every message names the field and the value.

The messages are module constants so tests (and callers) can rely on them; they are
translated (staff read them in the admin) when formatted, in the active language.
"""

from django.utils.translation import gettext_lazy as _

UNKNOWN_SPECIALIZATION = _(
    "specialization={value!r} is not a known specialization (expected one of {choices})"
)
INACTIVE_SPECIALIZATION = _(
    "specialization={value!r} is inactive: no progress can be recorded in it"
)
LEVEL_OUT_OF_RANGE = _(
    "{field}={value!r} is out of range for {specialization} (expected 1..{max_level})"
)
NEGATIVE_AMOUNT = _("{field}={value!r} must not be negative")
NEGATIVE_TOTAL = _("{field}={value!r} would make the total negative ({total})")
INVALID_AMOUNT = _("{field}={value!r} must be a whole number")
AMOUNT_OUT_OF_RANGE = _("{field}={value!r} is out of range (at most {limit} either way)")
UNKNOWN_USER = _("{field}={value!r} is not a saved user")
REASON_TOO_LONG = _("reason={value!r} is longer than {max_length} characters")
REASON_CONTROL_CHARACTER = _(
    "reason={value!r} contains the control character {character} at position {position}"
)
NOT_ENROLLED = _("{field}={value!r} has no {row} row in {specialization}")
IDEMPOTENCY_CONFLICT = _(
    "idempotency_key={key!r} of source={source!r} was already used for other amounts "
    "or another student ({first}); send a new key for a new change"
)
INVALID_LEDGER_VALUE = _("{field}={value!r} {why}")
UNKNOWN_EXTERNAL_ID = _("external_id={value!r} is not known for source={source!r}")
BAD_STUDENT_REFERENCE = _("{field}={value!r} {why}")
EXTERNAL_ID_TAKEN = _(
    "external_id={value!r} of source={source!r} already names user {other}, not user {user}"
)


class ProgressionError(Exception):
    """Base class: bad input or a state that a progression service refuses to act on."""


class UnknownSpecialization(ProgressionError, LookupError):
    def __init__(self, value, choices):
        super().__init__(
            UNKNOWN_SPECIALIZATION.format(value=value, choices=", ".join(sorted(choices)))
        )
        self.value = value


class InactiveSpecialization(ProgressionError):
    def __init__(self, value):
        super().__init__(INACTIVE_SPECIALIZATION.format(value=value))
        self.value = value


class LevelOutOfRange(ProgressionError, ValueError):
    def __init__(self, value, *, specialization, max_level, field="new_level"):
        super().__init__(
            LEVEL_OUT_OF_RANGE.format(
                field=field, value=value, specialization=specialization, max_level=max_level
            )
        )
        self.field, self.value = field, value


class InvalidAmount(ProgressionError, ValueError):
    def __init__(self, field, value, message=INVALID_AMOUNT, **extra):
        super().__init__(message.format(field=field, value=value, **extra))
        self.field, self.value = field, value


class NegativeAmount(InvalidAmount):
    def __init__(self, field, value, *, total=None):
        if total is None:
            super().__init__(field, value, NEGATIVE_AMOUNT)
        else:
            super().__init__(field, value, NEGATIVE_TOTAL, total=total)


class UnknownUser(ProgressionError, LookupError):
    def __init__(self, value, field="student"):
        super().__init__(UNKNOWN_USER.format(field=field, value=value))
        self.field, self.value = field, value


class NotEnrolled(ProgressionError, LookupError):
    """The row a directional sync starts from does not exist (never read as None)."""

    def __init__(self, user, *, specialization, row, field="student"):
        super().__init__(
            NOT_ENROLLED.format(field=field, value=user, row=row, specialization=specialization)
        )
        self.field, self.value = field, user


class InvalidReason(ProgressionError, ValueError):
    def __init__(self, value, *, max_length: int):
        shown = value if len(value) <= 40 else value[:40] + "..."
        super().__init__(REASON_TOO_LONG.format(value=shown, max_length=max_length))
        self.field, self.value = "reason", value


class ReasonHasControlCharacter(ProgressionError, ValueError):
    """NUL, escape and the other control characters never reach the audit history.

    (Tabs and line breaks are not refused: ``require_reason`` folds them into spaces.)
    """

    def __init__(self, value, *, position: int):
        shown = value if len(value) <= 40 else value[:40] + "..."
        character = f"U+{ord(value[position]):04X}"
        super().__init__(
            REASON_CONTROL_CHARACTER.format(value=shown, character=character, position=position)
        )
        self.field, self.value = "reason", value


class IdempotencyConflict(ProgressionError):
    """The (source, key) of an earlier event, sent again with other amounts or for another row.

    ``event`` is the first event, which stands; nothing was written.
    """

    def __init__(self, *, source, key, event):
        first = (
            f"first: user {event.progress.student_id} {event.progress.specialization_id}, "
            + ", ".join(f"{name}={value}" for name, value in event.amounts().items())
        )
        super().__init__(IDEMPOTENCY_CONFLICT.format(source=source, key=key, first=first))
        self.source, self.key, self.event = source, key, event
        self.field, self.value = "idempotency_key", key


class InvalidLedgerValue(ProgressionError, ValueError):
    """A ledger field (source, idempotency_key, occurred_at, ...) that cannot be recorded."""

    def __init__(self, field, value, why):
        shown = value if not isinstance(value, str) or len(value) <= 60 else value[:60] + "..."
        super().__init__(INVALID_LEDGER_VALUE.format(field=field, value=shown, why=why))
        self.field, self.value = field, value


class UnknownExternalId(ProgressionError, LookupError):
    def __init__(self, value, *, source):
        super().__init__(UNKNOWN_EXTERNAL_ID.format(value=value, source=source))
        self.field, self.value, self.source = "external_id", value, source


class BadStudentReference(ProgressionError, ValueError):
    """A student named neither by a user id nor by (source, external_id), or by both."""

    def __init__(self, field, value, why):
        super().__init__(BAD_STUDENT_REFERENCE.format(field=field, value=value, why=why))
        self.field, self.value = field, value


class ExternalIdTaken(ProgressionError):
    def __init__(self, value, *, source, user, other):
        super().__init__(
            EXTERNAL_ID_TAKEN.format(value=value, source=source, user=user, other=other)
        )
        self.field, self.value, self.source = "external_id", value, source


# A catalogue file refused (manage.py load_catalogue): one line naming the file, the
# level when there is one, and the field.
CATALOGUE_PLACE = "{path}: level {level}"
NOT_READABLE = "cannot be read: {error}"
NOT_JSON = "is not JSON: {error}"
NOT_AN_OBJECT = "{field}: expected a JSON object, found {found}"
MISSING_FIELD = "{field}: missing"
NOT_A_CODE = "{field}={value!r} is not a specialization code (expected {expected})"
NOT_TEXT = "{field}={value!r} must be text of at most {max_length} characters"
EMPTY_TEXT = "{field}: must not be empty"
NOT_A_WHOLE_NUMBER = "{field}={value!r} must be a whole number from {minimum} to {maximum}"
NOT_A_BOOLEAN = "{field}={value!r} must be true or false"
NO_LEVELS = "levels: expected a non-empty list of levels, found {found}"
DUPLICATE_LEVEL = "level: the number {value} appears more than once"
MISSING_LEVEL = "levels: level {number} is missing (expected levels 1 to {top}, found {found})"
XP_FALLS = (
    "xp_required={value!r} is below level {previous}'s {previous_value!r} "
    "(required XP must not fall as the level rises)"
)
DUPLICATE_CODE = "id={value!r} is also the id of {other}"
NO_FILES = "no *.json file in this directory"
LEVELS_HELD = (
    "levels: cannot remove level {number} and above: {students} students' progress is there "
    "(the file has {top} levels, the catalogue {max_level})"
)


class CatalogueError(ProgressionError, ValueError):
    """A catalogue file that cannot be loaded; nothing of the load is written."""

    def __init__(self, path, message: str, *, level=None, field=None, value=None):
        where = str(path) if level is None else CATALOGUE_PLACE.format(path=path, level=level)
        super().__init__(f"{where}: {message}")
        self.path, self.level, self.field, self.value = str(path), level, field, value
