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
from dataclasses import dataclass

from django.db import connections, models
from django.utils.translation import gettext_lazy as _

from specializations.models import SpecializationProgress

from .models import UserLicense
from .planner import merge_join_scope


class Kind(models.TextChoices):
    """A pair's kind: the value in SQL, JSON and code, the label for people."""

    OK = "ok", _("in sync")
    LEVEL_MISMATCH = "level_mismatch", _("level mismatch")
    MISSING_LICENSE = "missing_license", _("missing licence")
    MISSING_PROGRESS = "missing_progress", _("missing progress")


OK = Kind.OK
LEVEL_MISMATCH = Kind.LEVEL_MISMATCH
MISSING_LICENSE = Kind.MISSING_LICENSE
MISSING_PROGRESS = Kind.MISSING_PROGRESS
VIOLATION_KINDS = (LEVEL_MISMATCH, MISSING_LICENSE, MISSING_PROGRESS)
KINDS = (OK, *VIOLATION_KINDS)
# For a field that holds violations only (DesyncCase.kind).
VIOLATION_CHOICES = [(kind.value, kind.label) for kind in VIOLATION_KINDS]

# The classification, once: which rows a pair of each kind has. "both": a
# progress row and a licence row whose levels compare with the operator; a side
# name: only that side's row exists.
_SHAPES = {
    OK: ("both", "="),
    LEVEL_MISMATCH: ("both", "<>"),
    MISSING_LICENSE: ("progress", None),
    MISSING_PROGRESS: ("license", None),
}


def _condition(kind: str) -> str:
    side, operator = _SHAPES[kind]
    if side == "both":
        return f"progress_level {operator} license_level"
    return "license_level IS NULL" if side == "progress" else "progress_level IS NULL"


# The same, as conditions over the relation of pairs built below (one row per
# pair; a side's level is NULL when its row is missing, and ``current_level`` is
# NOT NULL in both tables). They are mutually exclusive: a comparison with NULL
# is never true.
_CONDITIONS = {
    kind: _condition(kind) for kind in (MISSING_LICENSE, MISSING_PROGRESS, LEVEL_MISMATCH)
}
_VIOLATION = " OR ".join(f"({condition})" for condition in _CONDITIONS.values())
_KIND_CASE = (
    "CASE "
    + " ".join(f"WHEN {condition} THEN '{kind}'" for kind, condition in _CONDITIONS.items())
    + f" ELSE '{OK}' END"
)


@dataclass(frozen=True, slots=True)
class PairState:
    """One checked pair and its kind (a violation is a PairState whose kind is not "ok")."""

    user_id: int
    specialization_id: str
    progress_level: int | None
    license_level: int | None
    kind: str

    def as_dict(self) -> dict:
        # Not dataclasses.asdict: it deep-copies field by field, a cost per row of the
        # sample (BENCHMARKS.md, "Figures moved from code comments").
        return {
            "user_id": self.user_id,
            "specialization_id": self.specialization_id,
            "progress_level": self.progress_level,
            "license_level": self.license_level,
            "kind": self.kind,
        }


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


_PROGRESS = SpecializationProgress._meta.db_table
_LICENSE = UserLicense._meta.db_table


def _filters(
    alias: str, user_column: str, *, specialization, user_ids, after, users=None
) -> tuple[list, list]:
    """WHERE terms restricting one side, written so its (user, specialization) index applies.

    ``users`` is a half-open range of user ids, ``(first, end)``.
    """
    where, params = [], []
    if after is not None:
        where.append(f"{alias}.{user_column} >= %s")
        params.append(after[0])
    if users is not None:
        where.append(f"{alias}.{user_column} >= %s AND {alias}.{user_column} < %s")
        params.extend(users)
    if specialization is not None:
        where.append(f"{alias}.specialization_id = %s")
        params.append(specialization)
    if user_ids is not None:
        where.append(f"{alias}.{user_column} IN ({', '.join(['%s'] * len(user_ids))})")
        params.extend(user_ids)
    return where, params


