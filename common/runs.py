"""What the pages of background runs share (a repair's, an import's): their texts and jobs.

A run's page shows its progress in one panel (templates/admin/run_progress.html)
from the app's own reading of the run: counts, "done of total" and durations as
the active language writes them (1,234 / 1 234), one row per figure, and the task
backend's view of the run's job when no worker has reported yet.
"""

from dataclasses import dataclass

from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils.formats import number_format
from django.utils.translation import gettext


@dataclass(frozen=True, slots=True)
class PanelRow:
    """One figure of the progress panel: ``key`` names its cell (``run-progress-<key>``)."""

    key: str
    label: str
    text: str


def count_text(value: int) -> str:
    """A count as the active language writes it (1,234 / 1 234)."""
    return number_format(value, force_grouping=True)


def of_text(done: int, total: int | None) -> str:
    if total is None:
        return count_text(done)
    return gettext("%(done)s of %(total)s") % {"done": count_text(done), "total": count_text(total)}


def duration_text(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return gettext("%(s)s s") % {"s": seconds}
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return gettext("%(min)s min %(s)02d s") % {"min": minutes, "s": seconds}
    hours, minutes = divmod(minutes, 60)
    return gettext("%(h)s h %(min)02d min") % {"h": hours, "min": minutes}


def job_status(task, job_id: str) -> str:
    """The task backend's status of ``task``'s job ``job_id`` ("" when it cannot tell)."""
    backend = task.get_backend()
    if not job_id or not backend.supports_get_result:
        return ""
    try:
        return str(backend.get_result(job_id).status)
    except TaskResultDoesNotExist:
        return "MISSING"
