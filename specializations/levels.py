"""Levels follow a catalogue change: a lowered threshold moves qualifying students up.

The catalogue's writers (``load_catalogue``, the admin's background job) call
``follow_catalogue_change`` inside their transaction. It sends
``catalogue_changed``; the receiver in ``licenses/signals.py`` moves the progress
rows and their licences together, set-based, with a licence history row each
(``specializations`` never imports ``licenses``). A raised threshold lowers nobody.
"""

from dataclasses import dataclass, field

from django.db import DEFAULT_DB_ALIAS
from django.dispatch import Signal

from .catalogue import SpecializationInfo

# kwargs: specialization (SpecializationInfo: the catalogue entry as it now stands, or
# would after a dry run's changes), levels (the numbers of the levels that eased or are
# new, for the history's reason), dry_run, using. A receiver returns a LevelsFollowed.
catalogue_changed = Signal()

NOT_FOLLOWED = (
    "specialization={code!r}: no receiver of catalogue_changed answered, so no level followed "
    "the change (is the licenses app installed?); nothing was written"
)


@dataclass(frozen=True, slots=True)
class LevelsFollowed:
    """What following a change did (or, in a dry run, would do) in one specialization."""

    specialization: str
    moved: dict[int, int] = field(default_factory=dict)  # level reached -> students
    # Students whose totals reach a higher level but whose licence was not at their
    # progress level before the change: left for repair (check_sync --repair).
    out_of_sync: int = 0
    dry_run: bool = False

    @property
    def students(self) -> int:
        return sum(self.moved.values())


class CatalogueNotFollowed(RuntimeError):
    def __init__(self, code: str):
        super().__init__(NOT_FOLLOWED.format(code=code))


def follow_catalogue_change(
    info: SpecializationInfo,
    *,
    levels: tuple[int, ...],
    dry_run: bool = False,
    using: str = DEFAULT_DB_ALIAS,
) -> LevelsFollowed:
    """Move every student whose totals now reach a higher level of ``info`` up to it.

    Runs in the caller's transaction. ``levels``: the levels whose change is
    followed (named in the licence history). With ``dry_run`` nothing is
    written and the result says who would move.
    """
    responses = catalogue_changed.send(
        sender=SpecializationInfo, specialization=info, levels=levels, dry_run=dry_run, using=using
    )
    results = [result for _, result in responses if isinstance(result, LevelsFollowed)]
    if not results:
        raise CatalogueNotFollowed(info.code)
    return results[0]


def describe_levels(levels: tuple[int, ...]) -> str:
    """ "level 3", "levels 3, 5" or "levels 2-8" (a run of consecutive numbers)."""
    numbers = sorted(set(levels))
    if len(numbers) == 1:
        return f"level {numbers[0]}"
    if numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 2:
        return f"levels {numbers[0]}-{numbers[-1]}"
    return "levels " + ", ".join(map(str, numbers))