def _where(terms: list[str]) -> str:
    return f" WHERE {' AND '.join(terms)}" if terms else ""


def _pairs_sql(using: str, *, tables=None, **filters) -> tuple[str, list]:
    """One row per checked pair: user_id, specialization_id, progress_level, license_level.

    ``tables`` names two other tables with the same key and level columns
    (progress, licence), for data not yet in the product's: an import's staging.

    PostgreSQL: a full outer join of the two tables (a merge join over the
    covering indexes in ``merge_join_scope``). SQLite plans a full join of two
    filtered sides as nested scans without indexes, so there it is the
    equivalent union: progress LEFT JOIN licence, plus licences without progress.
    """
    progress_table, license_table = tables or (_PROGRESS, _LICENSE)
    p_where, p_params = _filters("p", "student_id", **filters)
    l_where, l_params = _filters("l", "user_id", **filters)
    on = "l.user_id = p.student_id AND l.specialization_id = p.specialization_id"
    if connections[using].vendor == "sqlite":
        sql = (
            "SELECT p.student_id AS user_id, p.specialization_id AS specialization_id,"
            " p.current_level AS progress_level, l.current_level AS license_level"
            f" FROM {progress_table} p LEFT JOIN {license_table} l ON {on}{_where(p_where)}"
            " UNION ALL"
            " SELECT l.user_id, l.specialization_id, NULL, l.current_level"
            f" FROM {license_table} l"
            + _where([*l_where, f"NOT EXISTS (SELECT 1 FROM {progress_table} p WHERE {on})"])
        )
        return sql, p_params + l_params
    progress = f"(SELECT * FROM {progress_table} p{_where(p_where)})" if p_where else progress_table
    license = f"(SELECT * FROM {license_table} l{_where(l_where)})" if l_where else license_table
    sql = (
        "SELECT COALESCE(p.student_id, l.user_id) AS user_id,"
        " COALESCE(p.specialization_id, l.specialization_id) AS specialization_id,"
        " p.current_level AS progress_level, l.current_level AS license_level"
        f" FROM {progress} p FULL OUTER JOIN {license} l ON {on}"
    )
    return sql, p_params + l_params


_SELECT_PAIR = (
    f"SELECT user_id, specialization_id, progress_level, license_level, {_KIND_CASE} AS kind"
)


def counts_sql(
    *, specialization=None, sample_size=0, tables=None, using="default"
) -> tuple[str, list]:
    """One aggregate query: the number of pairs and of each violation kind.

    With ``sample_size`` (PostgreSQL only) a last column holds the first
    ``sample_size`` violations the scan met, as rows of text, so one pass over
    the pairs both counts and samples. The server holds the violations (not the
    pairs) until the query ends; the client receives the capped slice.
    """
    pairs, params = _pairs_sql(
        using, tables=tables, specialization=specialization, user_ids=None, after=None
    )
    columns = ["COUNT(*)"]
    columns += [f"COUNT(*) FILTER (WHERE {condition})" for condition in _CONDITIONS.values()]
    if sample_size:
        row = (
            "ARRAY[user_id::text, specialization_id, progress_level::text,"
            f" license_level::text, {_KIND_CASE}]"
        )
        columns.append(f"(array_agg({row}) FILTER (WHERE {_VIOLATION}))[1:%s]")
        params = [sample_size, *params]  # its placeholder comes before the relation's
    return f"SELECT {', '.join(columns)} FROM ({pairs}) pairs", params


