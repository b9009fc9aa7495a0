"""The repair loop behind ``services.repair``: claim, batches, retries, the check after, record.

One sequence for every entry point (``check_sync``, the admin, a background
job): the run is claimed before the first write, reports in every committed
batch, and ends done (with the check that follows), interrupted or failed.
Whatever stops it, what its batches committed is kept and counted once.
"""

import itertools
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from django.db import DatabaseError, OperationalError

from common.stop import STOPPED_BY
from common.text import Text, gettext_noop
from licenses.consistency import PairState
from licenses.planner import LOCK_NOT_AVAILABLE

from .. import runs
from ..exceptions import REPAIR_TIMED_OUT, RepairInterrupted, RunTakenOver, first_line, reason_of
from ..models import RunKind, RunState
from . import batch, claim
from .options import RepairOptions
from .plan import SKIPPED_SAMPLE, BatchResult, Key, RepairReport, plan_batch

# SQLSTATEs of a lock wait that ran out (lock_timeout) or a deadlock the server broke.
LOCK_FAILURES = {LOCK_NOT_AVAILABLE, "40P01"}
SINGLES_BELOW = 32  # a failing piece this small is retried pair by pair
CHECK_AFTER_FAILED = gettext_noop("the check after the repair: %(error)s")
STOPPED_BY_CTRL_C = gettext_noop("stopped (KeyboardInterrupt)")
STOPPED_BY_EXIT = gettext_noop("stopped (SystemExit %(code)s)")


class _OutOfTime(Exception):
    pass


class _StopAsked(Exception):
    """``stop()`` gave a reason (a signal: ``common/stop.py``): stop before the next batch."""

    def __init__(self, why: Text | str):
        super().__init__(why)
        self.why = why


def _lock_failure(exc: BaseException) -> bool:
    return getattr(exc.__cause__, "pgcode", None) in LOCK_FAILURES


def _keys_and_hints(items: list) -> tuple[list[Key], dict | None]:
    """Violations from the stream carry their state (a plan to lock by); plain keys do not."""
    if items and isinstance(items[0], PairState):
        hints = {(v.user_id, v.specialization_id): v for v in items}
        return list(hints), hints
    return list(dict.fromkeys(items)), None  # a pair listed twice is repaired once


def _batch(keys, *, hints, examined: int, **batch_options) -> BatchResult:
    """One batch; when a lock wait ran out, the same pairs in smaller pieces.

    The piece holding the pair someone else keeps locked fails again (after at
    most one more lock timeout) and is split down to single pairs; a single
    pair that still fails is left as locked. The others are repaired.
    """
    try:
        return batch.repair_batch(keys, hints=hints, examined=examined, **batch_options)
    except OperationalError as exc:
        if not _lock_failure(exc):
            raise
    if len(keys) == 1:
        return BatchResult(locked=list(keys))
    size = 1 if len(keys) <= SINGLES_BELOW else math.isqrt(len(keys))
    result = BatchResult()
    for start in range(0, len(keys), size):
        piece = keys[start : start + size]
        result += _batch(piece, hints=None, examined=examined if start == 0 else 0, **batch_options)
    return result


