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
    theory_hours: int
    practice_hours: int
    total_hours: int

    def is_met(self, *, xp: int, sessions: int, theory: int, practice: int) -> bool:
        return (
            xp >= self.required_xp
            and sessions >= self.required_sessions
            and theory >= self.theory_hours
            and practice >= self.practice_hours
            and theory + practice >= self.total_hours
        )


@dataclass(frozen=True, slots=True)
class SpecializationInfo:
    code: str
    name: str
    max_level: int
    is_active: bool
    levels: tuple[LevelRequirement, ...]  # ordered by number, starting at 1

    def level_for(self, *, current: int, xp: int, sessions: int, theory: int, practice: int) -> int:
        """The level these totals reach: never below ``current``, in order, capped at max_level."""
        level = current
        for requirement in self.levels:
            if requirement.number <= level:
                continue
            if requirement.number != level + 1 or requirement.number > self.max_level:
                break
            if not requirement.is_met(xp=xp, sessions=sessions, theory=theory, practice=practice):
                break
            level = requirement.number
        return level


_lock = threading.Lock()
_cache: dict[str, SpecializationInfo] | None = None
_loaded_at = 0.0


def _load() -> dict[str, SpecializationInfo]:
    """The whole catalogue in one query (a LEFT JOIN: a specialization without levels stays)."""
    from .models import Specialization

    specializations: dict[str, dict] = {}
    levels: dict[str, list[LevelRequirement]] = {}
    rows = Specialization.objects.order_by("code", "levels__number").values(
        "code",
        "name",
        "max_level",
        "is_active",
        "levels__number",
        "levels__name",
        "levels__required_xp",
        "levels__required_sessions",
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
