"""Set-based SQL shared by the writers that touch many rows at once (repair batches, the
ledger's batches): exact (user, specialization) pairs and updates by id, in one statement
each, whatever the number of rows.
"""

import json
from datetime import date, datetime

from django.db import connection
from django.db.models import JSONField

Pair = tuple[int, str]


def array(values) -> str:
    """PostgreSQL: ``values`` as one array literal (``'{1,2}'``, cast with ``::type[]``).

    The server parses one constant, where psycopg2's adaptation of a list sends
    ``ARRAY[...]`` with one per element: for a 1,000-event batch's eleven arrays, 3.7 ms
    against 16.8 (adaptation and parse; BENCHMARKS.md, "The HTTP API"). Elements are
    None (NULL), numbers, or anything whose ``str`` (dates: ``isoformat``) is the value.
    """
    values = list(values)
    kinds = {type(value) for value in values}
    if kinds <= {int}:
        return "{" + ",".join(map(str, values)) + "}"
    if kinds == {str}:
        text = "".join(values)
        if '"' not in text and "\\" not in text:  # nothing to escape (keys, codes)
            return '{"' + '","'.join(values) + '"}'
    if kinds == {datetime}:  # an isoformat() has nothing to escape
        return '{"' + '","'.join(value.isoformat() for value in values) + '"}'
    return "{" + ",".join(map(_element, values)) + "}"


def _element(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"array(): {type(value).__name__} has no text form here")
    text = value.isoformat() if isinstance(value, date) else str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
        return sql, [array(u for u, _ in pairs), array(s for _, s in pairs)]
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
        arrays = [array(values) for values in zip(*rows, strict=True)]
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
    arrays = [[getattr(obj, f.attname) for obj in objs] for f in fields]
    # In the arrays' order: PostgreSQL keeps an INSERT ... SELECT's order for RETURNING
    # (Django's bulk_create relies on it too).
    alias = connection.alias  # a lookup through the connection proxy each time
    for obj, values in zip(objs, _insert_arrays(model, fields, arrays, generated), strict=True):
        for f, value in zip(generated, values, strict=True):
            setattr(obj, f.attname, value)
        obj._state.adding, obj._state.db = False, alias


def insert_rows(model, fields: list[str], rows: list[tuple]) -> None:
    """INSERT new rows given as tuples of the values of ``fields`` (attribute names), in
    one statement; what the database generates is not read back.

    On PostgreSQL no model instance is built: for 1,000 rows that was a large part of a
    batch's Python (BENCHMARKS.md, "The HTTP API"). Elsewhere, bulk_create.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create([model(**dict(zip(fields, row, strict=True))) for row in rows])
        return
    columns = [model._meta.get_field(name) for name in fields]
    _insert_arrays(model, columns, [list(values) for values in zip(*rows, strict=True)], [])


def _insert_arrays(model, fields: list, arrays: list[list], returning: list) -> list[tuple]:
    """PostgreSQL: INSERT the rows of one array per field (unnested), RETURNING
    ``returning``'s columns in the arrays' order.

    A JSON field's values go as one JSON document, the row's element picked by its
    ordinality (None stays NULL): one ``json.dumps`` in C for the column, where an
    array of JSON texts cost a call and an escape per value (8 ms of a 1,000-event
    batch's answers; BENCHMARKS.md, "The HTTP API").
    """
    documents, texts, casts, selected = [], [], [], []
    for i, (f, values) in enumerate(zip(fields, arrays, strict=True)):
        if isinstance(f, JSONField):
            documents.append(json.dumps(values, cls=f.encoder))
            selected.append("NULLIF((%s::jsonb) -> (t.n - 1)::integer, 'null'::jsonb)")
        else:
            texts.append(array(values))
            casts.append((f"%s::{f.cast_db_type(connection)}[]", f"c{i}"))
            selected.append(f"t.c{i}")
    back = f" RETURNING {', '.join(f.column for f in returning)}" if returning else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quoted(model)} ({', '.join(f.column for f in fields)})"
            f" SELECT {', '.join(selected)}"
            f" FROM unnest({', '.join(cast for cast, _ in casts)}) WITH ORDINALITY"
            f" AS t({', '.join(name for _, name in casts)}, n){back}",
            documents + texts,  # the SELECT list's placeholders come first
        )
        return cursor.fetchall() if returning else []
