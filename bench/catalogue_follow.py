"""Levels following a lowered threshold at N pairs: ``manage.py load_catalogue``, whole process.

The default catalogue's three specializations hold the pairs, in sync (``data.CLEAN``);
every requirement but XP is met, and every other pair below its top level holds the
XP of its next level minus one. The load lowers every level's XP by 10 % in all three
files at once: exactly those pairs move up one level, progress, licence and history,
in the one transaction of the load, with the commit guard on. Import after
``django.setup()``.
"""

import json
import re
import tempfile
from pathlib import Path

from django.db import connection

from licenses import consistency
from licenses.guard import unguarded
from specializations.default_catalogue import LEVELS

from . import data, measure

MOVED = re.compile(r"^(\w+): .*?; (\d+) students moved up", re.M)


def _next_level_xp_sql() -> str:
    """SQL: the XP of the level above the progress row ``p``'s (0 at its top level)."""
    whens = [
        f"WHEN p.specialization_id = '{code}' AND p.current_level = {number - 1} THEN {xp}"
        for code, levels in LEVELS.items()
        for number, _, xp, *_ in levels
        if number > 1
    ]
    return f"CASE {' '.join(whens)} ELSE 0 END"


def catalogue_follow(n: int, *, env: dict, admin_url: str) -> dict:
    with unguarded(), connection.cursor() as cursor:
        data.fill_postgres(cursor, n, data.CLEAN)
        # Even pairs below their top level: one XP short of the next level.
        cursor.execute(
            f"UPDATE {data.PROGRESS} p SET completed_sessions = 1000,"
            " completed_projects = 1000, theory_hours_completed = 1000,"
            " practice_hours_completed = 1000,"
            f" total_xp = CASE WHEN p.id % 2 = 0 THEN GREATEST({_next_level_xp_sql()} - 1, 0)"
            " ELSE 0 END"
        )
        cursor.execute(
            f"SELECT count(*) FROM {data.PROGRESS} p WHERE p.id % 2 = 0"
            f" AND {_next_level_xp_sql()} > 0"
        )
        (expected,) = cursor.fetchone()
    data.vacuum_analyze(admin_url)
    problems = []
    with tempfile.TemporaryDirectory() as folder:
        out = measure.run_process(["export_catalogue", folder, "-v", "0"], env)
        if out.returncode:
            problems.append(f"export_catalogue exited {out.returncode}: {out.stderr[-300:]}")
        for path in Path(folder).glob("*.json"):
            catalogue = json.loads(path.read_text(encoding="utf-8"))
            for level in catalogue["levels"]:
                level["xp_required"] = level["xp_required"] * 9 // 10
            path.write_text(json.dumps(catalogue), encoding="utf-8")
        run = measure.run_process(["load_catalogue", folder], env)
    if run.returncode:
        problems.append(f"load_catalogue exited {run.returncode}: {run.stderr[-300:]}")
    moved = {code: int(count) for code, count in MOVED.findall(run.stdout)}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {data.PROGRESSION} WHERE reason LIKE %s",
            ["catalogue change: %"],
        )
        (history,) = cursor.fetchone()
    after = consistency.count_pairs()
    if sum(moved.values()) != expected:
        problems.append(f"{sum(moved.values())} students moved, expected {expected}")
    if history != expected:
        problems.append(f"{history} licence history rows, expected {expected}")
    if after.inconsistent:
        problems.append(f"{after.inconsistent} desyncs after the load")
    return {
        "n": n,
        "moved": moved,
        "expected_moved": expected,
        "wall_s": round(run.wall_s, 2),
        "rss_mb": round(run.max_rss_mb, 1),
        "history_rows": history,
        "problems": problems,
    }


def print_catalogue(r: dict, say) -> None:
    say(
        f"Catalogue change at {r['n']:,} pairs (every level's XP lowered 10 % in three files):"
        f" load_catalogue {r['wall_s']:.2f} s whole process, RSS {r['rss_mb']:.1f} MB,"
        f" {sum(r['moved'].values()):,} students moved up {r['moved']}"
        f" (expected {r['expected_moved']:,}), {r['history_rows']:,} history rows"
    )
    for problem in r["problems"]:
        say(f"    PROBLEM: {problem}")


def goals(r: dict) -> list[tuple[str, bool, str]]:
    return [
        (
            f"catalogue change at {r['n']:,} pairs: load with the re-evaluation <= 30 s"
            " (whole process), every qualifying pair moved, 0 desyncs",
            r["wall_s"] <= 30 and not r["problems"],
            f"{r['wall_s']:.2f} s, {sum(r['moved'].values()):,} moved,"
            f" {len(r['problems'])} problems",
        )
    ]
