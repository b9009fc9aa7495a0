"""Loading catalogue files: every specialization and level they hold, in one transaction.

``load_catalogue`` compares the files (``catalogue_files``) with the database,
writes what differs (nothing when nothing does) and lets the levels of students
follow every level that eased (``levels.follow_catalogue_change``), all or
nothing. A dry run plans the same and writes nothing.
"""

from dataclasses import dataclass, field

from django.db import DEFAULT_DB_ALIAS, transaction

from .catalogue import clear_cache
from .catalogue_files import LevelEntry, SpecializationEntry, read_paths
from .exceptions import LEVELS_HELD, CatalogueError
from .levels import LevelsFollowed, follow_catalogue_change
from .models import Level, Specialization, SpecializationProgress

# Level fields a file sets, by the name the file gives them (what the output shows).
LEVEL_FIELDS = {
    "name": "name",
    "name_en": "name_en",
    "description": "description",
    "required_xp": "xp_required",
    "required_sessions": "required_sessions",
    "required_projects": "required_projects",
    "theory_hours": "requirements.theory_hours",
    "practice_hours": "requirements.practice_hours",
    "total_hours": "requirements.total_hours",
    "unchecked_requirements": "requirements (not checked)",
    "license_title": "license_title",
    "extra": "other keys",
}
# The requirements level_for checks: lowering one (or adding a level) moves students up.
CHECKED_FIELDS = (
    "required_xp",
    "required_sessions",
    "required_projects",
    "theory_hours",
    "practice_hours",
    "total_hours",
)
SPECIALIZATION_FIELDS = {
    "name": "name",
    "description": "description",
    "is_active": "is_active",
    "max_level": "levels",
    "extra": "other keys",
}

Changes = dict[str, tuple[object, object]]  # shown name -> (old, new)


@dataclass(slots=True)
class SpecializationPlan:
    entry: SpecializationEntry
    created: bool
    changes: Changes = field(default_factory=dict)
    levels_added: list[LevelEntry] = field(default_factory=list)
    levels_changed: list[tuple[LevelEntry, Changes]] = field(default_factory=list)
    levels_removed: list[int] = field(default_factory=list)
    followed: LevelsFollowed | None = None

    @property
    def code(self) -> str:
        return self.entry.code

    @property
    def changed(self) -> bool:
        return bool(
            self.created
            or self.changes
            or self.levels_added
            or self.levels_changed
            or self.levels_removed
        )

    @property
    def eased(self) -> tuple[int, ...]:
        """Levels above 1 that are new or ask less of a checked requirement than before."""
        checked = {LEVEL_FIELDS[name] for name in CHECKED_FIELDS}
        numbers = {level.number for level in self.levels_added}
        numbers |= {
            level.number
            for level, changes in self.levels_changed
            if any(new < old for name, (old, new) in changes.items() if name in checked)
        }
        return tuple(sorted(n for n in numbers if n > 1))


@dataclass(frozen=True, slots=True)
class LoadReport:
    dry_run: bool
    plans: list[SpecializationPlan]

    @property
    def changed(self) -> bool:
        return any(plan.changed for plan in self.plans)

    @property
    def notes(self) -> list[str]:
        return [note for plan in self.plans for note in plan.entry.notes]


def load_catalogue(paths, *, dry_run: bool = False, using: str = DEFAULT_DB_ALIAS) -> LoadReport:
    """Create or update every specialization the files hold; raises CatalogueError, writing
    nothing, at the first problem."""
    entries = read_paths(paths)
    codes = [entry.code for entry in entries]
    with transaction.atomic(using=using):
        # Locked: a second load or an admin edit of these specializations waits for this one.
        existing = {
            spec.code: spec
            for spec in Specialization.objects.using(using)
            .select_for_update()
            .filter(code__in=codes)
        }
        levels: dict[str, dict[int, Level]] = {code: {} for code in codes}
        for level in Level.objects.using(using).filter(specialization_id__in=codes):
            levels[level.specialization_id][level.number] = level
        plans = [_plan(entry, existing.get(entry.code), levels[entry.code]) for entry in entries]
        for plan in plans:
            _refuse_held_levels(plan, using=using)
        if not dry_run:
            _write(plans, existing, levels, using=using)
        for plan in plans:
            if plan.eased and not plan.created:
                spec = existing[plan.code]
                active = spec.is_active if plan.entry.is_active is None else plan.entry.is_active
                plan.followed = follow_catalogue_change(
                    plan.entry.info(is_active=active),
                    levels=plan.eased,
                    dry_run=dry_run,
                    using=using,
                )
        if not dry_run and any(plan.changed for plan in plans):
            clear_cache(using=using)
    return LoadReport(dry_run=dry_run, plans=plans)


