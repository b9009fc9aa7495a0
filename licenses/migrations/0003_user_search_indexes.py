"""Trigram indexes for the admin's search by username or email (PostgreSQL only).

The progress, licence and desync lists search their users with Django's
``icontains``: ``UPPER(username::text) LIKE UPPER('%term%')``. Without an index
that reads every user (60-180 ms at 333k users, most of it upper-casing under the
database's collation); a GIN trigram index on the same expressions answers it in
a few milliseconds. pg_trgm ships with PostgreSQL and is a trusted extension:
the database's owner may create it. When it cannot be created, the indexes are
skipped with a warning and the search still works, reading every user.
"""

import sys

from django.db import DatabaseError, migrations, transaction

INDEXES = {
    "auth_user_username_upper_trgm": "UPPER(username::text)",
    "auth_user_email_upper_trgm": "UPPER(email::text)",
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:
        # One line: psycopg2's message runs over several (the error, then its HINT).
        why = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        sys.stderr.write(
            f"warning: pg_trgm unavailable ({why}): the admin's search by"
            " username or email reads every user. Create it as the database owner"
            " (CREATE EXTENSION pg_trgm), then run: manage.py migrate licenses 0002"
            " && manage.py migrate\n"
        )
        return
    table = apps.get_model("auth", "User")._meta.db_table
    for name, expression in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({expression} gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("licenses", "0002_licence_history_names"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_indexes, drop_indexes, elidable=False)]
