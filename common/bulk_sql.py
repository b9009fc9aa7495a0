"""Set-based SQL shared by the writers that touch many rows at once (repair batches, the
ledger's batches): exact (user, specialization) pairs and updates by id, in one statement
each, whatever the number of rows.
"""

import json

from django.db import connection
from django.db.models import JSONField

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


def bulk_insert(objs: list) -> None:
    """``Model.objects.bulk_create(objs)`` for a batch of new instances of one model, with
    their ids (and the values the database generates) set on them.

    On PostgreSQL the rows go in from unnested arrays of their attributes: bulk_create
    prepared each value in Python (13,000 for a batch of 1,000 ledger events), where the
    driver adapts numbers, text, datetimes and None as they are (JSON is dumped here).
    Fields with a ``db_default`` are left to the database and read back. Elsewhere,
    bulk_create.
    """
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs)
        return
    meta = model._meta
    generated = [f for f in meta.concrete_fields if f.primary_key or f.has_db_default()]
    fields = [f for f in meta.concrete_fields if f not in generated]
    arrays = []
    for f in fields:
        values = [getattr(obj, f.attname) for obj in objs]
        if isinstance(f, JSONField):
            values = [None if v is None else json.dumps(v, cls=f.encoder) for v in values]
        arrays.append(values)
    types = ", ".join(f"%s::{f.cast_db_type(connection)}[]" for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quoted(model)} ({', '.join(f.column for f in fields)})"
            f" SELECT * FROM unnest({types})"
            f" RETURNING {', '.join(f.column for f in generated)}",
            arrays,
        )
        # In the arrays' order: PostgreSQL keeps an INSERT ... SELECT's order for
        # RETURNING (Django's bulk_create relies on it too).
        for obj, values in zip(objs, cursor.fetchall(), strict=True):
            for f, value in zip(generated, values, strict=True):
                setattr(obj, f.attname, value)
            obj._state.adding, obj._state.db = False, connection.alias
