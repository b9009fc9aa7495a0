"""Contention: many workers calling ``update_progress`` on the same few students.

Each worker has its own database connection, closed when it ends. Workers are
processes by default (forked after ``django.setup()``, as gunicorn's workers
are), or threads of this process with ``BENCH_WORKERS=threads``, where they
also share one GIL with each other. Import after ``django.setup()``.
"""

import multiprocessing
import random
import statistics
import threading
import time

from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.db.models import Count, Sum

from licenses import consistency
from licenses.models import LicenseProgression
from specializations.ledger import check_ledger
from specializations.models import SpecializationProgress
from specializations.services import update_progress

from .data import SPECS


def _is_deadlock(exc: BaseException) -> bool:
    while exc is not None:
        if "deadlock detected" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _totals(student_ids: list[int]) -> dict:
    return SpecializationProgress.objects.filter(student_id__in=student_ids).aggregate(
        xp=Sum("total_xp"),
        sessions=Sum("completed_sessions"),
        theory=Sum("theory_hours_completed"),
        practice=Sum("practice_hours_completed"),
        rows=Count("id"),
    )


def _worker(number, students, seconds, barrier, out, stop=None) -> None:
    """Calls for ``seconds``, or until ``stop`` (an Event) is set."""
    rng = random.Random(number)
    latencies, errors, deadlocks = [], [], 0
    added = {"xp": 0, "sessions": 0, "theory": 0, "practice": 0, "level_ups": 0}
    try:
        barrier.wait()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            student, spec = rng.choice(students), rng.choice(SPECS)
            amounts = {
                "xp_gained": rng.randint(500, 3000),
                "sessions_completed": 1,
                "theory_hours": rng.randint(0, 3),
                "practice_hours": rng.randint(0, 4),
            }
            start = time.perf_counter()
            try:
                result = update_progress(student, spec, **amounts)
            except Exception as exc:  # counted and reported, never hidden
                deadlocks += _is_deadlock(exc)
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            latencies.append(time.perf_counter() - start)
            added["xp"] += amounts["xp_gained"]
            added["sessions"] += 1
            added["theory"] += amounts["theory_hours"]
            added["practice"] += amounts["practice_hours"]
            added["level_ups"] += result.new_level != result.old_level
    finally:
        connection.close()
        out[number] = {"latencies": latencies, "errors": errors, "deadlocks": deadlocks, **added}


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def process_worker(number, students, seconds, barrier, queue, stop=None) -> None:
    out: dict[int, dict] = {}
    _worker(number, students, seconds, barrier, out, stop)
    queue.put(out[number])


def _run_processes(workers, users, seconds) -> tuple[dict, float]:
    context = multiprocessing.get_context("fork")
    barrier, queue = context.Barrier(workers + 1), context.Queue()
    connections.close_all()  # a forked child must open its own connection
    processes = [
        context.Process(target=process_worker, args=(number, users, seconds, barrier, queue))
        for number in range(workers)
    ]
    for process in processes:
        process.start()
    barrier.wait()
    started = time.perf_counter()
    results = [queue.get() for _ in processes]
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join()
    return dict(enumerate(results)), elapsed


def _run_threads(workers, users, seconds) -> tuple[dict, float]:
    out: dict[int, dict] = {}
    barrier = threading.Barrier(workers + 1)  # all workers start together
    threads = [
        threading.Thread(target=_worker, args=(number, users, seconds, barrier, out))
        for number in range(workers)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return out, time.perf_counter() - started


def contention(*, workers: int, seconds: float, students: int = 100, kind="processes") -> dict:
    """Run the load; check nothing was lost and no desync appeared."""
    users = list(get_user_model().objects.order_by("id")[:students])
    ids = [user.id for user in users]
    before = _totals(ids)
    progressions_before = LicenseProgression.objects.count()
    run = _run_processes if kind == "processes" else _run_threads
    out, elapsed = run(workers, users, seconds)

    latencies = sorted(lat for result in out.values() for lat in result["latencies"])
    errors = [error for result in out.values() for error in result["errors"]]
    added = {
        key: sum(result[key] for result in out.values())
        for key in ("xp", "sessions", "theory", "practice", "level_ups")
    }
    after = _totals(ids)
    counts = consistency.count_pairs()
    new_progressions = LicenseProgression.objects.count() - progressions_before
    conserved = all(
        after[key] - before[key] == added[key] for key in ("xp", "sessions", "theory", "practice")
    )
    ledger = check_ledger()  # every row's totals = the sum of its events
    return {
        "workers": workers,
        "kind": kind,
        "seconds": round(elapsed, 2),
        "calls": len(latencies),
        "throughput_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "deadlocks": sum(result["deadlocks"] for result in out.values()),
        "desyncs": counts.inconsistent,
        "conserved": conserved,
        "added": added,
        "level_ups": added["level_ups"],
        # Every level gained moves the licence and writes one audit row.
        "audit_rows_match": new_progressions == added["level_ups"],
        "new_audit_rows": new_progressions,
        "ledger_mismatches": ledger.mismatches,
    }
