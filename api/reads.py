"""What other systems read: a student's progress and the catalogue, as plain dicts
for the response schemas. A student's progress: one query for the progress rows, one
for the licences, the levels from the catalogue's process cache
(specializations/catalogue.py, where the level rule lives)."""

from types import SimpleNamespace

from licenses.models import UserLicense
from specializations.catalogue import SpecializationInfo, all_specializations, get_specialization
from specializations.models import Level, Specialization, SpecializationProgress

TOTAL_FIELDS = {
    "xp": "total_xp",
    "sessions": "completed_sessions",
    "projects": "completed_projects",
    "theory_hours": "theory_hours_completed",
    "practice_hours": "practice_hours_completed",
}


def requirements(level) -> dict[str, int]:
    return {
        "xp": level.required_xp,
        "sessions": level.required_sessions,
        "projects": level.required_projects,
        "theory_hours": level.theory_hours,
        "practice_hours": level.practice_hours,
        "total_hours": level.total_hours,
    }


def next_level(info: SpecializationInfo, *, level: int, totals: dict[str, int]) -> dict | None:
    """The level after ``level`` with what the totals still lack, or None at the top."""
    following = next((lv for lv in info.levels if lv.number == level + 1), None)
    if following is None or following.number > info.max_level:
        return None
    return {
        "number": following.number,
        "name": following.name,
        "requires": requirements(following),
        "missing": following.missing(
            xp=totals["xp"],
            sessions=totals["sessions"],
            projects=totals["projects"],
            theory=totals["theory_hours"],
            practice=totals["practice_hours"],
        ),
    }


def student_progress(user_id: int) -> list[dict]:
    """Per specialization the student is in: level, totals, licence, the next level."""
    rows = list(
        SpecializationProgress.objects.filter(student_id=user_id)
        .order_by("specialization_id")
        .values("specialization_id", "current_level", *TOTAL_FIELDS.values())
    )
    if not rows:
        return []
    catalogue = all_specializations()
    licences = {
        row["specialization_id"]: row
        for row in UserLicense.objects.filter(user_id=user_id).values(
            "specialization_id", "current_level", "max_achieved_level", "started_at", "is_active"
        )
    }
    out = []
    for row in rows:
        code = row["specialization_id"]
        # (A specialization added since the cache was read: get_specialization reloads it.)
        info = catalogue.get(code) or get_specialization(code, require_active=False)
        level = row["current_level"]
        totals = {name: row[field] for name, field in TOTAL_FIELDS.items()}
        names = {lv.number: lv.name for lv in info.levels}
        licence = licences.get(code)
        out.append(
            {
                "specialization": code,
                "name": info.name,
                "level": level,
                "level_name": names.get(level, ""),
                "max_level": info.max_level,
                "totals": totals,
                "licence": licence
                and {
                    "level": licence["current_level"],
                    "highest_level": licence["max_achieved_level"],
                    "started_at": licence["started_at"],
                    "active": licence["is_active"],
                },
                "next_level": next_level(info, level=level, totals=totals),
            }
        )
    return out


def catalogue() -> list[dict]:
    """Every specialization with its levels as the catalogue holds them, the requirements
    the product does not check included (two queries: they are not in the level cache)."""
    levels: dict[str, list[dict]] = {}
    for level in Level.objects.order_by("specialization_id", "number").values(
        "specialization_id", "number", "name", "name_en", "required_xp", "required_sessions",
        "required_projects", "theory_hours", "practice_hours", "total_hours",
        "unchecked_requirements",
    ):  # fmt: skip
        levels.setdefault(level["specialization_id"], []).append(
            {
                "number": level["number"],
                "name": level["name"],
                "name_en": level["name_en"],
                "requires": requirements(SimpleNamespace(**level)),
                "unchecked_requirements": level["unchecked_requirements"],
            }
        )
    return [
        {
            "code": spec["code"],
            "name": spec["name"],
            "max_level": spec["max_level"],
            "active": spec["is_active"],
            "levels": levels.get(spec["code"], []),
        }
        for spec in Specialization.objects.order_by("code").values(
            "code", "name", "max_level", "is_active"
        )
    ]
