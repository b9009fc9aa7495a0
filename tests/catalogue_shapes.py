"""Catalogue files in the shapes of the replaced system's four licence types, and a
season programme (written for the tests: the suite never reads ../shared)."""

import copy
import json
from pathlib import Path


def _levels(count: int, make) -> list[dict]:
    return [make(n) for n in range(1, count + 1)]


# GanCuju: English names, belts, theory/practice hours and skills; no age groups.
GANCUJU_PLAYER = {
    "id": "GANCUJU_PLAYER",
    "name": "GānCuju Player",
    "description": "Cuju hagyományra épülő szakirány",
    "min_age": 5,
    "color_theme": "#8B4513",
    "icon": "🥋",
    "levels": _levels(
        4,
        lambda n: {
            "level": n,
            "name": ["Bambusz Tanítvány", "Hajnali Harmat", "Rugalmas Nád", "Égi Folyó"][n - 1],
            "name_en": ["Bamboo Disciple", "Morning Dew", "Flexible Reed", "Celestial River"][
                n - 1
            ],
            "belt_color": "#FFFFFF",
            "belt_name": f"{n}. öv",
            "description": f"Szint {n}",
            "xp_required": [0, 1000, 2500, 5000][n - 1],
            "xp_max": [999, 2499, 4999, 9999][n - 1],
            "required_sessions": [0, 5, 15, 30][n - 1],
            "required_projects": [0, 0, 1, 2][n - 1],
            "requirements": {
                "theory_hours": [0, 10, 20, 30][n - 1],
                "practice_hours": [20, 40, 60, 80][n - 1],
                "skills": ["Alapállás", "Egyensúly"],
            },
        },
    ),
}

# LFA football player: age groups, min_age per level; no English names.
LFA_FOOTBALL_PLAYER = {
    "id": "LFA_FOOTBALL_PLAYER",
    "name": "LFA Football Player",
    "min_age": 5,
    "age_groups": [
        {"name": "Pre Football", "min_age": 5, "max_age": 13, "levels": [1, 2]},
        {"name": "Youth Football", "min_age": 14, "max_age": None, "levels": [3]},
    ],
    "levels": _levels(
        3,
        lambda n: {
            "level": n,
            "name": f"LFA Player {n}",
            "age_group": "Pre Football" if n < 3 else "Youth Football",
            "license_color": "#FFB6C1",
            "xp_required": [0, 1000, 2500][n - 1],
            "required_sessions": [0, 10, 20][n - 1],
            "required_projects": [0, 0, 1][n - 1],
            "requirements": {
                "theory_hours": [0, 5, 10][n - 1],
                "practice_hours": [30, 50, 70][n - 1],
                "min_age": [5, 5, 9][n - 1],
            },
        },
    ),
}

# LFA coach: courses and exams, hours that fall between levels; no required_projects.
LFA_COACH = {
    "id": "LFA_COACH",
    "name": "LFA Coach",
    "levels": _levels(
        4,
        lambda n: {
            "level": n,
            "name": f"LFA Coach {n}",
            "xp_required": [0, 1000, 3000, 6000][n - 1],
            "required_sessions": [0, 10, 20, 30][n - 1],
            "requirements": {
                "theory_hours": [30, 40, 35, 45][n - 1],
                "practice_hours": [50, 60, 55, 65][n - 1],
                "mandatory_courses": ["Elsősegély"] if n > 1 else [],
                "exam_pass_percentage": 70 + n,
            },
        },
    ),
}

# Internship: projects, total hours, mentoring; no required_sessions; level 1 has
# requirements of its own.
INTERNSHIP = {
    "id": "INTERNSHIP",
    "name": "Startup Internship",
    "levels": _levels(
        3,
        lambda n: {
            "level": n,
            "name": ["Explorer", "Growth Hacker", "Leader"][n - 1],
            "xp_required": [500, 1000, 2000][n - 1],
            "required_projects": [1, 2, 4][n - 1],
            "requirements": {
                "total_hours": [40, 80, 120][n - 1],
                "mentoring_months": n,
                "project_types": ["mvp", "growth"][: n - 1],
            },
        },
    ),
}

# A season programme: extra top-level keys, one the loader does not know, a level
# without requirements.
SEASON = {
    "id": "SUMMER_CAMP_2026",
    "name": "Summer Camp 2026",
    "start_date": "2026-07-01",
    "end_date": "2026-08-15",
    "cost_credits": 120,
    "enrollment_rules": {"max_students": 40},
    "features": ["video analysis"],
    "sponsor": "Acme",
    "levels": [
        {"level": 1, "name": "Camper", "xp_required": 0},
        {"level": 2, "name": "Captain", "xp_required": 800, "required_sessions": 6},
    ],
}

SHAPES = {
    "gancuju_player.json": GANCUJU_PLAYER,
    "lfa_football_player.json": LFA_FOOTBALL_PLAYER,
    "lfa_coach.json": LFA_COACH,
    "internship.json": INTERNSHIP,
    "season.json": SEASON,
}


def write(directory: Path, name: str, data) -> Path:
    path = directory / name
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, indent=2)
    path.write_text(text, encoding="utf-8")
    return path


def write_all(directory: Path, shapes: dict | None = None) -> Path:
    for name, data in (shapes or SHAPES).items():
        write(directory, name, data)
    return directory


def changed(data: dict, **levels) -> dict:
    """A copy of ``data`` with level fields replaced: ``changed(d, level_3={"xp_required": 1})``."""
    data = copy.deepcopy(data)
    for key, fields in levels.items():
        number = int(key.removeprefix("level_"))
        level = next(level for level in data["levels"] if level["level"] == number)
        level.update(fields)
    return data
