"""Levels following a lowered threshold at N pairs: ``manage.py load_catalogue``, whole process.

The default catalogue's three specializations hold the pairs, in sync (``data.CLEAN``);
every requirement but XP is met, and each pair's XP lies somewhere between its level's
threshold and the next one's (spread evenly, as students' XP is). A load that lowers
a level's XP by 10 % moves the pairs in that last tenth up one level: progress,
licence and history, in the one transaction of the load, with the commit guard on.
Import after ``django.setup()``.
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


def _xp_sql(*, above: int) -> str:
    """SQL: the XP of the level ``above`` levels over the progress row ``p``'s (0 if none)."""
    whens = [
        f"WHEN p.specialization_id = '{code}' AND p.current_level = {number - above} THEN {xp}"
        for code, levels in LEVELS.items()
        for number, _, xp, *_ in levels
        if number - above >= 1
    ]
    return f"CASE {' '.join(whens)} ELSE 0 END"


LEVEL_XP, NEXT_XP = _xp_sql(above=0), _xp_sql(above=1)
# Reaches the next level once its XP is lowered 10 % (as _lower rounds it).
IN_LAST_TENTH = f"{NEXT_XP} > 0 AND p.total_xp >= {NEXT_XP} * 9 / 10"


def _expected(where: str = "") -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {data.PROGRESS} p WHERE {IN_LAST_TENTH} {where}")
        return cursor.fetchone()[0]


def _history_rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {data.PROGRESSION} WHERE reason LIKE %s",
            ["catalogue change: %"],
        )
        return cursor.fetchone()[0]


def _load(folder: Path, files: list[Path], expected: int, env: dict, problems: list) -> dict:
    """Time ``load_catalogue`` on ``files``; check who moved and that nothing desynced."""
    before = _history_rows()
    run = measure.run_process(["load_catalogue", *map(str, files)], env)
    if run.returncode:
        problems.append(f"load_catalogue exited {run.returncode}: {run.stderr[-300:]}")
    moved = {code: int(count) for code, count in MOVED.findall(run.stdout)}
    history = _history_rows() - before
    if sum(moved.values()) != expected:
        problems.append(f"{sum(moved.values())} students moved, expected {expected}")
    if history != expected:
        problems.append(f"{history} licence history rows, expected {expected}")
    return {
        "wall_s": round(run.wall_s, 2),
        "rss_mb": round(run.max_rss_mb, 1),
        "moved": moved,
        "expected_moved": expected,
        "history_rows": history,
    }


def catalogue_follow(n: int, *, env: dict, admin_url: str) -> dict:
    """Two loads at n pairs: one lowered threshold (PLAYER level 3's XP, -10 %), then
    every level's XP of all three specializations lowered 10 % (a stress case)."""
    code, number = data.SPECS[0], 4
    with unguarded(), connection.cursor() as cursor:
        data.fill_postgres(cursor, n, data.CLEAN)
        # XP spread between the pair's level and the next (a stand-in for random).
        cursor.execute(
            f"UPDATE {data.PROGRESS} p SET completed_sessions = 1000,"
            " completed_projects = 1000, theory_hours_completed = 1000,"
            " practice_hours_completed = 1000,"
            f" total_xp = {LEVEL_XP} + CASE WHEN {NEXT_XP} > {LEVEL_XP}"
            f" THEN (p.id * 7919) % ({NEXT_XP} - {LEVEL_XP}) ELSE 0 END"
        )
    data.vacuum_analyze(admin_url)
    one = _expected(f"AND p.specialization_id = '{code}' AND p.current_level = {number - 1}")
    every = _expected() - one
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        out = measure.run_process(["export_catalogue", name, "-v", "0"], env)
        if out.returncode:
            problems.append(f"export_catalogue exited {out.returncode}: {out.stderr[-300:]}")
        files = sorted(folder.glob("*.json"))
        one_file = folder / f"{code.lower()}.json"
        _lower(one_file, only=number)
        single = _load(folder, [one_file], one, env, problems)
        for path in files:
            _lower(path, only=None, undo_only=number if path == one_file else None)
        stress = _load(folder, files, every, env, problems)
    after = consistency.count_pairs()
    if after.inconsistent:
        problems.append(f"{after.inconsistent} desyncs after the loads")
    return {
        "n": n,
        "one_threshold": {"specialization": code, "level": number, **single},
        "every_threshold": stress,
        "problems": problems,
    }


def _lower(path: Path, *, only: int | None, undo_only: int | None = None) -> None:
    """Lower the XP of level ``only`` (None: every level) by 10 % in a catalogue file;
    ``undo_only`` names a level lowered already (left as it is)."""
    catalogue = json.loads(path.read_text(encoding="utf-8"))
    for level in catalogue["levels"]:
        if only in (None, level["level"]) and level["level"] != undo_only:
            level["xp_required"] = level["xp_required"] * 9 // 10
    path.write_text(json.dumps(catalogue), encoding="utf-8")


def print_catalogue(r: dict, say) -> None:
    one, every = r["one_threshold"], r["every_threshold"]
    say(
        f"Catalogue change at {r['n']:,} pairs, load_catalogue whole process"
        " (re-evaluation, licences, history, commit guard on):"
    )
    say(
        f"  one threshold ({one['specialization']} level {one['level']} XP -10 %):"
        f" {one['wall_s']:.2f} s, {sum(one['moved'].values()):,} students moved"
        f" (expected {one['expected_moved']:,}), RSS {one['rss_mb']:.1f} MB"
    )
    say(
        f"  every threshold of three specializations (XP -10 %): {every['wall_s']:.2f} s,"
        f" {sum(every['moved'].values()):,} students moved {every['moved']}"
        f" (expected {every['expected_moved']:,}), RSS {every['rss_mb']:.1f} MB"
    )
    for problem in r["problems"]:
        say(f"    PROBLEM: {problem}")


def goals(r: dict) -> list[tuple[str, bool, str]]:
    one = r["one_threshold"]
    return [
        (
            f"one lowered threshold at {r['n']:,} pairs: load with the re-evaluation <= 30 s"
            " (whole process), every qualifying pair moved, 0 desyncs",
            one["wall_s"] <= 30 and not r["problems"],
            f"{one['wall_s']:.2f} s, {sum(one['moved'].values()):,} moved,"
            f" {len(r['problems'])} problems",
        )
    ]
