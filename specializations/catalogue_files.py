"""The replaced system's catalogue files: one JSON object per specialization.

``read_paths`` reads and checks them (no database); ``to_file`` writes a
catalogue entry back in the same shape. docs/catalogue.md describes the format.

Checked by the product (``LevelRequirement.is_met``): ``xp_required``,
``required_sessions``, ``required_projects`` and, under ``requirements``,
``theory_hours``, ``practice_hours`` and ``total_hours``; an absent one is 0.
Every other requirement is kept with its level as *not checked*. Every other key
is kept as loaded (``extra``); a key this module does not know is also reported.
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .catalogue import LevelRequirement, SpecializationInfo
from .exceptions import (
    DUPLICATE_CODE,
    DUPLICATE_LEVEL,
    EMPTY_TEXT,
    MISSING_FIELD,
    MISSING_LEVEL,
    NO_FILES,
    NO_LEVELS,
    NOT_A_BOOLEAN,
    NOT_A_CODE,
    NOT_A_WHOLE_NUMBER,
    NOT_AN_OBJECT,
    NOT_JSON,
    NOT_READABLE,
    NOT_TEXT,
    XP_FALLS,
    CatalogueError,
)
from .models import CODE_FORMAT, CODE_PATTERN, Level, Specialization

# Keys read into columns.
TOP_KEYS = ("id", "name", "description", "is_active", "levels")
LEVEL_KEYS = (
    "level",
    "name",
    "name_en",
    "description",
    "xp_required",
    "required_sessions",
    "required_projects",
    "requirements",
    "license_title",
)
# Checked requirements under "requirements", by the Level field that holds each.
CHECKED_REQUIREMENTS = {
    "theory_hours": "theory_hours",
    "practice_hours": "practice_hours",
    "total_hours": "total_hours",
}
# Keys the replaced system's files are known to carry: kept (not used), not reported.
KNOWN_TOP_EXTRAS = (
    "min_age",
    "color_theme",
    "icon",
    "age_groups",
    "start_date",
    "end_date",
    "cost_credits",
    "enrollment_rules",
    "features",
)
KNOWN_LEVEL_EXTRAS = ("xp_max", "belt_color", "belt_name", "age_group", "license_color")
KNOWN_UNCHECKED = (
    "min_age",
    "skills",
    "mandatory_courses",
    "exam_pass_percentage",
    "mentoring_months",
    "project_types",
)
MAX_AMOUNT = 2_147_483_647  # PositiveIntegerField
MAX_LEVEL_NUMBER = 32_767  # PositiveSmallIntegerField
UNKNOWN_KEY = "{where}: unknown key {key!r} kept as loaded (not used by the product)"


@dataclass(frozen=True, slots=True)
class LevelEntry:
    number: int
    name: str
    name_en: str
    description: str
    required_xp: int
    required_sessions: int
    required_projects: int
    theory_hours: int
    practice_hours: int
    total_hours: int
    license_title: str | None  # None: not in the file
    unchecked_requirements: dict
    extra: dict

    def requirement(self) -> LevelRequirement:
        return LevelRequirement(
            number=self.number,
            name=self.name,
            required_xp=self.required_xp,
            required_sessions=self.required_sessions,
            required_projects=self.required_projects,
            theory_hours=self.theory_hours,
            practice_hours=self.practice_hours,
            total_hours=self.total_hours,
        )


@dataclass(frozen=True, slots=True)
class SpecializationEntry:
    path: str
    code: str
    name: str
    description: str
    is_active: bool | None  # None: not in the file
    extra: dict
    levels: tuple[LevelEntry, ...]  # numbered 1..n, in order
    notes: tuple[str, ...] = field(default=())  # unknown keys, kept and reported

    def info(self, *, is_active: bool = True) -> SpecializationInfo:
        """The catalogue entry these levels make (what level_for and its SQL read)."""
        return SpecializationInfo(
            code=self.code,
            name=self.name,
            max_level=len(self.levels),
            is_active=is_active,
            levels=tuple(level.requirement() for level in self.levels),
        )


def catalogue_files(paths) -> list[Path]:
    """The files named: a directory means every ``*.json`` directly in it, sorted."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob("*.json"))
            if not found:
                raise CatalogueError(path, NO_FILES)
            files += found
        else:
            files.append(path)
    return files


