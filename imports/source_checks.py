"""Checks of staged source rows that need other rows: SQL over the staging tables.

Row-local checks are in replaced_system.Transform. Here, after each staged row
found its product row (source_writes.map_existing): history levels (they depend
on the licence's specialization), rows the source holds twice, product rows an
earlier import made that were deleted or that the source now gives another
student, emails that collide with other accounts, changed totals the product
cannot take; and, for ``--skip-invalid``, the rows that depend on a left-out row.
Each is a Problem naming the source's table, row id and field: the import stops
before it writes, instead of failing on a constraint halfway.
"""

from django.db import connections, transaction

from licenses.models import UserLicense
from licenses.planner import transaction_settings
from specializations.models import LEDGER_FIELDS, ExternalId, Specialization, SpecializationProgress

from .replaced_system import HISTORY, LICENSES, PROGRESS, SOURCE, STAGING, USERS, Problem
from .source_users import UserColumns, user_columns
from .source_writes import CHANGE_AMOUNTS, CHANGED_PROGRESS

_S = {table: name for table, (name, _) in STAGING.items()}
_EXTERNAL = ExternalId._meta.db_table
# The pair tables: the product table, the user column (the source's name, the staging
# table's and the product table's alike) and the source's name of the code field.
_PAIRS = {
    PROGRESS: (SpecializationProgress._meta.db_table, "student_id", "specialization_id"),
    LICENSES: (UserLicense._meta.db_table, "user_id", "specialization_type"),
}
_PRODUCT_NAMES = {PROGRESS: "progress row", LICENSES: "licence"}

DELETED = "which has since been deleted"
MOVED = (
    "was imported as the product's {name} id={id} (user id={user}, {code}): the import"
    " does not move a row to another user or specialization"
)
NOT_IMPORTED = (
    "{email!r} collides with the product's user id={user}, which was not imported from {source}"
)
NO_LONGER = (
    "{email!r} collides with the product's user id={user}, imported from users id={source_id},"
    " which no longer has that email at the source"
)


# JIT off: the checks answer with a few rows, from estimates that run high (the user
# table's statistics lag an import), and PostgreSQL compiled some of them for longer
# than they ran.
CHECK_SETTINGS = {"jit": "off"}


def cross_row_problems(*, using: str = "default") -> list[Problem]:
    users = user_columns(using=using)
    found = []
    with (
        transaction.atomic(using=using),
        transaction_settings(CHECK_SETTINGS, using),
        connections[using].cursor() as cursor,
    ):
        for sql, params, table, field, message in _checks(users):
            cursor.execute(sql, params)
            for row_id, *rest in cursor.fetchall():
                if field is None:  # the query names the field
                    row_field, *rest = rest
                else:
                    row_field = field
                text = message(*rest) if callable(message) else message.format(*rest)
                found.append(Problem(table, row_id, row_field, text))
        found += _totals_below_zero(cursor)
    return found


def _checks(users: UserColumns):
    """(sql, params, table, field or None when the query's second column names it, message)."""
    specialization = Specialization._meta.db_table
    history_levels = (
        f"SELECT h.id, h.{{field}}, s.max_level, s.code FROM {_S[HISTORY]} h"
        f" JOIN {_S[LICENSES]} l ON l.id = h.license_id"
        f" JOIN {specialization} s ON s.code = l.specialization_id"
        " WHERE h.{field} < {low} OR h.{field} > s.max_level ORDER BY h.id"
    )
    for field, low in (("to_level", 1), ("from_level", 0)):
        yield (
            history_levels.format(field=field, low=low),
            [],
            HISTORY,
            field,
            "level {0} is outside 1..{1} of {2}",
        )
    yield from _twice_at_the_source()
    yield from _gone_or_moved(users)
    yield from _collisions(users)


def _twice_at_the_source():
    """Every row after the first that holds what must be unique (the source enforces neither)."""
    stage = _S[USERS]
    yield (
        f"SELECT s.id, s.email, d.first FROM {stage} s JOIN (SELECT UPPER(email) AS email,"
        f" MIN(id) AS first FROM {stage} GROUP BY UPPER(email) HAVING COUNT(*) > 1) d"
        " ON UPPER(s.email) = d.email WHERE s.id <> d.first ORDER BY s.id",
        [],
        USERS,
        "email",
        "{0!r} is also the email of users id={1} (emails compare without case)",
    )
    for table, (_, user, code) in _PAIRS.items():
        stage = _S[table]
        yield (
            f"SELECT s.id, s.specialization_id, s.{user}, d.first FROM {stage} s"
            f" JOIN (SELECT {user}, specialization_id, MIN(id) AS first FROM {stage}"
            f" GROUP BY {user}, specialization_id HAVING COUNT(*) > 1) d"
            f" ON d.{user} = s.{user} AND d.specialization_id = s.specialization_id"
            " WHERE s.id <> d.first ORDER BY s.id",
            [],
            table,
            code,
            f"{{0}} of users id={{1}} is also in {table} id={{2}}",
        )


