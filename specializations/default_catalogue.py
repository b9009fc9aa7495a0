"""The catalogue of a fresh install: PLAYER, COACH and INTERNSHIP, with today's thresholds.

Its one home: the data migration installs it, the test fixture re-seeds it after a
flush, ``seed_demo`` makes sure it is there. An academy loads its own catalogue on
top (``manage.py load_catalogue``); nothing else in the code names these three.
"""

from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS

# (code, display name, level title pattern)
SPECIALIZATIONS = [
    ("PLAYER", "GanCuju Player", "GanCuju {name} Belt"),
    ("COACH", "Football Coach", "{name} Licence"),
    ("INTERNSHIP", "Startup Internship", "{name} Certificate"),
]
# Per code: (number, name, required_xp, required_sessions, theory_hours, practice_hours,
# total_hours). No required projects: the replaced system's old tables had none.
LEVELS = {
    "PLAYER": [
        (1, "Bamboo Student", 12_000, 10, 0, 0, 0),
        (2, "Morning Dew", 25_000, 12, 0, 0, 0),
        (3, "Flexible Reed", 45_000, 15, 0, 0, 0),
        (4, "Sky River", 70_000, 18, 0, 0, 0),
        (5, "Strong Root", 100_000, 20, 0, 0, 0),
        (6, "Winter Moon", 140_000, 22, 0, 0, 0),
        (7, "Midnight Guardian", 190_000, 25, 0, 0, 0),
        (8, "Dragon Wisdom", 250_000, 30, 0, 0, 0),
    ],
    "COACH": [
        (1, "Pre Football Assistant Coach", 15_000, 15, 30, 50, 80),
        (2, "Pre Football Head Coach", 35_000, 18, 40, 60, 100),
        (3, "Youth Football Assistant Coach", 60_000, 20, 35, 55, 90),
        (4, "Youth Football Head Coach", 90_000, 22, 45, 65, 110),
        (5, "Amateur Football Assistant Coach", 130_000, 25, 40, 60, 100),
        (6, "Amateur Football Head Coach", 180_000, 28, 35, 55, 90),
        (7, "PRO Football Assistant Coach", 240_000, 30, 50, 70, 120),
        (8, "PRO Football Head Coach", 320_000, 35, 60, 80, 140),
    ],
    "INTERNSHIP": [
        (1, "Startup Explorer", 10_000, 15, 0, 0, 80),
        (2, "Growth Hacker", 18_000, 18, 0, 0, 120),
        (3, "Startup Leader", 28_000, 22, 0, 0, 130),
    ],
}
CODES = tuple(code for code, _, _ in SPECIALIZATIONS)


def install_default_catalogue(*, apps=global_apps, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Create whichever of the three specializations is missing, with its levels.

    ``apps``: the app registry to take the models from (a migration passes its
    historical one; the fields set here exist in every schema version). A
    specialization that exists is left exactly as it is (an academy may have
    edited it). Returns the codes created. Clears the catalogue cache.
    """
    Specialization = apps.get_model("specializations", "Specialization")
    Level = apps.get_model("specializations", "Level")
    present = set(
        Specialization.objects.using(using).filter(code__in=CODES).values_list("code", flat=True)
    )
    missing = [spec for spec in SPECIALIZATIONS if spec[0] not in present]
    Specialization.objects.using(using).bulk_create(
        Specialization(code=code, name=name, max_level=len(LEVELS[code]), is_active=True)
        for code, name, _ in missing
    )
    Level.objects.using(using).bulk_create(
        Level(
            specialization_id=code,
            number=number,
            name=name,
            required_xp=xp,
            required_sessions=sessions,
            theory_hours=theory,
            practice_hours=practice,
            total_hours=total,
            license_title=title.format(name=name),
        )
        for code, _, title in missing
        for number, name, xp, sessions, theory, practice, total in LEVELS[code]
    )
    from .catalogue import clear_cache

    clear_cache()
    return [code for code, _, _ in missing]
