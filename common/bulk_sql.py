"""Set-based SQL shared by the writers that touch many rows at once (repair batches, the
ledger's batches): exact (user, specialization) pairs and updates by id, in one statement
each, whatever the number of rows.
"""

from django.db import connection

Pair = tuple[int, str]


def quoted(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def exact_pairs(table: str, user_column: str, pairs: list[Pair]) -> tuple[str, list]:
    """SQL true for the rows of exactly these (user, specialization) pairs.

    PostgreSQL: two arrays unnested, planned in the same time whatever their
    length (an OR of the exact pairs cost far more to plan: BENCHMARKS.md, the lock
    statement under "Repair"). Elsewhere a VALUES list.
    """
    columns = f"({table}.{user_column}, {table}.specialization_id)"
    if connection.vendor == "postgresql":
        sql = f"{columns} IN (SELECT * FROM unnest(%s::bigint[], %s::varchar[]))"
        return sql, [[u for u, _ in pairs], [s for _, s in pairs]]
    sql = f"{columns} IN (VALUES {', '.join(['(%s, %s)'] * len(pairs))})"
    return sql, [item for pair in pairs for item in pair]


def bulk_set(model, fields: list[str], rows: list[tuple]) -> None:
    """``UPDATE`` rows by id: each of ``rows`` is (id, value of each field), one statement.

    PostgreSQL: an UPDATE joined to unnested arrays (bulk_update's CASE per row
    was the largest cost in repair's profile: BENCHMARKS.md, "What the profile
    changed", 7). Elsewhere one UPDATE per row.
    """
    if not rows:
        return
    table, columns = quoted(model), [model._meta.get_field(name) for name in fields]
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            sets = ", ".join(f"{f.column} = %s" for f in columns)
            cursor.executemany(
                f"UPDATE {table} SET {sets} WHERE id = %s", [(*v, pk) for pk, *v in rows]
            )
            return
        arrays = [list(values) for values in zip(*rows, strict=True)]
        types = ["bigint", *(f.db_type(connection) for f in columns)]
        names = ", ".join(["id", *(f.column for f in columns)])
        cursor.execute(
            f"UPDATE {table} SET {', '.join(f'{f.column} = v.{f.column}' for f in columns)}"
            f" FROM unnest({', '.join(f'%s::{t}[]' for t in types)}) AS v({names})"
            f" WHERE {table}.id = v.id",
            arrays,
        )
