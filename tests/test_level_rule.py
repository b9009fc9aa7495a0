"""The level rule in SQL (catalogue ``level_sql``, used by import_progress) agrees with
``level_for`` in Python, on random catalogues and random totals."""

import random

from django.db import connection

from licenses.guard import unguarded
from specializations.catalogue import get_specialization
from specializations.models import Level, Specialization, SpecializationProgress

FIELDS = ("total_xp", "completed_sessions", "completed_projects")
FIELDS += ("theory_hours_completed", "practice_hours_completed")


def random_catalogue(rng: random.Random, code: str) -> None:
    """XP rises with the level; sessions, projects and hours may rise or fall."""
    max_level = rng.randint(1, 8)
    spec = Specialization.objects.create(code=code, name=code, max_level=max_level)
    xp = 0
    levels = []
    for number in range(1, max_level + 1):
        xp += rng.choice([0, 100, 500, 1000])
        levels.append(
            Level(
                specialization=spec,
                number=number,
                name=f"L{number}",
                required_xp=xp,
                required_sessions=rng.choice([0, 0, 3, 8]),
                required_projects=rng.choice([0, 0, 1, 2]),
                theory_hours=rng.choice([0, 5, 20]),
                practice_hours=rng.choice([0, 10, 30]),
                total_hours=rng.choice([0, 0, 25, 45]),
                license_title=f"{code} {number}",
            )
        )
    Level.objects.bulk_create(levels)


def test_sql_level_rule_agrees_with_level_for_on_random_totals(make_user):
    rng = random.Random(20261204)
    codes = [f"RULE_{n}" for n in range(6)]
    for code in codes:
        random_catalogue(rng, code)
    users = [make_user() for _ in range(60)]
    rows = []
    for user in users:
        for code in codes:
            rows.append(
                SpecializationProgress(
                    student=user,
                    specialization_id=code,
                    current_level=rng.randint(1, 9),
                    total_xp=rng.randint(0, 9000),
                    completed_sessions=rng.randint(0, 12),
                    completed_projects=rng.randint(0, 3),
                    theory_hours_completed=rng.randint(0, 40),
                    practice_hours_completed=rng.randint(0, 40),
                )
            )
    with unguarded():  # progress rows without licences, on purpose
        SpecializationProgress.objects.bulk_create(rows)
    checked = 0
    for code in codes:
        info = get_specialization(code)
        sql, params = info.level_sql("x")
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT x.id, {sql} FROM {SpecializationProgress._meta.db_table} x"
                " WHERE x.specialization_id = %s",
                [*params, code],
            )
            in_sql = dict(cursor.fetchall())
        for progress in SpecializationProgress.objects.filter(specialization=code):
            expected = info.level_for(
                current=progress.current_level,
                xp=progress.total_xp,
                sessions=progress.completed_sessions,
                projects=progress.completed_projects,
                theory=progress.theory_hours_completed,
                practice=progress.practice_hours_completed,
            )
            assert in_sql[progress.pk] == expected, (code, [getattr(progress, f) for f in FIELDS])
            checked += 1
    assert checked == 360
