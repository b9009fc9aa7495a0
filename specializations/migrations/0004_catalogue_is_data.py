"""The catalogue is data: any specialization code, the file format's fields on levels.

``Specialization.code`` stops being a fixed set of choices: any code matching
``[A-Z][A-Z0-9_]{0,49}`` (a validator and a check constraint), 50 characters
instead of 20. On PostgreSQL the key's type reaches every column that points at
it (levels, progress, licences, and any table another app added); a column that
a view reads or a trigger's WHEN clause names cannot change type, so those views
(the Desync cases views) and triggers (the commit guard's) are set aside around
the change and put back as they were, whatever app made them. SQLite does not
enforce a varchar's length: its columns are left as they are (no table rebuild
of the progress and licence tables). No row is rewritten or lost.
"""

import django.core.validators
from django.db import migrations, models

SPECIALIZATION_TABLE = "specializations_specialization"
OLD_LENGTH, NEW_LENGTH = 20, 50
CODE_PATTERN = r"\A[A-Z][A-Z0-9_]{0,49}\Z"


def _code_columns(cursor) -> list[tuple[str, str]]:
    """(table, column) of the key and of every foreign key column that points at it."""
    cursor.execute(
        "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)"
        " WHERE c.contype = 'f' AND c.confrelid = %s::regclass ORDER BY 1, 2",
        [SPECIALIZATION_TABLE],
    )
    return [(SPECIALIZATION_TABLE, "code"), *cursor.fetchall()]


def _dependent_views(cursor, tables: list[str]) -> list[tuple[str, str]]:
    """(name, definition) of every view reading these tables, directly or through a view,
    in an order they can be created in."""
    cursor.execute(
        """
        WITH RECURSIVE dependent(oid, depth) AS (
            SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
             WHERE d.classid = 'pg_rewrite'::regclass
               AND d.refobjid = ANY(%s::regclass[]) AND r.ev_class <> d.refobjid
            UNION
            SELECT r.ev_class, dependent.depth + 1 FROM dependent
              JOIN pg_depend d ON d.refobjid = dependent.oid
              JOIN pg_rewrite r ON r.oid = d.objid
             WHERE d.classid = 'pg_rewrite'::regclass AND r.ev_class <> dependent.oid
               AND dependent.depth < 20
        )
        SELECT c.oid::regclass::text, pg_get_viewdef(c.oid) FROM dependent
          JOIN pg_class c ON c.oid = dependent.oid AND c.relkind = 'v'
         GROUP BY c.oid ORDER BY max(dependent.depth), 1
        """,
        [tables],
    )
    return cursor.fetchall()


def _triggers(cursor, tables: list[str]) -> list[tuple[str, str, str]]:
    """(name, table, definition) of the user-defined triggers on these tables."""
    cursor.execute(
        "SELECT tgname, tgrelid::regclass::text, pg_get_triggerdef(oid) FROM pg_trigger"
        " WHERE NOT tgisinternal AND tgrelid = ANY(%s::regclass[]) ORDER BY 2, 1",
        [tables],
    )
    return cursor.fetchall()


def _resize(length: int):
    def resize(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return
        quote = schema_editor.quote_name
        with connection.cursor() as cursor:
            columns = _code_columns(cursor)
            tables = sorted({table for table, _ in columns})
            views = _dependent_views(cursor, tables)
            triggers = _triggers(cursor, tables)
            for name, _ in reversed(views):
                cursor.execute(f"DROP VIEW {name}")
            for name, table, _ in triggers:
                cursor.execute(f"DROP TRIGGER {quote(name)} ON {table}")
            for table, column in columns:
                cursor.execute(
                    f"ALTER TABLE {table} ALTER COLUMN {quote(column)} TYPE varchar({length})"
                )
            for name, definition in views:
                cursor.execute(f"CREATE VIEW {name} AS {definition}")
            for _, _, definition in triggers:
                cursor.execute(definition)

    return resize


class Migration(migrations.Migration):
    dependencies = [("specializations", "0003_progress_ledger")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunPython(_resize(NEW_LENGTH), _resize(OLD_LENGTH)),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="specialization",
                    name="code",
                    field=models.CharField(
                        help_text="Fixed once created: progress, licences and history point at it.",
                        max_length=NEW_LENGTH,
                        primary_key=True,
                        serialize=False,
                        validators=[
                            django.core.validators.RegexValidator(
                                CODE_PATTERN,
                                message=(
                                    "A specialization code is an upper-case letter, then up to"
                                    " 49 upper-case letters, digits or underscores (e.g. LFA_COACH)."
                                ),
                            )
                        ],
                    ),
                ),
            ],
        ),
        migrations.AddConstraint(
            model_name="specialization",
            constraint=models.CheckConstraint(
                condition=models.Q(("code__regex", CODE_PATTERN)),
                name="specialization_code_format",
            ),
        ),
        migrations.AlterField(
            model_name="specialization",
            name="name",
            field=models.CharField(max_length=100, verbose_name="display name"),
        ),
        migrations.AlterField(
            model_name="specialization",
            name="is_active",
            field=models.BooleanField(
                default=True,
                help_text="Inactive: no progress can be recorded in it; nothing is deleted.",
            ),
        ),
        migrations.AddField(
            model_name="specialization",
            name="description",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.AddField(
            model_name="specialization",
            name="extra",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="The catalogue file's other top-level keys, kept as loaded (not used).",
            ),
        ),
        migrations.AlterField(
            model_name="level",
            name="name",
            field=models.CharField(help_text="As the catalogue file names it.", max_length=100),
        ),
        migrations.AddField(
            model_name="level",
            name="name_en",
            field=models.CharField(
                blank=True, default="", max_length=100, verbose_name="English name"
            ),
        ),
        migrations.AddField(
            model_name="level",
            name="description",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.AddField(
            model_name="level",
            name="required_projects",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="level",
            name="unchecked_requirements",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text=(
                    "Requirements kept from the catalogue file and not checked by the product."
                ),
            ),
        ),
        migrations.AddField(
            model_name="level",
            name="extra",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="The file's other keys for this level, kept as loaded (not used).",
            ),
        ),
    ]
