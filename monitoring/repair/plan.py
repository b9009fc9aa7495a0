"""What repair does to a pair, and what it reports: the rule, the actions, the counts.

Rules (DESIGN.md): the lower side moves up to the higher level, a missing row
is created from the one that exists, ``max_achieved_level`` never decreases,
every licence level change writes a LicenseProgression row naming who (empty:
the system) and why.
"""

from collections import Counter
from dataclasses import dataclass, field

from django.db import models

from licenses import consistency


class Action(models.TextChoices):
    """What repair does to a pair: the value in JSON and code, the label for people."""

    RAISE_LICENSE = "raise_license", "raise licence"
    RAISE_PROGRESS = "raise_progress", "raise progress"
    CREATE_LICENSE = "create_license", "create licence"
    CREATE_PROGRESS = "create_progress", "create progress"


RAISE_LICENSE = Action.RAISE_LICENSE
RAISE_PROGRESS = Action.RAISE_PROGRESS
CREATE_LICENSE = Action.CREATE_LICENSE
CREATE_PROGRESS = Action.CREATE_PROGRESS

REASONS = {
    RAISE_LICENSE: "Repair: licence raised to the progress level",
    CREATE_LICENSE: "Repair: missing licence created from progress",
}
ACTIONS_SAMPLE = 1000
SKIPPED_SAMPLE = 100

Key = tuple[int, str]


@dataclass(frozen=True, slots=True)
class RepairAction:
    user_id: int
    specialization_id: str
    kind: str
    action: str
    progress_level: int | None
    license_level: int | None
    target_level: int

    def as_dict(self) -> dict:
        return {
            "user_id": self.user_id,
            "specialization_id": self.specialization_id,
            "kind": self.kind,
            "action": self.action,
            "progress_level": self.progress_level,
            "license_level": self.license_level,
            "target_level": self.target_level,
        }


@dataclass(slots=True)
class RepairReport:
    dry_run: bool
    examined: int = 0
    repaired: int = 0
    skipped: int = 0  # already in sync when re-checked under the lock
    skipped_locked: int = 0  # left: another transaction held their rows
    by_kind: Counter = field(default_factory=Counter)
    actions: list[RepairAction] = field(default_factory=list)  # capped sample
    skipped_sample: list[Key] = field(default_factory=list)  # capped sample of the locked
    duration_ms: int = 0
    run: object = None  # the HealthCheckRun (None: an unrecorded dry run)
    check: object = None  # the HealthReport of the check after the repair

    @property
    def complete(self) -> bool:
        return not self.skipped_locked

    def add(self, batch: "BatchResult", *, examined: int) -> None:
        self.examined += examined
        self.repaired += len(batch.actions)
        self.skipped += batch.in_sync
        self.by_kind.update(a.kind for a in batch.actions)
        room = ACTIONS_SAMPLE - len(self.actions)
        self.actions.extend(batch.actions[:room])

    def as_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "examined": self.examined,
            "repaired": self.repaired,
            "skipped": self.skipped,
            "skipped_locked": self.skipped_locked,
            "skipped_sample": [list(key) for key in self.skipped_sample],
            "by_kind": dict(self.by_kind),
            "duration_ms": self.duration_ms,
            "run": self.run.pk if self.run else None,
        }


@dataclass(slots=True)
class BatchResult:
    actions: list[RepairAction] = field(default_factory=list)
    locked: list[Key] = field(default_factory=list)  # to retry: a row was held by another
    in_sync: int = 0

    def __iadd__(self, other: "BatchResult") -> "BatchResult":
        self.actions += other.actions
        self.locked += other.locked
        self.in_sync += other.in_sync
        return self


def plan(state: consistency.PairState) -> RepairAction | None:
    """What repair would do to a pair in this state (None: nothing to do)."""
    p, lic = state.progress_level, state.license_level
    if state.kind == consistency.MISSING_LICENSE:
        action, target = CREATE_LICENSE, p
    elif state.kind == consistency.MISSING_PROGRESS:
        action, target = CREATE_PROGRESS, lic
    elif state.kind == consistency.LEVEL_MISMATCH:
        action, target = (RAISE_LICENSE, p) if p > lic else (RAISE_PROGRESS, lic)
    else:
        return None
    return RepairAction(state.user_id, state.specialization_id, state.kind, action, p, lic, target)


def plan_batch(keys: list[Key], *, hints: dict | None) -> BatchResult:
    """A dry run's batch: what would change, nothing written."""
    states = hints if hints is not None else consistency.classify(keys)
    actions = [a for key in keys if (s := states.get(key)) and (a := plan(s))]
    return BatchResult(actions=actions, in_sync=len(keys) - len(actions))
