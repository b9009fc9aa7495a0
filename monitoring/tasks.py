"""Background repairs: the admin queues them, a worker (``manage.py db_worker``) runs them.

A selection larger than SYNC_ADMIN_INLINE_REPAIR_LIMIT pairs, or every matching
case across the pages of the Desync cases list, is not repaired within the
request. ``queue_repair_job`` records the run as *queued* (so its page exists at
once) and enqueues ``repair_job`` with the tasks framework (``TASKS``: the ORM
backend by default, swappable). The job is ``services.repair`` on that run:
single flight (refused, the run ends failed and says by whom), recorded after
every committed batch, ended done, interrupted or failed with the reason.
Arguments are JSON (the tasks framework's rule): the run's id, the staff user's
id, and the selection as explicit keys or as the list's query string.
"""

from __future__ import annotations

import signal

from django.contrib.auth import get_user_model
from django.tasks import task
from django.utils import timezone, translation

from common import runs as common_runs
from common.keyset import keyset_pages
from common.stop import stopped_by_signals
from common.text import Text, gettext_noop
from licenses import consistency
from licenses.services import require_reason
from specializations.exceptions import ProgressionError

from . import runs, selectors, services
from .exceptions import (
    RepairAlreadyRunning,
    RepairClaimBusy,
    RepairInterrupted,
    first_line,
    reason_of,
)
from .models import HealthCheckRun, RunState
from .repair import claim
from .repair.audit import logged_as

JOB_NOT_QUEUED = gettext_noop("could not queue the background job: %(error)s")
USER_GONE = gettext_noop(
    "refused: the staff user (id %(user_id)s) who queued this repair no longer exists"
)
NOT_READ = gettext_noop("could not read the selection: %(error)s")
NOTHING_CHANGED = gettext_noop("refused, nothing was changed: %(error)s")
# Keys per page when every matching case is repaired: each page of the desync view
# is one pass over the join, so pages are large (their memory: BENCHMARKS.md,
# "Figures moved from code comments").
STREAM_CHUNK_SIZE = 10_000


class JobNotQueued(Exception):
    """The task backend refused the job (its store unreachable); the run says so."""


def queue_repair_job(
    *,
    repaired_by,
    specialization: str | None,
    reason: str = "",
    pairs: list[tuple[int, str]] | None = None,
    query: str = "",
) -> HealthCheckRun:
    """Record a queued repair run and enqueue its job; the run's page can follow it at once.

    ``pairs`` are explicit (user id, specialization) keys; without them the job
    repairs what the Desync cases list shows for ``query`` (its filters and search;
    empty: every desync in ``specialization``). A live repair over an overlapping
    scope refuses it here and now (``RepairAlreadyRunning``), nothing queued; one
    that starts meanwhile refuses the job when a worker takes it.
    """
    reason = require_reason(reason)  # bad input is refused before anything is recorded
    holder = selectors.repair_holder(specialization=specialization, now=timezone.now())
    if holder is not None:
        raise RepairAlreadyRunning(selectors.describe_run(holder))
    keys = None if pairs is None else [[user_id, spec] for user_id, spec in pairs]
    run = claim.queue_repair(
        specialization=specialization,
        triggered_by=repaired_by,
        planned=None if keys is None else len(keys),
    )
    try:
        result = repair_job.enqueue(
            run_id=run.pk, user_id=repaired_by.pk, pairs=keys, query=query, reason=reason
        )
    except Exception as exc:
        why = Text(JOB_NOT_QUEUED, error=first_line(exc))
        runs.end_run(run, RunState.FAILED, why)
        raise JobNotQueued(why) from exc
    # An immediate backend has run the job already: set the id alone, not the state.
    HealthCheckRun.objects.filter(pk=run.pk).update(job_id=str(result.id))
    run.refresh_from_db()
    return run


@task
def repair_job(*, run_id: int, user_id: int, pairs: list | None, query: str, reason: str) -> dict:
    """Repair the selection under the queued run ``run_id``; returns the run's outcome."""
    run = HealthCheckRun.objects.get(pk=run_id)
    if run.state != RunState.QUEUED:
        # Ended before a worker took it (refused, or marked failed by hand): nothing to do.
        return _outcome(run)
    staff = get_user_model().objects.filter(pk=user_id).first()
    if staff is None:
        runs.end_run(run, RunState.FAILED, Text(USER_GONE, user_id=user_id))
        return _outcome(run)
    specialization = run.specialization or None
    try:
        keys, planned = _selection(pairs=pairs, query=query, scope=specialization)
        HealthCheckRun.objects.filter(pk=run.pk).update(planned=planned)
    except Exception as exc:
        runs.end_run(run, RunState.FAILED, Text(NOT_READ, error=reason_of(exc)))
        raise
    try:
        # SIGTERM or SIGINT (systemd's stop, Ctrl-C) ends the repair before its next
        # batch; db_worker's own handler still runs (it finishes after this job).
        # Untranslated, as check_sync --repair: what it records (the log entries' names,
        # a refusal's words) is English whatever the worker's LANGUAGE_CODE.
        stop_signals = stopped_by_signals(signal.SIGTERM, signal.SIGINT)
        with translation.override(None), stop_signals as stop:
            services.repair(
                pairs=keys,
                specialization=specialization,
                repaired_by=staff,
                reason=reason,
                options=services.RepairOptions(
                    on_batch=logged_as(staff), queued_run=run, stop=stop
                ),
            )
    except (RepairAlreadyRunning, RepairClaimBusy, RepairInterrupted):
        pass  # the run was ended with the reason (refused, or what stopped it)
    except ProgressionError as exc:
        # Checked before the claim (the reason, the staff user): the run is still queued.
        runs.end_run(run, RunState.FAILED, Text(NOTHING_CHANGED, error=str(exc)))
    except BaseException as exc:
        runs.end_run(run, RunState.FAILED, f"{type(exc).__name__}: {first_line(exc)}")
        raise
    run.refresh_from_db()
    return _outcome(run)


def _selection(*, pairs, query: str, scope: str | None):
    """(keys, how many) for the job: explicit keys, every desync in scope, or the list's cases."""
    if pairs is not None:
        keys = [(int(user_id), str(spec)) for user_id, spec in pairs]
        return keys, len(keys)
    if not query:
        # Everything in scope: repair streams the violations itself (keyset ranges).
        return None, consistency.count_pairs(specialization=scope).inconsistent
    cases = selectors.desync_cases(query).values_list("user_id", "specialization_id")
    return keyset_pages(cases, size=STREAM_CHUNK_SIZE), cases.count()


def _outcome(run: HealthCheckRun) -> dict:
    return {
        "run": run.pk,
        "state": run.state,
        "reason": run.state_reason,
        "examined": run.examined,
        "repaired": run.repaired,
        "skipped_locked": run.skipped_locked,
    }


def job_status(run: HealthCheckRun) -> str:
    """The task backend's status of the run's job ("" when the backend cannot tell)."""
    return common_runs.job_status(repair_job, run.job_id)
