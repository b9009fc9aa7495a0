"""How far an import run has got, for its admin page and the page's JSON poll.

One reading of a run for both (the panel: common/templates/admin/run_progress.html):
what it has read (a file's lines of about how many; a source's rows per table), the
rate, the time left, and one line saying what is happening: waiting for a worker,
reading, checking and writing, done, interrupted or failed with the reason. A run
whose worker stopped reporting reads as interrupted, as a repair's does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from common.runs import PanelRow, count_text, duration_text, of_text
from monitoring import selectors
from monitoring.models import RunState
from monitoring.progress import FINISHED, WORKER_HINT

from .models import ImportKind, ImportRun

# The replaced system's tables, as staff call them (the order import_source reads them).
TABLE_LABELS = {
    "users": _("users"),
    "specialization_progress": _("progress rows"),
    "user_licenses": _("licences"),
    "license_progressions": _("history rows"),
}


@dataclass(frozen=True, slots=True)
class ImportProgress:
    run: int
    state: str  # as readers take it: a silent running run reads as interrupted
    state_label: str
    finished: bool
    waiting: bool  # queued, no worker has started it yet
    stalled: bool  # waiting (or silent) for longer than a worker should take
    done: int  # lines (a file) or rows (a source) read
    total: int | None  # about how many lines the file holds (None: a source, or not counted)
    rate: float | None  # lines or rows per second since it started
    seconds_left: float | None
    message: str
    read_text: str
    rate_text: str
    left_text: str
    job_status: str  # the task backend's view of the job ("" when it cannot tell)

    @property
    def rows(self) -> list[PanelRow]:
        """The panel's figures (common/templates/admin/run_progress.html)."""
        return [
            PanelRow("state", gettext("state"), self.state_label),
            PanelRow("read", gettext("read"), self.read_text),
            PanelRow("rate", gettext("rate"), self.rate_text),
            PanelRow("left", gettext("time left"), self.left_text),
        ]

    def as_dict(self) -> dict:
        return {
            "run": self.run,
            "state": self.state,
            "state_label": self.state_label,
            "finished": self.finished,
            "waiting": self.waiting,
            "stalled": self.stalled,
            "done": self.done,
            "total": self.total,
            "rate": self.rate,
            "seconds_left": self.seconds_left,
            "message": self.message,
            "job_status": self.job_status,
            "texts": {row.key: row.text for row in self.rows},
        }


def run_progress(run: ImportRun, *, now: datetime, job_status: str = "") -> ImportProgress:
    state = selectors.run_state(run, now=now)
    finished = state in FINISHED
    waiting = state == RunState.QUEUED
    file = run.kind == ImportKind.FILE
    done = sum(run.read.values())
    total = run.planned if file else None
    rate = left = None
    if run.started_at is not None:
        end = run.finished_at if finished and run.finished_at else run.updated_at
        elapsed = (end - run.started_at).total_seconds()
        rate = done / elapsed if done and elapsed > 0 else None
    if state == RunState.RUNNING and rate and total is not None and done < total:
        left = (total - done) / rate
    stalled = False
    if waiting:
        waited = (now - run.queued_at).total_seconds()
        stalled = waited > selectors.interrupted_after() or job_status == "FAILED"
        message = _waiting(run, waited=waited, job_status=job_status)
    elif state == RunState.RUNNING:
        message = _running(run, done=done, total=total)
    else:
        stalled = state != run.state  # read as interrupted: it stopped reporting
        message = outcome(run, state=state)
    if file:
        read_text = of_text(done, total)
        rate_text = gettext("%(rate)s lines/s") % {"rate": count_text(round(rate))} if rate else "-"
    else:
        read_text = read_tables(run.read) or "-"
        rate_text = gettext("%(rate)s rows/s") % {"rate": count_text(round(rate))} if rate else "-"
    return ImportProgress(
        run=run.pk,
        state=state,
        state_label=str(RunState(state).label),
        finished=finished,
        waiting=waiting,
        stalled=stalled,
        done=done,
        total=total,
        rate=None if rate is None else round(rate, 1),
        seconds_left=None if left is None else round(left, 1),
        message=message,
        read_text=read_text,
        rate_text=rate_text,
        left_text=duration_text(left) if left is not None else "-",
        job_status=job_status,
    )


def read_tables(read: dict[str, int]) -> str:
    """Rows read per source table: "users: 9, progress rows: 5"."""
    return ", ".join(
        f"{TABLE_LABELS.get(table, table)}: {count_text(count)}" for table, count in read.items()
    )