def violations_sql(
    *,
    specialization=None,
    after=None,
    users=None,
    user_ids=None,
    kinds=VIOLATION_KINDS,
    limit=None,
    ordered=True,
    using="default",
) -> tuple[str, list]:
    """Violations (of ``kinds``), in (user, specialization) order unless ``ordered`` is False.

    ``after`` continues from a (user, specialization) key (keyset pagination);
    ``users`` keeps a half-open range of user ids and ``user_ids`` a list of
    them, both read from the two indexes only there. Unordered, a LIMIT lets the
    database stop at the first ``limit`` violations instead of finding them all
    and sorting.
    """
    pairs, params = _pairs_sql(
        using, specialization=specialization, user_ids=user_ids, after=after, users=users
    )
    wanted = _VIOLATION if tuple(kinds) == VIOLATION_KINDS else _violation_of(kinds)
    sql = f"{_SELECT_PAIR} FROM ({pairs}) pairs WHERE ({wanted})"
    if after is not None:
        sql += " AND (user_id > %s OR (user_id = %s AND specialization_id > %s))"
        params.extend([after[0], after[0], after[1]])
    if ordered:
        sql += " ORDER BY user_id, specialization_id"
    if limit is not None:
        sql += " LIMIT %s"
        params.append(limit)
    return sql, params


def _violation_of(kinds) -> str:
    unknown = set(kinds) - set(VIOLATION_KINDS)
    if unknown or not kinds:
        expected = tuple(kind.value for kind in VIOLATION_KINDS)
        raise ValueError(f"kinds={list(kinds)!r}: expected violation kinds {expected}")
    return " OR ".join(f"({_CONDITIONS[kind]})" for kind in kinds)


def row_kind_condition(model, kind: str, *, after_user=None, using="default") -> tuple[str, list]:
    """SQL condition on a row of ``model`` (progress or licence): its pair is of ``kind``.

    For the admin lists of one side. Written as (NOT) EXISTS on the other
    table's key, which PostgreSQL reads as a merge (anti-)join in key order;
    ``after_user`` restricts the other table too, for a page that starts there.
    Raises ValueError for a kind this side cannot have (a progress row is never
    ``missing_progress``).
    """
    side, operator = _SHAPES[kind]
    row = connections[using].ops.quote_name(model._meta.db_table)
    if model is SpecializationProgress:
        this, user, other, other_user = "progress", "student_id", _LICENSE, "user_id"
        levels = f"{row}.current_level {operator} o.current_level"
    else:
        this, user, other, other_user = "license", "user_id", _PROGRESS, "student_id"
        levels = f"o.current_level {operator} {row}.current_level"
    if side not in ("both", this):
        raise ValueError(f"kind={kind!r}: a {this} row's pair cannot be {kind}")
    where = [f"o.{other_user} = {row}.{user}", f"o.specialization_id = {row}.specialization_id"]
    params = []
    if after_user is not None:
        where.append(f"o.{other_user} >= %s")
        params.append(after_user)
    if side == "both":
        where.append(levels)
    exists = f"EXISTS (SELECT 1 FROM {other} o WHERE {' AND '.join(where)})"
    return (exists if side == "both" else f"NOT {exists}"), params


def count_pairs(*, specialization=None, tables=None, using="default") -> Counts:
    """``tables``: see ``_pairs_sql`` (an import counts its staged pairs with this definition)."""
    if tables is None:
        return check_pairs(specialization=specialization, using=using)[0]
    sql, params = counts_sql(specialization=specialization, tables=tables, using=using)
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        total, *per_kind = cursor.fetchone()
    return Counts(total=total, by_kind=dict(zip(_CONDITIONS, per_kind, strict=True)))


def check_pairs(
    *, specialization=None, sample_size=0, using="default"
) -> tuple[Counts, list[PairState]]:
    """Counts by kind and up to ``sample_size`` violations, sorted by (user, specialization).

    PostgreSQL: one query (see ``counts_sql``). Elsewhere: the count, then, only
    when something is out of sync, a LIMIT query that stops at the sample size.
    """
    one_pass = bool(sample_size) and connections[using].vendor == "postgresql"
    sql, params = counts_sql(
        specialization=specialization, sample_size=sample_size if one_pass else 0, using=using
    )
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        total, *per_kind = cursor.fetchone()
    if one_pass:
        *per_kind, rows = per_kind
        sample = [
            PairState(int(u), spec, _int(p), _int(lic), kind)
            for u, spec, p, lic, kind in rows or ()
        ]
    counts = Counts(total=total, by_kind=dict(zip(_CONDITIONS, per_kind, strict=True)))
    if not one_pass:
        sample = []
        if sample_size and counts.inconsistent:
            sample = violations(specialization=specialization, limit=sample_size, using=using)
    return counts, sorted(sample, key=lambda v: (v.user_id, v.specialization_id))