def _plan(
    entry: SpecializationEntry, spec: Specialization | None, levels: dict[int, Level]
) -> SpecializationPlan:
    plan = SpecializationPlan(entry=entry, created=spec is None)
    if spec is None:
        plan.levels_added = list(entry.levels)
        return plan
    wanted = _specialization_values(entry, spec)
    plan.changes = {
        SPECIALIZATION_FIELDS[name]: (getattr(spec, name), value)
        for name, value in wanted.items()
        if getattr(spec, name) != value
    }
    for level in entry.levels:
        current = levels.get(level.number)
        if current is None:
            plan.levels_added.append(level)
            continue
        changes = {
            LEVEL_FIELDS[name]: (getattr(current, name), value)
            for name, value in _level_values(level, current).items()
            if getattr(current, name) != value
        }
        if changes:
            plan.levels_changed.append((level, changes))
    plan.levels_removed = sorted(number for number in levels if number > len(entry.levels))
    return plan


def _specialization_values(entry: SpecializationEntry, spec: Specialization | None) -> dict:
    values = {
        "name": entry.name,
        "description": entry.description,
        "max_level": len(entry.levels),
        "extra": entry.extra,
    }
    if entry.is_active is not None:
        values["is_active"] = entry.is_active
    elif spec is None:
        values["is_active"] = True
    return values


def _level_values(level: LevelEntry, current: Level | None) -> dict:
    values = {
        name: getattr(level, name)
        for name in LEVEL_FIELDS
        if name not in ("license_title", "extra", "unchecked_requirements")
    }
    values["unchecked_requirements"] = level.unchecked_requirements
    values["extra"] = level.extra
    if level.license_title is not None:
        values["license_title"] = level.license_title
    elif current is None:
        values["license_title"] = level.name  # a title for a new level: its name
    return values


def _refuse_held_levels(plan: SpecializationPlan, *, using: str) -> None:
    """A file with fewer levels may not take away a level a student's progress is at."""
    if not plan.levels_removed:
        return
    top = len(plan.entry.levels)
    held = (
        SpecializationProgress.objects.using(using)
        .filter(specialization_id=plan.code, current_level__gt=top)
        .count()
    )
    if held:
        message = LEVELS_HELD.format(
            number=top + 1, students=held, top=top, max_level=max(plan.levels_removed)
        )
        raise CatalogueError(plan.entry.path, message, field="levels")


def _write(plans, existing: dict, levels: dict, *, using: str) -> None:
    created = [plan for plan in plans if plan.created]
    Specialization.objects.using(using).bulk_create(
        Specialization(code=plan.code, **_specialization_values(plan.entry, None))
        for plan in created
    )
    for plan in plans:
        if plan.changes:
            spec = existing[plan.code]
            values = _specialization_values(plan.entry, spec)
            for name, value in values.items():
                setattr(spec, name, value)
            spec.save(using=using, update_fields=list(values))
        if plan.levels_removed:
            Level.objects.using(using).filter(
                specialization_id=plan.code, number__in=plan.levels_removed
            ).delete()
    Level.objects.using(using).bulk_create(
        Level(specialization_id=plan.code, number=level.number, **_level_values(level, None))
        for plan in plans
        for level in plan.levels_added
    )
    changed, fields = [], set()
    for plan in plans:
        for level, _ in plan.levels_changed:
            current = levels[plan.code][level.number]
            for name, value in _level_values(level, current).items():
                if getattr(current, name) != value:
                    setattr(current, name, value)
                    fields.add(name)
            changed.append(current)
    if changed:
        Level.objects.using(using).bulk_update(changed, sorted(fields))
