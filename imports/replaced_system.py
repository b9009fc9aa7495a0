"""The replaced system's rows as this product's: one transform per source table.

Each transform turns one source row (imports/source.py QUERIES) into a staging
row, or reports a problem naming the table, the row id and the field. Only
row-local checks live here; checks across rows and against the product's
database are SQL over the staging tables (imports/source_import.py).
"""

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from specializations.catalogue import SpecializationInfo
from specializations.exceptions import ProgressionError
from specializations.models import CODE_FORMAT, CODE_PATTERN
from specializations.services import require_reason

SOURCE = "replaced-system"  # the external ids' source: the API's senders keep these ids
LEDGER_SOURCE = f"import:{SOURCE}"  # the ledger's source of the opening events
STAFF_ROLES = frozenset({"ADMIN", "SPORT_DIRECTOR", "INSTRUCTOR"})
HISTORY_REASON = "Imported from the replaced system"

USERS = "users"
PROGRESS = "specialization_progress"
LICENSES = "user_licenses"
HISTORY = "license_progressions"

# Filled before the checks (imports/source_writes.py map_existing): the product's row,
# whether it changed at the source since the last run; while writing: whether it is new.
_TARGET = [("target_id", "big"), ("changed", "bool"), ("is_new", "bool")]

# Staging tables, one per source table (columns named as the product's tables name them).
STAGING = {
    USERS: (
        "import_stage_users",
        [
            ("id", "id"),
            ("username", "text"),
            ("email", "text"),
            ("first_name", "text"),
            ("last_name", "text"),
            ("is_active", "bool"),
            ("is_staff", "bool"),
            ("date_joined", "time"),
            ("digest", "text"),
            *_TARGET,
        ],
    ),
    PROGRESS: (
        "import_stage_progress",
        [
            ("id", "id"),
            ("student_id", "big"),
            ("specialization_id", "text"),
            ("current_level", "int"),
            ("total_xp", "big"),
            ("completed_sessions", "int"),
            ("completed_projects", "int"),
            ("theory_hours_completed", "int"),
            ("practice_hours_completed", "int"),
            ("last_activity", "time"),
            ("created_at", "time"),
            ("digest", "text"),
            *_TARGET,
        ],
    ),
    LICENSES: (
        "import_stage_licenses",
        [
            ("id", "id"),
            ("user_id", "big"),
            ("specialization_id", "text"),
            ("current_level", "int"),
            ("max_achieved_level", "int"),
            ("started_at", "time"),
            ("last_advanced_at", "time"),
            ("is_active", "bool"),
            ("digest", "text"),
            *_TARGET,
        ],
    ),
    HISTORY: (
        "import_stage_history",
        [
            ("id", "id"),
            ("license_id", "big"),
            ("from_level", "int"),
            ("to_level", "int"),
            ("advanced_by", "big"),
            ("reason", "text"),
            ("created_at", "time"),
            ("digest", "text"),
            *_TARGET,
        ],
    ),
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One bad source row: ``table`` and ``row_id`` at the source, the field, what is wrong."""

    table: str
    row_id: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.table} id={self.row_id} {self.field}: {self.message}"


class Transform:
    """Source rows to staging rows for one import; collects problems and unknown codes.

    ``catalogue`` maps codes to the catalogue's entries; a code outside it is
    collected in ``unknown`` and its rows are left out of staging (a value that
    cannot be a code is a problem of its row). ``lengths``: the longest email and
    names the user model takes (imports/source_users.py); a name the model does
    not have is not checked.
    """

    def __init__(self, catalogue: dict[str, SpecializationInfo], lengths: dict[str, int]):
        self.catalogue = catalogue
        self.lengths = lengths
        self.unknown: set[str] = set()
        self.problems: list[Problem] = []

    def users(self, row) -> tuple | None:
        id_, name, first_name, last_name, email, role, is_active, created_at = row
        username = (email or "").strip()
        if first_name is None and last_name is None:
            first_name, _, last_name = (name or "").strip().partition(" ")
        fields = {"email": username, "first_name": first_name or "", "last_name": last_name or ""}
        bad = False
        if not username:
            bad = self._problem(USERS, id_, "email", "is empty")
        for field, value in fields.items():
            if len(value) > self.lengths.get(field, len(value)):
                limit = self.lengths[field]
                bad = self._problem(USERS, id_, field, f"is longer than {limit} characters")
        if bad:
            return None
        return (
            id_,
            username,
            username,
            fields["first_name"],
            fields["last_name"],
            True if is_active is None else is_active,  # the source's default
            role in STAFF_ROLES,
            _utc(created_at),
            digest(row),
        )

    def progress(self, row) -> tuple | None:
        id_, student_id, code, level, *totals, last_activity, created_at = row
        info = self._specialization(PROGRESS, id_, "specialization_id", code)
        if info is None:
            return None
        totals = [0 if value is None else value for value in totals]
        names = ("total_xp", "completed_sessions", "completed_projects")
        names += ("theory_hours_completed", "practice_hours_completed")
        bad = False
        for field, value in zip(names, totals, strict=True):
            if value < 0:
                bad = self._problem(PROGRESS, id_, field, f"{value} is negative")
        if level is None and not bad:
            xp, sessions, projects, theory, practice = totals
            level = info.level_for(
                current=1,
                xp=xp,
                sessions=sessions,
                projects=projects,
                theory=theory,
                practice=practice,
            )
        elif level is not None and not 1 <= level <= info.max_level:
            bad = self._level_problem(PROGRESS, id_, "current_level", level, info)
        if bad:
            return None
        return (
            id_,
            student_id,
            code,
            level,
            *totals,
            _utc(last_activity),
            _utc(created_at),
            digest(row),
        )

    def licenses(self, row) -> tuple | None:
        id_, user_id, code, level, max_level, started_at, last_advanced_at, is_active = row
        info = self._specialization(LICENSES, id_, "specialization_type", code)
        if info is None:
            return None
        bad = False
        for field, value in (("current_level", level), ("max_achieved_level", max_level)):
            if not 1 <= value <= info.max_level:
                bad = self._level_problem(LICENSES, id_, field, value, info)
        if bad:
            return None
        # The product keeps max_achieved_level >= current_level; the source does not.
        max_level = max(level, max_level)
        return (
            id_,
            user_id,
            code,
            level,
            max_level,
            _utc(started_at),
            _utc(last_advanced_at),
            is_active,
            digest(row),
        )

    def history(self, row) -> tuple | None:
        """Level ranges need the licence's specialization: checked in SQL after staging."""
        id_, license_id, from_level, to_level, advanced_by, reason, advanced_at = row
        try:
            reason = require_reason((reason or "")[:255]).strip() or HISTORY_REASON
        except ProgressionError as exc:
            self._problem(HISTORY, id_, "advancement_reason", str(exc))
            return None
        # The source writes 0 for "no level yet" (issued); the product leaves it empty.
        from_level = None if from_level == 0 else from_level
        return (
            id_,
            license_id,
            from_level,
            to_level,
            advanced_by,
            reason,
            _utc(advanced_at),
            digest(row),
        )

    def _specialization(self, table, row_id, field, code: str) -> SpecializationInfo | None:
        info = self.catalogue.get(code)
        if info is None:
            if re.search(CODE_PATTERN, code) is None:  # no catalogue can hold it
                self._problem(table, row_id, field, f"{code!r} is not a code ({CODE_FORMAT})")
            else:
                self.unknown.add(code)
        return info

    def _problem(self, table: str, row_id: int, field: str, message: str) -> bool:
        self.problems.append(Problem(table, row_id, field, message))
        return True

    def _level_problem(self, table, row_id, field, value, info) -> bool:
        return self._problem(
            table, row_id, field, f"level {value} is outside 1..{info.max_level} of {info.code}"
        )


def digest(row) -> str:
    """What a source row held, in 32 hex digits: a rerun sees which rows changed."""
    return hashlib.md5(repr(tuple(row)).encode(), usedforsecurity=False).hexdigest()


def _utc(value: datetime | None) -> datetime | None:
    """The source stores naive timestamps; they are read as UTC."""
    return None if value is None else value.replace(tzinfo=UTC)