def _int(value: str | None) -> int | None:
    return None if value is None else int(value)


def violations(*, specialization=None, limit=None, using="default") -> list[PairState]:
    """Up to ``limit`` violations (the first the scan meets), sorted by (user, specialization)."""
    sql, params = violations_sql(
        specialization=specialization, limit=limit, ordered=False, using=using
    )
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        found = [PairState(*row) for row in cursor.fetchall()]
    return sorted(found, key=lambda v: (v.user_id, v.specialization_id))


def stream_violations(
    *, specialization=None, using="default", chunk_size=2000
) -> Iterator[PairState]:
    """Every violation, in (user, specialization) order, one range of user ids at a time.

    Each range is its own short query that reads both covering indexes over
    that range only, so memory stays at one page and callers may commit between
    pages (repair does). (A page ordered and limited over the whole join had to
    read every pair after its start to find its first rows: quadratic in the
    number of pairs.) Ranges adapt to hold about ``chunk_size`` violations; a
    range holds at most its users times the specializations in pairs.
    """
    top, first, width = _last_user(using), 0, chunk_size
    while top is not None and first <= top:
        sql, params = violations_sql(
            specialization=specialization, users=(first, first + width), using=using
        )
        with merge_join_scope(using), connections[using].cursor() as cursor:
            cursor.execute(sql, params)
            page = [PairState(*row) for row in cursor.fetchall()]
        yield from page
        first += width
        # Aim the next range at chunk_size violations: four times wider at most,
        # never wider than ten chunks of users.
        width = max(1, min(width * 4, chunk_size * 10, width * chunk_size // max(len(page), 1)))
        if first > top:
            top = _last_user(using)  # students enrolled since the stream began


def user_bounds(*, using="default") -> tuple[int, int] | None:
    """The lowest and highest user id with a progress or licence row (the ends of each index)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"SELECT MIN(student_id), MAX(student_id) FROM {_PROGRESS}"
            f" UNION ALL SELECT MIN(user_id), MAX(user_id) FROM {_LICENSE}"
        )
        ends = [row for row in cursor.fetchall() if row[0] is not None]
    if not ends:
        return None
    return min(low for low, _ in ends), max(high for _, high in ends)


def _last_user(using: str) -> int | None:
    """The highest user id with a progress or licence row (the end of each index)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"SELECT MAX(student_id) FROM {_PROGRESS} UNION ALL SELECT MAX(user_id) FROM {_LICENSE}"
        )
        found = [value for (value,) in cursor.fetchall() if value is not None]
    return max(found, default=None)


def classify(
    pairs: Iterable[tuple[int, str]], *, using="default"
) -> dict[tuple[int, str], PairState]:
    """The state of the given pairs (absent pairs are left out), in one query."""
    wanted = set(pairs)
    if not wanted:
        return {}
    user_ids = sorted({user_id for user_id, _ in wanted})
    pairs_sql, params = _pairs_sql(using, specialization=None, user_ids=user_ids, after=None)
    with connections[using].cursor() as cursor:
        cursor.execute(f"{_SELECT_PAIR} FROM ({pairs_sql}) pairs", params)
        found = (PairState(*row) for row in cursor.fetchall())
        return {
            (pair.user_id, pair.specialization_id): pair
            for pair in found
            if (pair.user_id, pair.specialization_id) in wanted
        }