def read_paths(paths) -> list[SpecializationEntry]:
    """Every named file, read and checked; the first problem raises CatalogueError."""
    entries: dict[str, SpecializationEntry] = {}
    for path in catalogue_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogueError(path, NOT_READABLE.format(error=exc)) from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CatalogueError(path, NOT_JSON.format(error=exc)) from exc
        entry = parse(data, path=str(path))
        if entry.code in entries:
            other = entries[entry.code].path
            raise CatalogueError(path, DUPLICATE_CODE.format(value=entry.code, other=other))
        entries[entry.code] = entry
    return list(entries.values())


def parse(data, *, path: str) -> SpecializationEntry:
    """One file's object, checked: the first problem raises CatalogueError."""
    if not isinstance(data, dict):
        raise CatalogueError(path, NOT_AN_OBJECT.format(field="file", found=_kind(data)))
    code = data.get("id")
    if code is None:
        raise CatalogueError(path, MISSING_FIELD.format(field="id"), field="id")
    if not isinstance(code, str) or not _is_code(code):
        raise CatalogueError(
            path, NOT_A_CODE.format(field="id", value=code, expected=CODE_FORMAT), field="id"
        )
    notes = [
        UNKNOWN_KEY.format(where=path, key=key)
        for key in data
        if key not in TOP_KEYS and key not in KNOWN_TOP_EXTRAS
    ]
    name = _text(data, "name", path=path, model=Specialization, required=True)
    description = _text(data, "description", path=path, model=Specialization)
    is_active = data.get("is_active")
    if is_active is not None and not isinstance(is_active, bool):
        raise CatalogueError(path, NOT_A_BOOLEAN.format(field="is_active", value=is_active))
    raw_levels = data.get("levels")
    if not isinstance(raw_levels, list) or not raw_levels:
        raise CatalogueError(path, NO_LEVELS.format(found=_kind(raw_levels)), field="levels")
    levels = [_level(raw, path=path, notes=notes) for raw in raw_levels]
    levels = _in_order(levels, path=path)
    return SpecializationEntry(
        path=path,
        code=code,
        name=name,
        description=description,
        is_active=is_active,
        extra={key: value for key, value in data.items() if key not in TOP_KEYS},
        levels=tuple(levels),
        notes=tuple(notes),
    )


def _level(raw, *, path: str, notes: list[str]) -> LevelEntry:
    if not isinstance(raw, dict):
        raise CatalogueError(path, NOT_AN_OBJECT.format(field="levels[]", found=_kind(raw)))
    if "level" not in raw:
        raise CatalogueError(path, MISSING_FIELD.format(field="level"), field="level")
    number = _whole(raw, "level", path=path, level=None, minimum=1, maximum=MAX_LEVEL_NUMBER)
    where = {"path": path, "level": number}
    requirements = raw.get("requirements")
    if requirements is None:
        requirements = {}
    if not isinstance(requirements, dict):
        raise CatalogueError(
            path,
            NOT_AN_OBJECT.format(field="requirements", found=_kind(requirements)),
            level=number,
            field="requirements",
        )
    place = f"{path}: level {number}"
    notes += [
        UNKNOWN_KEY.format(where=place, key=key)
        for key in raw
        if key not in LEVEL_KEYS and key not in KNOWN_LEVEL_EXTRAS
    ]
    notes += [
        UNKNOWN_KEY.format(where=f"{place}: requirements", key=key)
        for key in requirements
        if key not in CHECKED_REQUIREMENTS and key not in KNOWN_UNCHECKED
    ]
    hours = {
        name: _whole(requirements, key, **where, field=f"requirements.{key}")
        for key, name in CHECKED_REQUIREMENTS.items()
    }
    title = raw.get("license_title")
    return LevelEntry(
        number=number,
        name=_text(raw, "name", **where, model=Level, required=True),
        name_en=_text(raw, "name_en", **where, model=Level),
        description=_text(raw, "description", **where, model=Level),
        required_xp=_whole(raw, "xp_required", **where),
        required_sessions=_whole(raw, "required_sessions", **where),
        required_projects=_whole(raw, "required_projects", **where),
        license_title=None if title is None else _text(raw, "license_title", **where, model=Level),
        unchecked_requirements={
            key: value for key, value in requirements.items() if key not in CHECKED_REQUIREMENTS
        },
        extra={key: value for key, value in raw.items() if key not in LEVEL_KEYS},
        **hours,
    )


