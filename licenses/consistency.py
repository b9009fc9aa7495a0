"""The one definition of a desync, as SQL.

A (user, specialization) pair is *checked* when it has a progress row, a
licence row or both. Its kind is:

- ``missing_license``   a progress row and no licence row,
- ``missing_progress``  a licence row and no progress row,
- ``level_mismatch``    both rows, different ``current_level``,
- ``ok``                both rows, same level.

Everything that asks "is this in sync?" (``validate_consistency``, the health
check, ``check_sync``, the admin, repair's re-check under lock) uses the SQL
built here: a full outer join of the two tables on (user, specialization).
It reads only the columns of the covering indexes, so PostgreSQL can answer
it with index-only scans.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connections, transaction

from specializations.models import SpecializationProgress

from .models import UserLicense

OK = "ok"
LEVEL_MISMATCH = "level_mismatch"
MISSING_LICENSE = "missing_license"
MISSING_PROGRESS = "missing_progress"
VIOLATION_KINDS = (LEVEL_MISMATCH, MISSING_LICENSE, MISSING_PROGRESS)
KINDS = (OK, *VIOLATION_KINDS)

# The classification, once. ``p`` is the progress side, ``l`` the licence side;
# the conditions are mutually exclusive (a comparison with NULL is never true).
_CONDITIONS = {
    MISSING_LICENSE: "l.user_id IS NULL",
    MISSING_PROGRESS: "p.student_id IS NULL",
    LEVEL_MISMATCH: "p.current_level <> l.current_level",
}
_VIOLATION = " OR ".join(f"({condition})" for condition in _CONDITIONS.values())
_KIND_CASE = (
    "CASE "
    + " ".join(f"WHEN {condition} THEN '{kind}'" for kind, condition in _CONDITIONS.items())
    + f" ELSE '{OK}' END"
)


@dataclass(frozen=True, slots=True)
class PairState:
    user_id: int
    specialization_id: str
    progress_level: int | None
    license_level: int | None
    kind: str


Violation = PairState  # a PairState whose kind is not "ok"


@dataclass(frozen=True, slots=True)
class Counts:
    total: int
    by_kind: dict[str, int]  # every violation kind, zero included

    @property
    def inconsistent(self) -> int:
        return sum(self.by_kind.values())

    @property
    def consistent(self) -> int:
        return self.total - self.inconsistent


def _side(table: str, user_column: str, *, specialization, user_ids, after) -> tuple[str, list]:
    where, params = [], []
    if after is not None:
        where.append(f"{user_column} >= %s")
        params.append(after[0])
    if specialization is not None:
        where.append("specialization_id = %s")
        params.append(specialization)
    if user_ids is not None:
        where.append(f"{user_column} IN ({', '.join(['%s'] * len(user_ids))})")
        params.extend(user_ids)
    sql = f"SELECT {user_column}, specialization_id, current_level FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql, params


def _pairs_from(*, specialization=None, user_ids=None, after=None) -> tuple[str, list]:
    """FROM clause joining both sides; filters go inside each side so indexes apply."""
    progress_sql, progress_params = _side(
        SpecializationProgress._meta.db_table,
        "student_id",
        specialization=specialization,
        user_ids=user_ids,
        after=after,
    )
    license_sql, license_params = _side(
        UserLicense._meta.db_table,
        "user_id",
        specialization=specialization,
        user_ids=user_ids,
        after=after,
    )
    sql = (
        f"FROM ({progress_sql}) p FULL OUTER JOIN ({license_sql}) l"
        " ON l.user_id = p.student_id AND l.specialization_id = p.specialization_id"
    )
    return sql, progress_params + license_params


_SELECT_PAIR = (
    "SELECT COALESCE(p.student_id, l.user_id) AS user_id,"
    " COALESCE(p.specialization_id, l.specialization_id) AS specialization_id,"
    f" p.current_level, l.current_level, {_KIND_CASE} AS kind "
)


def counts_sql(*, specialization=None) -> tuple[str, list]:
    """One aggregate query: the number of pairs and of each violation kind."""
    from_sql, params = _pairs_from(specialization=specialization)
    filters = ", ".join(
        f"COUNT(*) FILTER (WHERE {condition})" for condition in _CONDITIONS.values()
    )
    return f"SELECT COUNT(*), {filters} {from_sql}", params


def violations_sql(
    *, specialization=None, after=None, limit=None, ordered=True
) -> tuple[str, list]:
    """Violations, in (user, specialization) order unless ``ordered`` is False.

    ``after`` continues from a (user, specialization) key (keyset pagination).
    Unordered, a LIMIT lets the database stop at the first ``limit`` violations
    instead of finding them all and sorting.
    """
    from_sql, params = _pairs_from(specialization=specialization, after=after)
    sql = f"{_SELECT_PAIR}{from_sql} WHERE ({_VIOLATION})"
    if after is not None:
        user, spec = (
            "COALESCE(p.student_id, l.user_id)",
            "COALESCE(p.specialization_id, l.specialization_id)",
        )
        sql += f" AND ({user} > %s OR ({user} = %s AND {spec} > %s))"
        params.extend([after[0], after[0], after[1]])
    if ordered:
        sql += " ORDER BY 1, 2"
    if limit is not None:
        sql += " LIMIT %s"
        params.append(limit)
    return sql, params


def count_pairs(*, specialization=None, using="default") -> Counts:
    sql, params = counts_sql(specialization=specialization)
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        total, *per_kind = cursor.fetchone()
    return Counts(total=total, by_kind=dict(zip(_CONDITIONS, per_kind, strict=True)))


def violations(*, specialization=None, limit=None, using="default") -> list[Violation]:
    """Up to ``limit`` violations (the first the scan meets), sorted by (user, specialization)."""
    sql, params = violations_sql(specialization=specialization, limit=limit, ordered=False)
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        found = [Violation(*row) for row in cursor.fetchall()]
    return sorted(found, key=lambda v: (v.user_id, v.specialization_id))


def stream_violations(
    *, specialization=None, using="default", chunk_size=2000
) -> Iterator[Violation]:
    """Every violation, in (user, specialization) order, one keyset page at a time.

    Each page is its own short query starting where the last one stopped, so
    memory stays at one page and callers may commit between pages (repair does).
    """
    after = None
    while True:
        sql, params = violations_sql(specialization=specialization, after=after, limit=chunk_size)
        with connections[using].cursor() as cursor:
            cursor.execute(sql, params)
            page = [Violation(*row) for row in cursor.fetchall()]
        yield from page
        if len(page) < chunk_size:
            return
        after = (page[-1].user_id, page[-1].specialization_id)


def classify(
    pairs: Iterable[tuple[int, str]], *, using="default"
) -> dict[tuple[int, str], PairState]:
    """The state of the given pairs (absent pairs are left out), in one query."""
    wanted = set(pairs)
    if not wanted:
        return {}
    from_sql, params = _pairs_from(user_ids=sorted({user_id for user_id, _ in wanted}))
    with connections[using].cursor() as cursor:
        cursor.execute(f"{_SELECT_PAIR}{from_sql}", params)
        found = (PairState(*row) for row in cursor.fetchall())
        return {
            (pair.user_id, pair.specialization_id): pair
            for pair in found
            if (pair.user_id, pair.specialization_id) in wanted
        }


# PostgreSQL answers the full join fastest as a merge over the two covering
# indexes: both tables read once, in (user, specialization) order, index-only.
# Left alone it picks a hash full join that reads and hashes a whole table first.
MERGE_JOIN_PLAN = {"enable_hashjoin": "off", "enable_sort": "off"}


def _set_config(cursor, values: dict[str, str]) -> None:
    calls = ", ".join("set_config(%s, %s, true)" for _ in values)
    cursor.execute(f"SELECT {calls}", [item for pair in values.items() for item in pair])


@contextmanager
def merge_join_scope(using: str = "default", *, extra: dict[str, str] | None = None):
    """A transaction on PostgreSQL in which the desync queries get the merge-join plan.

    The settings are transaction-local and, when the caller already had a
    transaction, put back on the way out so it never inherits them. Elsewhere
    this does nothing (SQLite's transactions here are BEGIN IMMEDIATE, which
    would block writers for the length of a read).
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    values = {**MERGE_JOIN_PLAN, **(extra or {})}
    nested = connection.in_atomic_block
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if nested:
            names = list(values)
            cursor.execute("SELECT " + ", ".join("current_setting(%s)" for _ in names), names)
            previous = dict(zip(names, cursor.fetchone(), strict=True))
        _set_config(cursor, values)
        yield
        if nested:
            _set_config(cursor, previous)
