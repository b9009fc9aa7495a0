"""The level catalogue, read from the database once per process and cached.

Every level check goes through here, so a progress update costs no catalogue
query. Saving or deleting a Specialization or Level clears the cache
(receivers in apps.py); other processes pick a change up within
``SYNC_CATALOGUE_CACHE_SECONDS``.
"""

import threading
import time
from dataclasses import dataclass

from django.db import transaction

from .conf import app_settings
from .exceptions import InactiveSpecialization, UnknownSpecialization


@dataclass(frozen=True, slots=True)
class LevelRequirement:
    number: int
    name: str
    required_xp: int
    required_sessions: int
    required_projects: int
    theory_hours: int
    practice_hours: int
    total_hours: int

    def is_met(self, *, xp: int, sessions: int, projects: int, theory: int, practice: int) -> bool:
        return (
            xp >= self.required_xp
            and sessions >= self.required_sessions
            and projects >= self.required_projects
            and theory >= self.theory_hours
            and practice >= self.practice_hours
            and theory + practice >= self.total_hours
        )

    def missing(
        self, *, xp: int, sessions: int, projects: int, theory: int, practice: int
    ) -> dict[str, int]:
        """What these totals still lack for this level, by requirement ({} when it is met)."""
        lacking = {
            "xp": self.required_xp - xp,
            "sessions": self.required_sessions - sessions,
            "projects": self.required_projects - projects,
            "theory_hours": self.theory_hours - theory,
            "practice_hours": self.practice_hours - practice,
            "total_hours": self.total_hours - (theory + practice),
        }
        return {name: amount for name, amount in lacking.items() if amount > 0}

    def met_sql(self, alias: str) -> tuple[str, list[int]]:
        """``is_met`` over a progress row ``alias`` in SQL (TRUE when nothing is required)."""
        terms = [
            (f"{alias}.total_xp", self.required_xp),
            (f"{alias}.completed_sessions", self.required_sessions),
            (f"{alias}.completed_projects", self.required_projects),
            (f"{alias}.theory_hours_completed", self.theory_hours),
            (f"{alias}.practice_hours_completed", self.practice_hours),
            (
                f"{alias}.theory_hours_completed + {alias}.practice_hours_completed",
                self.total_hours,
            ),
        ]
        # Totals are never negative (check constraints): a zero requirement is always met.
        wanted = [(column, amount) for column, amount in terms if amount > 0]
        if not wanted:
            return "TRUE", []
        return " AND ".join(f"{column} >= %s" for column, _ in wanted), [a for _, a in wanted]


@dataclass(frozen=True, slots=True)
class SpecializationInfo:
    code: str
    name: str
    max_level: int
    is_active: bool
    levels: tuple[LevelRequirement, ...]  # ordered by number, starting at 1

    def level_for(
        self, *, current: int, xp: int, sessions: int, projects: int, theory: int, practice: int
    ) -> int:
        """The level these totals reach: never below ``current``, in order, capped at max_level."""
        level = current
        for requirement in self.levels:
            if requirement.number <= level:
                continue
            if requirement.number != level + 1 or requirement.number > self.max_level:
                break
            if not requirement.is_met(
                xp=xp, sessions=sessions, projects=projects, theory=theory, practice=practice
            ):
                break
            level = requirement.number
        return level

    @property
    def top_level(self) -> int:
        """The highest level a student can reach: the highest one defined up to max_level."""
        return max((r.number for r in self.levels if r.number <= self.max_level), default=1)

    def level_sql(self, alias: str) -> tuple[str, list[int]]:
        """``level_for`` in SQL over the progress row ``alias``: one CASE, no join.

        Level by level upwards from 2: the first one above the row's current level
        that its totals miss, or that is missing from the catalogue, stops it one
        below; a row stopped by none reaches ``top_level``. Never below the current
        level.
        """
        current = f"{alias}.current_level"
        defined = {requirement.number: requirement for requirement in self.levels}
        whens, params = [], []
        for number in range(2, self.top_level + 1):
            if number not in defined:
                whens.append(f"WHEN {current} < %s THEN %s")
                params += [number, number - 1]
                continue
            met, met_params = defined[number].met_sql(alias)
            if met != "TRUE":
                whens.append(f"WHEN {current} < %s AND NOT ({met}) THEN %s")
                params += [number, *met_params, number - 1]
        whens.append(f"WHEN {current} > %s THEN {current} ELSE %s")  # SQLite has no GREATEST
        params += [self.top_level, self.top_level]
        return f"CASE {' '.join(whens)} END", params


