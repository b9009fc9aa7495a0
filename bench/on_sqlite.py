"""The same check on SQLite (the project's default database): correct, and how fast.

Import after ``django.setup()``.
"""

import sqlite3
import time
from pathlib import Path

from licenses import consistency

from . import data, measure
from .phases import STARTUP, check_run, median


def _sqlite_count(path: Path, sql: str) -> tuple[float, tuple]:
    db = sqlite3.connect(path)
    start = time.perf_counter()
    row = db.execute(sql).fetchone()
    elapsed = time.perf_counter() - start
    db.close()
    return elapsed, row


def sqlite(*, n: int, rounds: int, env: dict, path: Path) -> dict:
    """The same check on SQLite: correct counts, and its time.

    A check that runs out of time is not repeated. Two probes of the bare count
    explain the time: the query as ``licenses.consistency`` writes it (at
    ``probe_n`` pairs) and the same join over the tables directly (at n pairs).
    """
    layout = data.SCALE
    data.build_sqlite(path, n, layout, env)
    sqlite_env = {**env, "DATABASE_URL": f"sqlite:///{path}"}
    expected = layout.expected(n)
    problems: list[str] = []
    checks, startups = [], []
    for _ in range(rounds + 1):
        checks.append(check_run(sqlite_env, expected, problems, f"sqlite n={n}"))
        run = measure.run_process(STARTUP, sqlite_env)
        startups.append({"wall_s": run.wall_s, "rss_mb": run.max_rss_mb})
        if problems:
            break
    if len(checks) > 1:
        checks, startups = checks[1:], startups[1:]  # the first round warms the page cache
    direct_s, direct_row = _sqlite_count(path, DIRECT_COUNT_SQL)
    direct_ok = list(direct_row) == [
        n,
        expected["by_kind"]["missing_license"],
        expected["by_kind"]["missing_progress"],
        expected["by_kind"]["level_mismatch"],
    ]
    probe_n = min(n, 10_000)
    data.build_sqlite(path, probe_n, layout, env)
    as_written_s, _ = _sqlite_count(path, consistency.counts_sql()[0])
    path.unlink(missing_ok=True)
    wall = median([c["wall_s"] for c in checks])
    startup = median([s["wall_s"] for s in startups])
    return {
        "n": n,
        "check_wall_s": wall,
        "startup_wall_s": startup,
        "check_own_s": wall - startup,
        "check_duration_ms": median([c["duration_ms"] or 0 for c in checks]),
        "rss_mb": max(c["rss_mb"] for c in checks),
        "correct": not problems,
        "problems": sorted(set(problems)),
        "probe_direct_join_s": direct_s,
        "probe_direct_join_counts_ok": direct_ok,
        "probe_as_written_n": probe_n,
        "probe_as_written_s": as_written_s,
    }


# The bare count with both tables as direct operands of the FULL JOIN (SQLite
# uses the unique index for the join instead of materializing the right side).
DIRECT_COUNT_SQL = (
    "SELECT COUNT(*), COUNT(*) FILTER (WHERE l.user_id IS NULL),"
    " COUNT(*) FILTER (WHERE p.student_id IS NULL),"
    " COUNT(*) FILTER (WHERE p.current_level <> l.current_level)"
    f" FROM {data.PROGRESS} p FULL OUTER JOIN {data.LICENSE} l"
    " ON l.user_id = p.student_id AND l.specialization_id = p.specialization_id"
)
