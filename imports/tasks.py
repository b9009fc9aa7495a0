"""Imports as background jobs: the admin queues them, a worker (``manage.py db_worker``) runs them.

``queue_file_import`` keeps the upload in storage, ``queue_source_import`` reads the
configured source (IMPORTS_SOURCE_URL, never a URL from the browser); each records
the run as queued, so its page exists at once, and enqueues ``import_job`` with the
tasks framework (``TASKS``: the ORM backend by default), as background repairs are
(monitoring/tasks.py). The job calls the commands' own functions, ``import_progress``
and ``import_source``, with a ``Reporter`` as their progress callback; the run ends
done, failed (a refused file or source, an unreachable source: nothing written) or
interrupted (a signal, before anything is written). The job's one argument is the
run's id: the source URL, which holds a password, is read by the worker from its
settings. An interrupted run can be queued again (``run_again``): the imports are
idempotent, so a run that died halfway is simply run again.
"""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path

from django.db import transaction
from django.tasks import task
from django.utils import timezone

from common import runs as common_runs
from common.stop import stopped_by_signals
from monitoring.exceptions import first_line
from monitoring.models import RunState
from specializations.exceptions import ProgressionError

from . import runs
from .conf import app_settings
from .exceptions import ImportRefused, _without_password
from .models import ImportKind, ImportRun
from .progress_import import import_progress
from .source_import import import_source

JOB_NOT_QUEUED = "could not queue the background job: {error}"
NOT_STORED = "could not store the upload: {error}"
NOT_CONFIGURED = "no source database is configured (IMPORTS_SOURCE_URL)"
NOT_POSTGRESQL = "IMPORTS_SOURCE_URL={url!r} is not a PostgreSQL URL (postgresql://user@host/name)"
NOT_INTERRUPTED = "run {run} is {state}: only an interrupted run can be run again"
UPLOAD_GONE = "run {run} no longer holds its uploaded file: upload it again"
NOT_UTF8 = "the file is not UTF-8 text (byte 0x{byte:02x}): save it as UTF-8 and upload it again"
REFUSED_FILE = "refused: bad lines: {count} of {lines}; nothing was written"
UNKNOWN_CODES = "stopped: specializations {codes} are not in the catalogue; nothing was written"
INVALID_ROWS = "stopped: invalid source rows: {count}; nothing was written"
STOPPED_REPORTING = "no report since {since} UTC: its worker stopped; {taken_over}"
SHOWN_PROBLEMS = 100  # a source's invalid rows kept with the run (the file keeps its own 100)


class ImportNotQueued(Exception):
    """The import was not queued (no source configured, the task backend refused, ...)."""


def source_url() -> str:
    """The configured source database, or ``ImportNotQueued`` saying why there is none."""
    url = app_settings.IMPORTS_SOURCE_URL.strip()
    if not url:
        raise ImportNotQueued(NOT_CONFIGURED)
    if not url.startswith(("postgres://", "postgresql://")):
        raise ImportNotQueued(NOT_POSTGRESQL.format(url=_without_password(url)))
    return url


def queue_file_import(*, upload, ledger_source: str, dry_run: bool, triggered_by) -> ImportRun:
    """Keep ``upload`` in storage and queue its import under ``ledger_source``."""
    try:
        stored = runs.store_upload(upload)
    except OSError as exc:  # a full disk, a folder the web server may not write
        raise ImportNotQueued(NOT_STORED.format(error=exc)) from exc
    try:
        run = _create(
            kind=ImportKind.FILE,
            file_name=Path(upload.name).name[:255],
            stored_file=stored,
            ledger_source=ledger_source,
            dry_run=dry_run,
            triggered_by=triggered_by,
        )
    except BaseException:
        runs.import_storage().delete(stored)
        raise
    return _enqueue(run)


def queue_source_import(*, dry_run: bool, skip_invalid: bool, triggered_by) -> ImportRun:
    """Queue an import of the configured source database."""
    url = source_url()
    run = _create(
        kind=ImportKind.SOURCE,
        source_database=_without_password(url)[:500],
        dry_run=dry_run,
        skip_invalid=skip_invalid,
        triggered_by=triggered_by,
    )
    return _enqueue(run)


def run_again(run: ImportRun, *, triggered_by) -> ImportRun:
    """Queue an interrupted run's import again, with its options and its upload.

    A run that stopped reporting (its worker killed) is marked interrupted here, naming
    the run that takes over; its upload moves to the new run.
    """
    with transaction.atomic():
        old = ImportRun.objects.select_for_update().get(pk=run.pk)
        state = runs.read_state(old)
        if state != RunState.INTERRUPTED:
            raise ImportNotQueued(NOT_INTERRUPTED.format(run=old.pk, state=state))
        if old.kind == ImportKind.FILE and not old.stored_file:
            raise ImportNotQueued(UPLOAD_GONE.format(run=old.pk))
        options = {
            "kind": old.kind,
            "file_name": old.file_name,
            "stored_file": old.stored_file,
            "ledger_source": old.ledger_source,
            "dry_run": old.dry_run,
            "skip_invalid": old.skip_invalid,
        }
        if old.kind == ImportKind.SOURCE:
            options["source_database"] = _without_password(source_url())[:500]
        new = _create(triggered_by=triggered_by, **options)
        ended = {"stored_file": ""}
        if old.state != RunState.INTERRUPTED:  # running, but silent: its worker is gone
            ended.update(
                state=RunState.INTERRUPTED,
                state_reason=STOPPED_REPORTING.format(
                    since=f"{old.updated_at:%Y-%m-%d %H:%M:%S}",
                    taken_over=runs.TAKEN_OVER.format(run=new.pk),
                ),
                finished_at=timezone.now(),
            )
        ImportRun.objects.filter(pk=old.pk).update(**ended)
    return _enqueue(new)