def repair_and_record(
    keys: Iterable,
    *,
    specialization: str | None,
    dry_run: bool,
    repaired_by,
    reason: str,
    options: RepairOptions,
    check: Callable,
) -> RepairReport:
    """Claim (a dry run: record), repair ``keys`` batch by batch, check, record the end.

    ``options`` come resolved (``RepairOptions.resolved``): every limit is set.
    """
    started = time.perf_counter()
    timeout, lock_timeout, batch_size = options.timeout, options.lock_timeout, options.batch_size
    deadline = started + timeout if timeout else None
    report = RepairReport(dry_run=dry_run)
    if dry_run:
        run = None
        if options.record:
            run = runs.start_run(
                kind=RunKind.REPAIR,
                specialization=specialization,
                dry_run=True,
                triggered_by=repaired_by,
                thresholds=options.thresholds,
            )
    else:
        run = claim.claim_repair(
            specialization=specialization,
            triggered_by=repaired_by,
            thresholds=options.thresholds,
            queued=options.queued_run,
        )
    report.run = run
    batch_options = {
        "repaired_by": repaired_by,
        "reason": reason,
        "on_batch": options.on_batch,
        "run": run,
        "lock_timeout": lock_timeout,
    }

    def one(batch_keys, hints, examined) -> BatchResult:
        if dry_run:
            result = plan_batch(batch_keys, hints=hints)
            if run is not None:
                claim.report_batch(run, repaired=0, examined=examined)
            return result
        return _batch(batch_keys, hints=hints, examined=examined, **batch_options)

    try:
        items, pending = iter(keys), []
        while True:
            if deadline is not None and time.perf_counter() >= deadline:
                raise _OutOfTime
            if options.stop is not None and (why := options.stop()):
                raise _StopAsked(why)
            # Inside the try: fetching the next page of keys can fail like a batch.
            batch_keys, hints = _keys_and_hints(list(itertools.islice(items, batch_size)))
            if not batch_keys:
                break
            result = one(batch_keys, hints, len(batch_keys))
            report.add(result, examined=len(batch_keys))
            pending += result.locked
            if options.on_progress:
                options.on_progress(report.examined)
        pending = _retry_locked(pending, one, report, lock_timeout, deadline, batch_size)
    except BaseException as exc:
        report.duration_ms = round((time.perf_counter() - started) * 1000)
        _stopped(exc, run, report, timeout)
        raise
    report.skipped_locked, report.skipped_sample = len(pending), pending[:SKIPPED_SAMPLE]
    report.duration_ms = round((time.perf_counter() - started) * 1000)
    left = {"skipped_locked": report.skipped_locked, "skipped_sample": report.skipped_sample}
    try:
        if run is not None:  # a report before the check, which may take up to its timeout
            claim.report_batch(run, repaired=0, examined=0)
        after = check()
    except BaseException as exc:
        runs.end_run(run, RunState.FAILED, Text(CHECK_AFTER_FAILED, error=reason_of(exc)), **left)
        raise
    if run is not None:
        runs.finish_run(run, check=after, **left)
    report.check = replace(after, run=run)
    return report


def _retry_locked(pending, one, report, lock_timeout, deadline, batch_size) -> list[Key]:
    """Pairs skipped because another transaction held a row: tried again for up to
    ``lock_timeout`` (SKIP LOCKED each time, so a student's update never queues behind us)."""
    window = time.monotonic() + lock_timeout
    delay = 0.05
    while pending:
        remaining = window - time.monotonic()
        if remaining <= 0 or (deadline is not None and time.perf_counter() >= deadline):
            break
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.5)
        retry, pending = pending, []
        for start in range(0, len(retry), batch_size):
            result = one(retry[start : start + batch_size], None, 0)
            report.add(result, examined=0)
            pending += result.locked
    return pending


def _stopped(exc: BaseException, run, report: RepairReport, timeout) -> None:
    """Record why the loop stopped; turn an interruption into RepairInterrupted."""
    left = {"skipped_locked": report.skipped_locked}
    if isinstance(exc, RunTakenOver):
        raise RepairInterrupted(report.repaired, exc.message) from exc  # already marked
    if isinstance(exc, _OutOfTime):
        why = Text(REPAIR_TIMED_OUT, value=f"{timeout:g}")
        runs.end_run(run, RunState.INTERRUPTED, why, **left)
        raise RepairInterrupted(report.repaired, why) from None
    if isinstance(exc, _StopAsked):
        runs.end_run(run, RunState.INTERRUPTED, exc.why, **left)
        raise RepairInterrupted(report.repaired, exc.why) from None
    if isinstance(exc, DatabaseError):
        why = first_line(exc)
        runs.end_run(run, RunState.INTERRUPTED, why, **left)
        # This batch rolled back; the ones before it are committed and stay.
        raise RepairInterrupted(report.repaired, why) from exc
    if isinstance(exc, KeyboardInterrupt):  # Ctrl-C
        why = Text(STOPPED_BY, signal=str(exc)) if str(exc) else Text(STOPPED_BY_CTRL_C)
        runs.end_run(run, RunState.INTERRUPTED, why, **left)
        raise RepairInterrupted(report.repaired, why) from exc
    if isinstance(exc, SystemExit):
        runs.end_run(run, RunState.INTERRUPTED, Text(STOPPED_BY_EXIT, code=exc.code), **left)
        return
    runs.end_run(run, RunState.FAILED, f"{type(exc).__name__}: {first_line(exc)}", **left)
