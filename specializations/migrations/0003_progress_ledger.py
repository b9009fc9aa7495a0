"""The ledger of progress events and the ids other systems know students by.

Every progress row that exists before the ledger gets one opening event
(source "opening") holding its totals, in one INSERT ... SELECT, so that from
this migration on every row's totals equal the sum of its events.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models


OPENING_EVENTS = """
INSERT INTO specializations_progressevent (
    progress_id, source, idempotency_key, reason, actor_id, occurred_at, recorded_at,
    level_before, level_after, xp_gained, sessions_completed, projects_completed,
    theory_hours, practice_hours
)
SELECT id, 'opening', NULL, 'Opening balance: the totals before the ledger', NULL,
       COALESCE(last_activity, created_at), CURRENT_TIMESTAMP,
       current_level, current_level, total_xp, completed_sessions, completed_projects,
       theory_hours_completed, practice_hours_completed
  FROM specializations_specializationprogress
 ORDER BY id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("specializations", "0002_level_catalogue"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ExternalId",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("source", models.CharField(max_length=100)),
                ("external_id", models.CharField(max_length=255)),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="external_ids",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "external id",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("source", "external_id"), name="externalid_unique_per_source"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="ProgressEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "source",
                    models.CharField(
                        help_text="Who sent it: system, admin, an API client, import:<file>.",
                        max_length=100,
                    ),
                ),
                (
                    "idempotency_key",
                    models.CharField(
                        blank=True,
                        help_text="Unique per source; empty: a call that asked for no replay protection.",
                        max_length=255,
                        null=True,
                    ),
                ),
                ("reason", models.CharField(blank=True, max_length=255)),
                (
                    "occurred_at",
                    models.DateTimeField(help_text="When it happened, as the sender says."),
                ),
                (
                    "recorded_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
                ),
                ("level_before", models.PositiveSmallIntegerField()),
                ("level_after", models.PositiveSmallIntegerField()),
                ("xp_gained", models.BigIntegerField(default=0)),
                ("sessions_completed", models.IntegerField(default=0)),
                ("projects_completed", models.IntegerField(default=0)),
                ("theory_hours", models.IntegerField(default=0)),
                ("practice_hours", models.IntegerField(default=0)),
                (
                    "actor",
                    models.ForeignKey(
                        blank=True,
                        db_index=False,
                        help_text="Empty: the system or a client.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "progress",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="specializations.specializationprogress",
                    ),
                ),
            ],
            options={
                "verbose_name": "progress event",
                "ordering": ["-id"],
                "indexes": [
                    models.Index(
                        fields=["progress", "id"],
                        include=(
                            "xp_gained",
                            "sessions_completed",
                            "projects_completed",
                            "theory_hours",
                            "practice_hours",
                        ),
                        name="progressevent_ledger_idx",
                    ),
                    models.Index(
                        condition=models.Q(("actor__isnull", False)),
                        fields=["actor"],
                        name="progressevent_actor_idx",
                    ),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("source", "idempotency_key"), name="progressevent_unique_source_key"
                    )
                ],
            },
        ),
        # Reversed, the table goes with its opening events.
        migrations.RunSQL(OPENING_EVENTS, migrations.RunSQL.noop),
    ]