def _gone_or_moved(users: UserColumns):
    """Rows mapped to a product row that was deleted since, or that is another pair's.

    A progress row or licence of a deleted user is named by its user alone.
    """
    stage = _S[USERS]
    yield (
        f"SELECT s.id, s.target_id FROM {stage} s WHERE s.target_id IS NOT NULL"
        f" AND NOT EXISTS (SELECT 1 FROM {users.table} u WHERE u.{users.pk} = s.target_id)"
        " ORDER BY s.id",
        [],
        USERS,
        "id",
        "was imported as the product's user id={0}, " + DELETED,
    )
    for table, (target, user, code) in _PAIRS.items():
        name = _PRODUCT_NAMES[table]

        def message(target_id, owner, specialization, name=name):
            if owner is None:
                return f"was imported as the product's {name} id={target_id}, {DELETED}"
            return MOVED.format(name=name, id=target_id, user=owner, code=specialization)

        yield (
            f"SELECT s.id, CASE WHEN t.id IS NULL THEN 'id' WHEN t.{user} = u.target_id"
            f" THEN '{code}' ELSE '{user}' END, s.target_id, t.{user}, t.specialization_id"
            f" FROM {_S[table]} s JOIN {stage} u ON u.id = s.{user}"
            f" LEFT JOIN {target} t ON t.id = s.target_id WHERE s.target_id IS NOT NULL"
            f" AND (t.id IS NULL OR u.target_id IS NULL OR t.{user} <> u.target_id"
            " OR t.specialization_id <> s.specialization_id)"
            # A row of a deleted user: the user is named instead.
            f" AND (u.target_id IS NULL OR EXISTS (SELECT 1 FROM {users.table} x"
            f" WHERE x.{users.pk} = u.target_id)) ORDER BY s.id",
            [],
            table,
            None,
            message,
        )


def _collisions(users: UserColumns):
    """Accounts this run writes (new or changed) against the product's other accounts.

    An account another staged user rewrites in this run is not in the way: two users
    may swap emails, or one take the email another gave up (source_writes._users).
    Two staged users with one email are _twice_at_the_source's to name.
    """
    stage = _S[USERS]
    columns = [users.username] + ([users.email] if users.email else [])
    selects = [
        f"SELECT s.id, s.email, u.{users.pk}, (SELECT MIN(e.external_id) FROM {_EXTERNAL} e"
        f" WHERE e.source = %s AND e.user_id = u.{users.pk}) FROM {stage} s"
        f" JOIN {users.table} u ON UPPER(u.{column}) = UPPER(s.email)"
        f" WHERE (s.target_id IS NULL OR s.changed) AND u.{users.pk} <> COALESCE(s.target_id, 0)"
        f" AND NOT EXISTS (SELECT 1 FROM {stage} o WHERE o.target_id = u.{users.pk}"
        " AND (o.changed OR UPPER(o.email) = UPPER(s.email)))"
        for column in columns
    ]

    def message(email, user, source_id):
        if source_id is None:
            return NOT_IMPORTED.format(email=email, user=user, source=SOURCE)
        return NO_LONGER.format(email=email, user=user, source_id=source_id)

    yield (
        " UNION ".join(selects) + " ORDER BY 1, 3",
        [SOURCE] * len(selects),
        USERS,
        "email",
        message,
    )


def _totals_below_zero(cursor) -> list[Problem]:
    """Changed progress rows whose change the product's totals cannot take.

    The write adds the source's change since the last run to the product's total;
    after the product subtracted more than the source now holds, that is below 0.
    """
    sums = ", ".join(
        f"p.{total} + {amount}"
        for (_, total), amount in zip(LEDGER_FIELDS, CHANGE_AMOUNTS, strict=True)
    )
    cursor.execute(f"SELECT s.id, p.id, {sums} {CHANGED_PROGRESS} ORDER BY s.id")
    found = []
    for row_id, progress_id, *results in cursor.fetchall():
        for (_, total), result in zip(LEDGER_FIELDS, results, strict=True):
            if result < 0:
                found.append(
                    Problem(
                        PROGRESS,
                        row_id,
                        total,
                        f"its change since the last import would take the product's progress"
                        f" row id={progress_id} to {result}, below 0",
                    )
                )
    return found


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
