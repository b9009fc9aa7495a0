"""How a repair runs: its limits, its record and the caller's hooks, in one frozen value.

What a repair changes, for whom and why are ``services.repair``'s own arguments
(``specialization``, ``pairs``, ``dry_run``, ``repaired_by``, ``reason``);
everything else is a ``RepairOptions``. A value given here is checked when the
options are made; one left out comes from the settings (``monitoring.conf``,
which checks them as they are read) when the repair starts (``resolved``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..conf import app_settings
from ..exceptions import BadBatchSize, BadLockTimeout, BadTimeout
from ..health import Thresholds
from ..limits import REPAIR_BATCH_SIZE, REPAIR_LOCK_TIMEOUT, SECONDS, within

if TYPE_CHECKING:
    from common.text import Text

    from ..models import HealthCheckRun
    from .plan import RepairAction


@dataclass(frozen=True, slots=True)
class RepairOptions:
    """Every field may be left out.

    ``batch_size``: pairs per batch transaction (default SYNC_REPAIR_BATCH_SIZE).
    ``lock_timeout``: the longest any lock wait may take, in seconds (default
    SYNC_REPAIR_LOCK_TIMEOUT); rows others hold are skipped, not waited for.
    ``timeout``: seconds (0/None: no limit) after which the repair stops between
    batches with ``RepairInterrupted``, what was committed kept; it also bounds
    the check after. ``thresholds``: for that check (default: the settings').
    ``record=False`` applies to dry runs only: a repair that writes is always
    recorded, its run is its claim. ``queued_run``: a background job's run
    (``claim.queue_repair``), which becomes the claim instead of a new run.
    ``on_batch(actions)`` runs inside each batch's transaction (the admin log's
    entries commit with the batch); ``on_progress(examined)`` after each batch;
    ``stop()``, asked before every batch, returns a reason to stop there.
    """

    batch_size: int | None = None
    lock_timeout: float | None = None
    timeout: float | None = None
    thresholds: Thresholds | None = None
    record: bool = True
    queued_run: HealthCheckRun | None = None
    on_batch: Callable[[list[RepairAction]], None] | None = None
    on_progress: Callable[[int], None] | None = None
    stop: Callable[[], Text | str | None] | None = None

    def __post_init__(self):
        if self.batch_size is not None and not within(
            self.batch_size, REPAIR_BATCH_SIZE, whole=True
        ):
            raise BadBatchSize(self.batch_size)
        if self.lock_timeout is not None and not within(self.lock_timeout, REPAIR_LOCK_TIMEOUT):
            raise BadLockTimeout(self.lock_timeout)
        if self.timeout is not None and not within(self.timeout, SECONDS):
            raise BadTimeout(self.timeout)

    def resolved(self) -> RepairOptions:
        """These options with every limit left out read from the settings (checked there)."""
        return replace(
            self,
            batch_size=_or(self.batch_size, app_settings.SYNC_REPAIR_BATCH_SIZE),
            lock_timeout=_or(self.lock_timeout, app_settings.SYNC_REPAIR_LOCK_TIMEOUT),
            thresholds=self.thresholds or Thresholds.from_settings(),
        )


def _or(given, setting):
    return setting if given is None else given