def _create(**fields) -> ImportRun:
    now = timezone.now()
    return ImportRun.objects.create(state=RunState.QUEUED, queued_at=now, updated_at=now, **fields)


def _enqueue(run: ImportRun) -> ImportRun:
    try:
        result = import_job.enqueue(run_id=run.pk)
    except Exception as exc:
        why = JOB_NOT_QUEUED.format(error=first_line(exc))
        runs.end_run(run, RunState.FAILED, why)
        runs.delete_upload(run)
        raise ImportNotQueued(why) from exc
    # An immediate backend has run the job already: set the id alone, not the state.
    ImportRun.objects.filter(pk=run.pk).update(job_id=str(result.id))
    run.refresh_from_db()
    return run


@task
def import_job(*, run_id: int) -> dict:
    """Run the import of the queued run ``run_id``; returns the run's outcome."""
    run = ImportRun.objects.get(pk=run_id)
    if not runs.start_run(run):
        return _outcome(run)  # ended before a worker took it (taken over, or failed to queue)
    reporter = runs.Reporter(run)
    keep_upload = False
    try:
        # SIGTERM or SIGINT (systemd's stop, Ctrl-C) stops the import at its next batch
        # read, before it writes; db_worker's own handler still runs (it exits afterwards).
        with stopped_by_signals(signal.SIGTERM, signal.SIGINT) as stop:
            reporter.stop = stop
            with reporter:
                report, refusal = _import(run, reporter)
    except runs.ImportStopped as exc:
        keep_upload = True  # for Run again
        runs.end_run(run, RunState.INTERRUPTED, str(exc), read=reporter.read)
    except (KeyboardInterrupt, SystemExit) as exc:
        keep_upload = True
        why = f"stopped ({type(exc).__name__})"
        runs.end_run(run, RunState.INTERRUPTED, why, read=reporter.read)
        raise
    except (ImportRefused, ImportNotQueued, ProgressionError, OSError, UnicodeDecodeError) as exc:
        runs.end_run(run, RunState.FAILED, _failure(exc), read=reporter.read)
    except BaseException as exc:
        runs.end_run(run, RunState.FAILED, f"{type(exc).__name__}: {first_line(exc)}")
        raise
    else:
        state = RunState.FAILED if refusal else RunState.DONE
        runs.end_run(run, state, refusal, report=report, read=reporter.read)
    finally:
        if not keep_upload:
            runs.delete_upload(run)
    return _outcome(run)


def _import(run: ImportRun, reporter: runs.Reporter) -> tuple[dict, str]:
    """The import itself: (its report as JSON, the refusal or "")."""
    if run.kind == ImportKind.FILE:
        with runs.local_file(run.stored_file) as path:
            planned = count_lines(path)
            ImportRun.objects.filter(pk=run.pk).update(planned=planned)
            report = import_progress(
                path,
                source=run.ledger_source or None,
                dry_run=run.dry_run,
                on_progress=reporter.lines,
            )
        reporter.read = {"lines": report.lines}
        refusal = (
            REFUSED_FILE.format(count=report.bad_count, lines=report.lines)
            if report.bad_count
            else ""
        )
        return dataclasses.asdict(report), refusal
    report = import_source(
        source_url(),
        dry_run=run.dry_run,
        skip_invalid=run.skip_invalid,
        on_progress=reporter.rows,
    )
    data = dataclasses.asdict(report)
    data["problems_count"] = len(data["problems"])
    data["problems"] = data["problems"][:SHOWN_PROBLEMS]
    data["stopped"] = report.stopped
    refusal = ""
    if report.unknown_specializations:
        refusal = UNKNOWN_CODES.format(codes=", ".join(report.unknown_specializations))
    elif report.stopped:
        refusal = INVALID_ROWS.format(count=len(report.problems))
    return data, refusal


def count_lines(path: Path) -> int:
    """About how many events the file holds, for the progress bar: its lines (a CSV's
    header left out); blank lines and quoted line breaks make it an estimate."""
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1
    if path.suffix.lower() == ".csv" and lines:
        lines -= 1
    return lines


def _failure(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return NOT_UTF8.format(byte=exc.object[exc.start])
    return str(exc) or type(exc).__name__


def _outcome(run: ImportRun) -> dict:
    return {"run": run.pk, "state": run.state, "reason": run.state_reason}


def job_status(run: ImportRun) -> str:
    """The task backend's status of the run's job ("" when the backend cannot tell)."""
    return common_runs.job_status(import_job, run.job_id)
