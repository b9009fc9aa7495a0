"""Trigram indexes for the admin's search by username or email (PostgreSQL only).

The progress, licence and desync lists search their users with Django's
``icontains``: ``UPPER(username::text) LIKE UPPER('%term%')``. Without an index
that reads every user (60-180 ms at 333k users, most of it upper-casing under the
database's collation); a GIN trigram index on the same expressions answers it in
a few milliseconds. pg_trgm ships with PostgreSQL and is a trusted extension:
the database's owner may create it. When it cannot be created, the indexes are
skipped with a warning and the search still works, reading every user.

The table is the project's user model's (``AUTH_USER_MODEL``, auth_user by default);
the indexes are named after it, and made for those of its username and email
columns that exist.
"""

import sys

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import DatabaseError, migrations, transaction

COLUMNS = ("username", "email")


def user_indexes(apps, schema_editor) -> dict[str, str]:
    """Index name -> the indexed expression, on the user model's table."""
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    table = user_model._meta.db_table
    indexes = {}
    for name in COLUMNS:
        try:
            column = user_model._meta.get_field(name).column
        except FieldDoesNotExist:
            continue
        # auth_user_username_upper_trgm for Django's own user model, as always named.
        index = f"{table[:40]}_{column[:10]}_upper_trgm"
        indexes[index] = f"UPPER({schema_editor.quote_name(column)}::text)"
    return indexes


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
    table = schema_editor.quote_name(apps.get_model(settings.AUTH_USER_MODEL)._meta.db_table)
    for name, expression in user_indexes(apps, schema_editor).items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {schema_editor.quote_name(name)} ON {table}"
            f" USING gin ({expression} gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in user_indexes(apps, schema_editor):
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


class Migration(migrations.Migration):
    dependencies = [
        ("licenses", "0002_licence_history_names"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(create_indexes, drop_indexes, elidable=False)]
