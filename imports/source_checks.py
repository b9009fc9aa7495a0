"""Checks of staged source rows that need other rows: SQL over the staging tables.

Row-local checks are in replaced_system.Transform. Here: history levels (they
depend on the licence's specialization), emails that collide with the product's
own users, and, for ``--skip-invalid``, the rows that depend on a left-out row.
"""

from django.contrib.auth import get_user_model
from django.db import connections

from specializations.models import ExternalId, Specialization

from .models import ImportedRow
from .replaced_system import HISTORY, LICENSES, PROGRESS, SOURCE, STAGING, USERS, Problem

_S = {table: name for table, (name, _) in STAGING.items()}
_MAPPED = ImportedRow._meta.db_table


def cross_row_problems(*, using: str = "default") -> list[Problem]:
    found = []
    with connections[using].cursor() as cursor:
        for sql, params, table, field, message in _checks():
            cursor.execute(sql, params)
            found += [
                Problem(table, row_id, field, message.format(*rest))
                for row_id, *rest in cursor.fetchall()
            ]
    return found


def _checks():
    specialization = Specialization._meta.db_table
    users = get_user_model()._meta.db_table
    history_levels = (
        f"SELECT h.id, h.{{field}}, s.max_level, s.code FROM {_S[HISTORY]} h"
        f" JOIN {_S[LICENSES]} l ON l.id = h.license_id"
        f" JOIN {specialization} s ON s.code = l.specialization_id"
        " WHERE h.{field} < {low} OR h.{field} > s.max_level ORDER BY h.id"
    )
    yield (
        history_levels.format(field="to_level", low=1),
        [],
        HISTORY,
        "to_level",
        "level {0} is outside 1..{1} of {2}",
    )
    yield (
        history_levels.format(field="from_level", low=0),
        [],
        HISTORY,
        "from_level",
        "level {0} is outside 1..{1} of {2}",
    )
    # An account of the product's own (not imported from this source) holds the name.
    # Two equality joins (a join on "a OR b" is a nested loop over both tables).
    not_ours = (
        f" WHERE NOT EXISTS (SELECT 1 FROM {_MAPPED} m WHERE m.source = %s"
        ' AND m."table" = %s AND m.source_id = s.id AND m.target_id = u.id)'
        f" AND NOT EXISTS (SELECT 1 FROM {ExternalId._meta.db_table} e WHERE e.source = %s"
        " AND e.external_id = CAST(s.id AS TEXT) AND e.user_id = u.id)"
    )
    yield (
        f"SELECT s.id, s.email, u.id FROM {_S[USERS]} s JOIN {users} u"
        f" ON u.username = s.username{not_ours}"
        f" UNION SELECT s.id, s.email, u.id FROM {_S[USERS]} s JOIN {users} u"
        f" ON UPPER(u.email) = UPPER(s.email){not_ours} ORDER BY 1, 3",
        [SOURCE, USERS, SOURCE] * 2,
        USERS,
        "email",
        "{0!r} collides with the product's user id={1}, which was not imported from " + SOURCE,
    )


# (table, its staging table's reference, the table it refers to, the referenced column)
_REFERENCES = (
    (PROGRESS, "student_id", USERS),
    (LICENSES, "user_id", USERS),
    (HISTORY, "license_id", LICENSES),
    (HISTORY, "advanced_by", USERS),
)


def leave_out(problems: list[Problem], *, using: str = "default") -> dict[str, int]:
    """Delete the problem rows from staging, then every row that refers to a deleted one.

    Returns the rows left out per source table (the problem rows and their dependants).
    """
    by_table: dict[str, set[int]] = {}
    for problem in problems:
        by_table.setdefault(problem.table, set()).add(problem.row_id)
    left_out = {table: 0 for table in STAGING}
    with connections[using].cursor() as cursor:
        for table, ids in by_table.items():
            ids = sorted(ids)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                cursor.execute(
                    f"DELETE FROM {_S[table]} WHERE id IN ({', '.join(['%s'] * len(chunk))})",
                    chunk,
                )
            left_out[table] += len(ids)  # staged or not (a row-local problem is never staged)
        for table, column, target in _REFERENCES:  # in dependency order: users first
            # (NOT IN is never true for a NULL reference: a history row by "system" stays.)
            cursor.execute(
                f"DELETE FROM {_S[table]} WHERE {column} NOT IN (SELECT id FROM {_S[target]})"
            )
            left_out[table] += cursor.rowcount
    return left_out
