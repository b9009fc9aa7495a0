"""The level catalogue: what it takes to reach each level of each specialization."""

from django.db import migrations

SPECIALIZATIONS = [
    ("PLAYER", "GanCuju Player", 8),
    ("COACH", "Football Coach", 8),
    ("INTERNSHIP", "Startup Internship", 3),
]

# (number, name, required_xp, required_sessions, theory_hours, practice_hours, total_hours)
PLAYER = [
    (1, "Bamboo Student", 12_000, 10, 0, 0, 0),
    (2, "Morning Dew", 25_000, 12, 0, 0, 0),
    (3, "Flexible Reed", 45_000, 15, 0, 0, 0),
    (4, "Sky River", 70_000, 18, 0, 0, 0),
    (5, "Strong Root", 100_000, 20, 0, 0, 0),
    (6, "Winter Moon", 140_000, 22, 0, 0, 0),
    (7, "Midnight Guardian", 190_000, 25, 0, 0, 0),
    (8, "Dragon Wisdom", 250_000, 30, 0, 0, 0),
]
COACH = [
    (1, "Pre Football Assistant Coach", 15_000, 15, 30, 50, 80),
    (2, "Pre Football Head Coach", 35_000, 18, 40, 60, 100),
    (3, "Youth Football Assistant Coach", 60_000, 20, 35, 55, 90),
    (4, "Youth Football Head Coach", 90_000, 22, 45, 65, 110),
    (5, "Amateur Football Assistant Coach", 130_000, 25, 40, 60, 100),
    (6, "Amateur Football Head Coach", 180_000, 28, 35, 55, 90),
    (7, "PRO Football Assistant Coach", 240_000, 30, 50, 70, 120),
    (8, "PRO Football Head Coach", 320_000, 35, 60, 80, 140),
]
INTERNSHIP = [
    (1, "Startup Explorer", 10_000, 15, 0, 0, 80),
    (2, "Growth Hacker", 18_000, 18, 0, 0, 120),
    (3, "Startup Leader", 28_000, 22, 0, 0, 130),
]
TITLES = {
    "PLAYER": "GanCuju {name} Belt",
    "COACH": "{name} Licence",
    "INTERNSHIP": "{name} Certificate",
}


def load_catalogue(apps, schema_editor):
    Specialization = apps.get_model("specializations", "Specialization")
    Level = apps.get_model("specializations", "Level")
    for code, name, max_level in SPECIALIZATIONS:
        Specialization.objects.update_or_create(
            code=code, defaults={"name": name, "max_level": max_level, "is_active": True}
        )
    for code, rows in (("PLAYER", PLAYER), ("COACH", COACH), ("INTERNSHIP", INTERNSHIP)):
        for number, name, xp, sessions, theory, practice, total in rows:
            Level.objects.update_or_create(
                specialization_id=code,
                number=number,
                defaults={
                    "name": name,
                    "required_xp": xp,
                    "required_sessions": sessions,
                    "theory_hours": theory,
                    "practice_hours": practice,
                    "total_hours": total,
                    "license_title": TITLES[code].format(name=name),
                },
            )


class Migration(migrations.Migration):
    dependencies = [("specializations", "0001_initial")]

    operations = [migrations.RunPython(load_catalogue, migrations.RunPython.noop)]