def _waiting(run: ImportRun, *, waited: float, job_status: str) -> str:
    since = f"{run.queued_at:%Y-%m-%d %H:%M:%S} UTC"
    if job_status == "FAILED":
        return gettext(
            "Queued since %(since)s, but its job failed before the import started; %(hint)s"
        ) % {"since": since, "hint": WORKER_HINT}
    if waited > selectors.interrupted_after():
        return gettext(
            "Queued since %(since)s: no worker has started it for %(waited)s; %(hint)s"
        ) % {"since": since, "waited": duration_text(waited), "hint": WORKER_HINT}
    return gettext("Waiting for a worker (queued since %(since)s).") % {"since": since}


def _running(run: ImportRun, *, done: int, total: int | None) -> str:
    if run.kind == ImportKind.FILE:
        if total is None or done < total:
            return gettext("Reading the file: %(done)s lines.") % {"done": of_text(done, total)}
        if run.dry_run:
            return gettext(
                "All %(lines)s lines read; checking them (dry run: nothing is written)."
            ) % {"lines": count_text(done)}
        return gettext(
            "All %(lines)s lines read; checking them and writing them in one transaction."
        ) % {"lines": count_text(done)}
    if not run.read:
        return gettext("Connecting to the source database.")
    if run.dry_run:
        return gettext(
            "Reading the source database (%(read)s); the check follows (dry run: nothing is"
            " written)."
        ) % {"read": read_tables(run.read)}
    return gettext(
        "Reading the source database (%(read)s); the check and the writing follow, in one"
        " transaction."
    ) % {"read": read_tables(run.read)}


def outcome(run: ImportRun, *, state: str) -> str:
    """What a finished run ended with, in one line."""
    report = run.report or {}
    if state == RunState.INTERRUPTED:
        if state != run.state:
            return gettext(
                "Interrupted: no report since %(since)s UTC (more than %(limit)s s): its worker"
                " stopped. An import writes all or nothing; run it again."
            ) % {
                "since": f"{run.updated_at:%Y-%m-%d %H:%M:%S}",
                "limit": selectors.interrupted_after(),
            }
        return gettext("Interrupted: %(reason)s. Nothing was written; run it again.") % {
            "reason": run.state_reason or gettext("no reason recorded")
        }
    if state == RunState.FAILED:
        return _refusal(report) or gettext("Failed: %(reason)s. Nothing was written.") % {
            "reason": run.state_reason or gettext("no reason recorded")
        }
    if run.kind == ImportKind.FILE:
        counts = {
            "events": count_text(report.get("events", 0)),
            "lines": count_text(report.get("lines", 0)),
            "replays": count_text(report.get("replays", 0)),
        }
        if run.dry_run:
            return (
                gettext(
                    "Dry run done: %(events)s new events in %(lines)s lines (%(replays)s already"
                    " recorded); nothing was written."
                )
                % counts
            )
        return (
            gettext(
                "Done: %(events)s new events imported from %(lines)s lines (%(replays)s already"
                " recorded)."
            )
            % counts
        )
    if run.dry_run:
        return gettext(
            "Dry run done: nothing was written; the report below says what an import would do."
        )
    return gettext("Done: imported; the report below says what changed.")


def _refusal(report: dict) -> str:
    """Why the import refused its input, from its report ("" when it did not)."""
    if report.get("bad_count"):
        count = report["bad_count"]
        return ngettext(
            "Refused: %(count)s problem in %(lines)s lines, listed below; nothing was written.",
            "Refused: %(count)s problems in %(lines)s lines, listed below; nothing was written.",
            count,
        ) % {"count": count_text(count), "lines": count_text(report.get("lines", 0))}
    if report.get("unknown_specializations"):
        return gettext(
            "Stopped: the source's specializations %(codes)s are not in the catalogue. Load the"
            " catalogue first (manage.py load_catalogue); nothing was written."
        ) % {"codes": ", ".join(report["unknown_specializations"])}
    if report.get("stopped"):
        count = report.get("problems_count", 0)
        return ngettext(
            "Stopped: %(count)s invalid source row, listed below; nothing was written. Fix it at"
            " the source, or import the rest with “skip invalid rows”.",
            "Stopped: %(count)s invalid source rows, listed below; nothing was written. Fix them"
            " at the source, or import the rest with “skip invalid rows”.",
            count,
        ) % {"count": count_text(count)}
    return ""
