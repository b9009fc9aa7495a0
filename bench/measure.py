"""One measurement each: a whole process, the bare desync count, the pair-by-pair check.

Import after ``django.setup()``.
"""

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from django.db import connection, transaction

from licenses import consistency
from licenses.models import UserLicense
from specializations.models import SpecializationProgress

from .data import ROOT, Layout, pair

# Steering for the best plan, local to the measuring transaction: a merge full
# join over the two covering indexes, read in (user, specialization) order.
BEST_PLAN_SETTINGS = ("enable_hashjoin = off", "enable_sort = off", "enable_seqscan = off")


@dataclass(frozen=True)
class ProcessRun:
    wall_s: float
    max_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


def run_process(args: list[str], env: dict) -> ProcessRun:
    """Run ``manage.py args``; wall time and this child's own peak RSS (wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ProcessRun(
            wall_s=wall,
            max_rss_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
            returncode=proc.returncode,
            stdout=out.read().decode(),
            stderr=err.read().decode(),
        )


def report_counts(run: ProcessRun) -> dict:
    """The counts from ``check_sync --json`` output, in the shape of ``Layout.expected``."""
    report = json.loads(run.stdout)
    by_kind = {kind: report["by_kind"].get(kind, 0) for kind in consistency.VIOLATION_KINDS}
    return {
        "total": report["total_checked"],
        "inconsistent": report["inconsistent"],
        "by_kind": by_kind,
    }


def _counts_in_transaction(settings: tuple[str, ...]) -> tuple[float, dict]:
    """``licenses.consistency.count_pairs`` timed in its own transaction under ``settings``."""
    with transaction.atomic(), connection.cursor() as cursor:
        start = time.perf_counter()
        for setting in settings:
            cursor.execute(f"SET LOCAL {setting}")
        counts = consistency.count_pairs()
        elapsed = time.perf_counter() - start
    return elapsed, {
        "total": counts.total,
        "inconsistent": counts.inconsistent,
        "by_kind": {kind: counts.by_kind[kind] for kind in consistency.VIOLATION_KINDS},
    }


def default_plan_count() -> tuple[float, dict]:
    """The bare count of ``licenses.consistency``, planned by PostgreSQL on its own."""
    return _counts_in_transaction(())


def best_plan_count() -> tuple[float, dict]:
    return _counts_in_transaction(BEST_PLAN_SETTINGS)


def explain(*, best: bool) -> str:
    sql, params = consistency.counts_sql()
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in BEST_PLAN_SETTINGS if best else ():
            cursor.execute(f"SET LOCAL {setting}")
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def sample_indices(n: int, size: int) -> list[int]:
    return sorted(random.Random(n).sample(range(n), min(n, size)))


def pair_by_pair(indices: list[int], layout: Layout) -> tuple[float, int]:
    """The replaced system: one query for the progress row, one for the licence, per pair.

    Returns (seconds per pair, number of pairs classified differently than generated).
    """
    wrong = 0
    start = time.perf_counter()
    for i in indices:
        user_id, spec = pair(i)
        progress = SpecializationProgress.objects.filter(
            student_id=user_id, specialization_id=spec
        ).first()
        license = UserLicense.objects.filter(user_id=user_id, specialization_id=spec).first()
        if progress is None:
            kind = "missing_progress"
        elif license is None:
            kind = "missing_license"
        elif progress.current_level != license.current_level:
            kind = "level_mismatch"
        else:
            kind = "ok"
        wrong += kind != layout.kind_of(i)
    return (time.perf_counter() - start) / len(indices), wrong