_lock = threading.Lock()
_cache: dict[str, SpecializationInfo] | None = None
_loaded_at = 0.0


def _load(*, codes=None, using=None) -> dict[str, SpecializationInfo]:
    """The whole catalogue (or ``codes``) in one query (a LEFT JOIN: a specialization
    without levels stays)."""
    from .models import Specialization

    specializations: dict[str, dict] = {}
    levels: dict[str, list[LevelRequirement]] = {}
    rows = Specialization.objects.using(using)
    if codes is not None:
        rows = rows.filter(code__in=codes)
    rows = rows.order_by("code", "levels__number").values(
        "code",
        "name",
        "max_level",
        "is_active",
        "levels__number",
        "levels__name",
        "levels__required_xp",
        "levels__required_sessions",
        "levels__required_projects",
        "levels__theory_hours",
        "levels__practice_hours",
        "levels__total_hours",
    )
    for row in rows:
        code = row["code"]
        specializations.setdefault(code, row)
        levels.setdefault(code, [])
        if row["levels__number"] is not None:
            levels[code].append(
                LevelRequirement(
                    number=row["levels__number"],
                    name=row["levels__name"],
                    required_xp=row["levels__required_xp"],
                    required_sessions=row["levels__required_sessions"],
                    required_projects=row["levels__required_projects"],
                    theory_hours=row["levels__theory_hours"],
                    practice_hours=row["levels__practice_hours"],
                    total_hours=row["levels__total_hours"],
                )
            )
    return {
        code: SpecializationInfo(
            code=code,
            name=spec["name"],
            max_level=spec["max_level"],
            is_active=spec["is_active"],
            levels=tuple(levels[code]),
        )
        for code, spec in specializations.items()
    }


def read_specialization(code: str, *, using: str | None = None) -> SpecializationInfo:
    """One entry as the database holds it now, bypassing the cache (for writers)."""
    found = _load(codes=[code], using=using)
    if code not in found:
        raise UnknownSpecialization(code, all_specializations())
    return found[code]


def all_specializations() -> dict[str, SpecializationInfo]:
    global _cache, _loaded_at
    ttl = app_settings.SYNC_CATALOGUE_CACHE_SECONDS
    with _lock:
        if _cache is None or time.monotonic() - _loaded_at > ttl:
            _cache, _loaded_at = _load(), time.monotonic()
        return _cache


def _forget() -> None:
    global _cache
    with _lock:
        _cache = None


def clear_cache(*, using: str | None = None, **_signal_kwargs) -> None:
    """Drop the cache now and, for a catalogue write in a transaction, again on commit.

    Between the write and its commit another thread may reload the old rows;
    the second clear keeps that stale copy from outliving the commit.
    """
    _forget()
    if using is not None:
        transaction.on_commit(_forget, using=using)


def get_specialization(code: str, *, require_active: bool = True) -> SpecializationInfo:
    """The catalogue entry for ``code``; raises UnknownSpecialization / InactiveSpecialization."""
    catalogue = all_specializations()
    if not isinstance(code, str) or code not in catalogue:
        # A stale cache must not reject a specialization added since: reload once.
        clear_cache()
        catalogue = all_specializations()
        if not isinstance(code, str) or code not in catalogue:
            raise UnknownSpecialization(code, catalogue)
    info = catalogue[code]
    if require_active and not info.is_active:
        raise InactiveSpecialization(code)
    return info
