"""How far a repair run has got, for its admin page and the page's JSON poll.

One reading of a run for both: done / total, rate, time left, and one line
saying what is happening (waiting for a worker, repairing, checking the result,
done, interrupted or failed with the reason). A background job that no worker
has started within SYNC_RUN_INTERRUPTED_AFTER_SECONDS says so, and so does one
whose job failed before it could report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils.formats import number_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from common.runs import PanelRow, count_text, duration_text, of_text

from . import selectors
from .models import HealthCheckRun, RunState

FINISHED = {RunState.DONE, RunState.INTERRUPTED, RunState.FAILED}
WORKER_HINT = _("is the worker running? (manage.py db_worker; academy-worker.service)")


@dataclass(frozen=True, slots=True)
class RunProgress:
    run: int
    state: str  # as readers take it: a silent running run reads as interrupted
    state_label: str
    finished: bool
    waiting: bool  # queued, no worker has started it yet
    stalled: bool  # waiting (or silent) for longer than a worker should take
    done: int  # pairs looked at
    total: int | None  # pairs asked for (None: not counted yet)
    repaired: int
    skipped_locked: int
    rate: float | None  # pairs per second since the repair started
    seconds_left: float | None
    message: str
    done_text: str
    repaired_text: str
    rate_text: str
    left_text: str
    job_status: str  # the task backend's view of the job ("" when it cannot tell)

    @property
    def rows(self) -> list[PanelRow]:
        """The panel's figures (common/templates/admin/run_progress.html)."""
        return [
            PanelRow("state", gettext("state"), self.state_label),
            PanelRow("done", gettext("done"), self.done_text),
            PanelRow("repaired", gettext("repaired"), self.repaired_text),
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
            "repaired": self.repaired,
            "skipped_locked": self.skipped_locked,
            "rate": self.rate,
            "seconds_left": self.seconds_left,
            "message": self.message,
            "done_text": self.done_text,
            "repaired_text": self.repaired_text,
            "rate_text": self.rate_text,
            "left_text": self.left_text,
            "job_status": self.job_status,
            "texts": {row.key: row.text for row in self.rows},
        }


def run_progress(run: HealthCheckRun, *, now: datetime, job_status: str = "") -> RunProgress:
    state = selectors.run_state(run, now=now)
    finished = state in FINISHED
    waiting = state == RunState.QUEUED
    total = run.planned
    end = run.finished_at if finished and run.finished_at else run.updated_at
    elapsed = (end - run.started_at).total_seconds() if not waiting else 0.0
    rate = run.examined / elapsed if run.examined and elapsed > 0 else None
    left = None
    if state == RunState.RUNNING and rate and total is not None:
        left = max(0, total - run.examined) / rate
    stalled = False
    if waiting:
        waited = (now - (run.queued_at or run.started_at)).total_seconds()
        stalled = waited > selectors.interrupted_after() or job_status == "FAILED"
        message = _waiting(run, waited=waited, job_status=job_status)
    elif state == RunState.RUNNING:
        message = _running(run, total=total)
    else:
        stalled = state != run.state  # read as interrupted: it stopped reporting
        message = _outcome(run, state=state)
    return RunProgress(
        run=run.pk,
        state=state,
        state_label=str(RunState(state).label),
        finished=finished,
        waiting=waiting,
        stalled=stalled,
        done=run.examined,
        total=total,
        repaired=run.repaired,
        skipped_locked=run.skipped_locked,
        rate=None if rate is None else round(rate, 1),
        seconds_left=None if left is None else round(left, 1),
        message=message,
        done_text=of_text(run.examined, total),
        repaired_text=count_text(run.repaired),
        rate_text="-"
        if rate is None
        else gettext("%(rate)s pairs/s") % {"rate": count_text(round(rate))},
        left_text=duration_text(left) if left is not None else "-",
        job_status=job_status,
    )


def _waiting(run: HealthCheckRun, *, waited: float, job_status: str) -> str:
    since = f"{(run.queued_at or run.started_at):%Y-%m-%d %H:%M:%S} UTC"
    if job_status == "FAILED":
        return gettext(
            "Queued since %(since)s, but its job failed before the repair started; %(hint)s"
        ) % {"since": since, "hint": WORKER_HINT}
    if waited > selectors.interrupted_after():
        return gettext(
            "Queued since %(since)s: no worker has started it for %(waited)s; %(hint)s"
        ) % {"since": since, "waited": duration_text(waited), "hint": WORKER_HINT}
    return gettext("Waiting for a worker (queued since %(since)s).") % {"since": since}


def _running(run: HealthCheckRun, *, total: int | None) -> str:
    if total is None:
        return gettext("Counting the cases to repair.")
    if run.examined >= total:
        return gettext("Repaired %(repaired)s; checking the result.") % {
            "repaired": count_text(run.repaired)
        }
    return gettext("Repairing: %(done)s pairs looked at, %(repaired)s repaired.") % {
        "done": of_text(run.examined, total),
        "repaired": count_text(run.repaired),
    }


def _outcome(run: HealthCheckRun, *, state: str) -> str:
    if state == RunState.DONE:
        in_sync = max(0, run.examined - run.repaired - run.skipped_locked)
        locked = (
            gettext(", %(locked)s left: locked by another transaction (run it again)")
            % {"locked": count_text(run.skipped_locked)}
            if run.skipped_locked
            else ""
        )
        check = ""
        if run.status:
            check = " " + gettext(
                "Check after: %(status)s, %(rate)s%% consistent, %(left)s desync(s) left."
            ) % {
                "status": str(run.get_status_display()).lower(),
                "rate": number_format(f"{run.consistency_rate:.2f}", decimal_pos=2),
                "left": count_text(run.inconsistent),
            }
        return (
            gettext("Done: repaired %(repaired)s, %(in_sync)s already in sync%(locked)s.")
            % {
                "repaired": count_text(run.repaired),
                "in_sync": count_text(in_sync),
                "locked": locked,
            }
            + check
        )
    if state == RunState.INTERRUPTED and state != run.state:
        return gettext(
            "Interrupted: no report since %(since)s UTC (more than %(limit)s s)."
            " %(repaired)s repaired before it stopped are kept."
        ) % {
            "since": f"{run.updated_at:%Y-%m-%d %H:%M:%S}",
            "limit": selectors.interrupted_after(),
            "repaired": count_text(run.repaired),
        }
    kept = (
        " "
        + gettext("%(repaired)s repaired before it stopped are kept.")
        % {"repaired": count_text(run.repaired)}
        if run.repaired
        else ""
    )
    reason = run.shown_reason or gettext("no reason recorded")
    return f"{RunState(state).label}: {reason}.{kept}"
