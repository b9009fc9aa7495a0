"""Repair while students work: ``check_sync --repair`` over n pairs (10% desyncs) with
worker processes calling ``update_progress`` until it ends.

The workers pick the students that have a desynced pair, in any specialization:
a third of their calls land on a pair the repair writes (and may meet its batch
holding that row), the rest on the same students' pairs in sync, which a repair
that locked users x specializations used to hold too. Import after ``django.setup()``.
"""

import json
import multiprocessing
import subprocess
import sys
import time

from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.db.models import Sum

from licenses import consistency
from licenses.guard import unguarded
from monitoring.models import HealthCheckRun
from specializations.models import SpecializationProgress

from . import data, load
from .data import ROOT


def _students_with_a_desync(n: int, layout: data.Layout) -> list:
    slots = (layout.missing_license, layout.missing_progress, layout.level_mismatch)
    ids = sorted({data.pair(i)[0] for i in range(n) if i % layout.period in slots})
    User = get_user_model()
    return [User(pk=pk, username=f"bench{pk}") for pk in ids]  # update_progress needs the pk


def _xp() -> int:
    return SpecializationProgress.objects.aggregate(xp=Sum("total_xp"))["xp"] or 0


def repair_under_load(*, n: int, workers: int, env: dict, admin_url: str) -> dict:
    layout = data.REPAIR
    with unguarded(), connection.cursor() as cursor:  # its desyncs, on purpose
        data.fill_postgres(cursor, n, layout)
    data.vacuum_analyze(admin_url)
    students = _students_with_a_desync(n, layout)
    xp_before = _xp()
    context = multiprocessing.get_context("fork")
    barrier, queue, stop = context.Barrier(workers + 1), context.Queue(), context.Event()
    connections.close_all()  # a forked child must open its own connection
    processes = [
        context.Process(
            target=load.process_worker, args=(number, students, 3600, barrier, queue, stop)
        )
        for number in range(workers)
    ]
    for process in processes:
        process.start()
    barrier.wait()
    time.sleep(1)  # the workers at full speed before the repair starts
    started = time.perf_counter()
    repair = subprocess.run(
        [sys.executable, "manage.py", "check_sync", "--repair", "--timeout", "0", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    stop.set()
    results = [queue.get() for _ in processes]
    for process in processes:
        process.join()

    problems = []
    report = {}
    if repair.returncode not in (0, 1, 2):
        problems.append(f"repair exited {repair.returncode}: {repair.stdout[-300:]}")
    else:
        report = json.loads(repair.stdout)
    latencies = sorted(lat for r in results for lat in r["latencies"])
    errors = [e for r in results for e in r["errors"]]
    run = HealthCheckRun.objects.filter(kind="repair").order_by("-id").first()
    left_after = consistency.count_pairs().inconsistent
    conserved = _xp() - xp_before == sum(r["xp"] for r in results)
    if errors:
        problems.append(f"{len(errors)} worker errors")
    if not conserved:
        problems.append("XP not conserved")
    if left_after > (run.skipped_locked if run else 0):
        problems.append(f"{left_after} desyncs left, more than the {run.skipped_locked} locked")
    repaired = report.get("repair", {}).get("repaired", 0)
    return {
        "n": n,
        "desyncs": layout.expected(n)["inconsistent"],
        "workers": workers,
        "students": len(students),
        "repair_wall_s": round(wall, 2),
        "repaired": repaired,
        "repaired_by_students_first": layout.expected(n)["inconsistent"] - repaired - left_after,
        "pairs_per_s": round(repaired / wall) if wall else None,
        # The process's start-up competes with the workers too: the loop alone.
        "repair_loop_ms": report.get("repair", {}).get("duration_ms"),
        "pairs_per_s_repair_loop": (
            round(repaired / (report["repair"]["duration_ms"] / 1000))
            if report.get("repair", {}).get("duration_ms")
            else None
        ),
        "skipped_locked": run.skipped_locked if run else None,
        "run_state": run.state if run else None,
        "calls": len(latencies),
        "p50_ms": round(load.percentile(latencies, 0.50) * 1000, 1),
        "p95_ms": round(load.percentile(latencies, 0.95) * 1000, 1),
        "p99_ms": round(load.percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "deadlocks": sum(r["deadlocks"] for r in results),
        "desyncs_after": left_after,
        "conserved": conserved,
        "problems": problems,
    }