def _in_order(levels: list[LevelEntry], *, path: str) -> list[LevelEntry]:
    """Levels 1..n, each once; required XP never falls as the level rises."""
    by_number: dict[int, LevelEntry] = {}
    for level in levels:
        if level.number in by_number:
            raise CatalogueError(
                path,
                DUPLICATE_LEVEL.format(value=level.number),
                level=level.number,
                field="level",
            )
        by_number[level.number] = level
    top = max(by_number)
    for number in range(1, top + 1):
        if number not in by_number:
            found = ", ".join(map(str, sorted(by_number)))
            raise CatalogueError(
                path, MISSING_LEVEL.format(number=number, top=top, found=found), field="levels"
            )
    ordered = [by_number[number] for number in range(1, top + 1)]
    for previous, level in zip(ordered, ordered[1:], strict=False):
        if level.required_xp < previous.required_xp:
            message = XP_FALLS.format(
                value=level.required_xp,
                previous=previous.number,
                previous_value=previous.required_xp,
            )
            raise CatalogueError(path, message, level=level.number, field="xp_required")
    return ordered


def _whole(data: dict, key: str, *, path, level, field=None, minimum=0, maximum=MAX_AMOUNT) -> int:
    """A whole number (absent or null: 0); true/false and 2.5 are refused."""
    value = data.get(key)
    value = 0 if value is None else value
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        name = field or key
        message = NOT_A_WHOLE_NUMBER.format(
            field=name, value=value, minimum=minimum, maximum=maximum
        )
        raise CatalogueError(path, message, level=level, field=name, value=value)
    return value


def _text(data: dict, key: str, *, path, model, level=None, required=False) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    max_length = model._meta.get_field(key).max_length
    if value is None:
        raise CatalogueError(path, MISSING_FIELD.format(field=key), level=level, field=key)
    if not isinstance(value, str) or (max_length and len(value) > max_length):
        message = NOT_TEXT.format(field=key, value=value, max_length=max_length or "any")
        raise CatalogueError(path, message, level=level, field=key, value=value)
    if required and not value.strip():
        raise CatalogueError(path, EMPTY_TEXT.format(field=key), level=level, field=key)
    return value


def _is_code(value: str) -> bool:
    return re.search(CODE_PATTERN, value) is not None


def _kind(value) -> str:
    if value == []:
        return "an empty list"
    return {dict: "an object", list: "a list", str: "text", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def to_file(specialization: Specialization, levels) -> dict:
    """A catalogue entry in the file format (what ``parse`` reads back unchanged)."""
    data = {"id": specialization.code, "name": specialization.name}
    if specialization.description:
        data["description"] = specialization.description
    if not specialization.is_active:
        data["is_active"] = False
    data.update(specialization.extra)
    data["levels"] = [_level_to_file(level) for level in levels]
    return data


def _level_to_file(level: Level) -> dict:
    data = {"level": level.number, "name": level.name}
    if level.name_en:
        data["name_en"] = level.name_en
    if level.description:
        data["description"] = level.description
    data["xp_required"] = level.required_xp
    data["required_sessions"] = level.required_sessions
    data["required_projects"] = level.required_projects
    requirements = {"theory_hours": level.theory_hours, "practice_hours": level.practice_hours}
    if level.total_hours:
        requirements["total_hours"] = level.total_hours
    data["requirements"] = {**requirements, **level.unchecked_requirements}
    if level.license_title != level.name:
        data["license_title"] = level.license_title
    data.update(level.extra)
    return data
