"""The doors in at size: import_progress (a file of events) and import_source (the
replaced system's database), each as a whole process. Import after ``django.setup()``.

import_progress: n pairs in sync (data.CLEAN), a CSV with one event per pair in
pair order, every tenth enough XP and sessions for a level or more. Afterwards:
desyncs (must be 0), rows whose totals differ from the sum of their events (must be
0) and the events written; then the same file again (every line a replay).

import_source: a source database from imports/source_schema.sql on the same
server, built with generate_series: ``users`` users, three progress rows and three
licences each (about 2 % desyncs of each kind, some NULL levels and totals), history
rows about 5/3 per licence. Afterwards the report's desyncs against check_sync's,
then a second run (unchanged source: nothing changes).
"""

import csv
import json
import os
import re
import time
from pathlib import Path

import psycopg2
from django.db import connection

from licenses.guard import unguarded
from specializations.models import LEDGER_FIELDS

from . import data, measure

SCHEMA = data.ROOT / "imports" / "source_schema.sql"
TOTALS_MISMATCH = (
    "SELECT COUNT(*) FROM specializations_specializationprogress p LEFT JOIN (SELECT"
    " progress_id, {sums} FROM specializations_progressevent GROUP BY progress_id) e"
    " ON e.progress_id = p.id WHERE {differs}"
)


def _totals_mismatches() -> int:
    sums = ", ".join(f"SUM({event}) AS {event}" for event, _ in LEDGER_FIELDS)
    differs = " OR ".join(f"p.{total} <> COALESCE(e.{event}, 0)" for event, total in LEDGER_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(TOTALS_MISMATCH.format(sums=sums, differs=differs))
        return cursor.fetchone()[0]


def _desyncs(env) -> dict:
    run = measure.run_process(["check_sync", "--no-record", "--json"], env)
    return measure.report_counts(run)


def progress_file(n: int, *, env: dict, admin_url: str, folder: Path) -> dict:
    with unguarded(), connection.cursor() as cursor:
        data.fill_postgres(cursor, n, data.CLEAN)
        cursor.execute("TRUNCATE specializations_progressevent")
    data.vacuum_analyze(admin_url)
    path = folder / "bench-events.csv"
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["student_id", "specialization", "xp", "sessions", "reason"])
        for i in range(n):
            user, spec = data.pair(i)
            xp, sessions = (400_000, 40) if i % 10 == 0 else (150 + i % 50, 1)
            out.writerow([user, spec, xp, sessions, "bench award"])
    load_before = os.getloadavg()[0]  # the host is shared: the figure needs its load
    first = measure.run_process(["import_progress", str(path)], env)
    load_after = os.getloadavg()[0]
    problems = []
    if first.returncode != 0:
        problems.append(f"import_progress exited {first.returncode}: {first.stderr[-500:]}")
    desyncs = _desyncs(env)
    mismatches = _totals_mismatches()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM specializations_progressevent")
        events = cursor.fetchone()[0]
    again = measure.run_process(["import_progress", str(path)], env)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM specializations_progressevent")
        events_after_replay = cursor.fetchone()[0]
    if desyncs["inconsistent"]:
        problems.append(f"{desyncs['inconsistent']} desyncs after the import")
    if mismatches:
        problems.append(f"{mismatches} progress rows whose totals are not their events' sum")
    if events != n or events_after_replay != n:
        problems.append(f"events {events}, after the replay {events_after_replay}, expected {n}")
    path.unlink()
    return {
        "lines": n,
        "pairs": n,
        "wall_s": round(first.wall_s, 2),
        "lines_per_s": round(n / first.wall_s),
        "rss_mb": round(first.max_rss_mb, 1),
        "load_before": load_before,
        "load_after": load_after,
        "output": first.stdout.strip(),
        "desyncs_after": desyncs["inconsistent"],
        "totals_not_events": mismatches,
        "events": events,
        "replay_wall_s": round(again.wall_s, 2),
        "replay_rss_mb": round(again.max_rss_mb, 1),
        "replay_output": again.stdout.strip(),
        "problems": problems,
    }


def _source_sql(users: int) -> list[str]:
    """The replaced system's rows, set-based. Pair (u, k): user u, specialization k of 3."""
    specs = "(ARRAY['PLAYER', 'COACH', 'INTERNSHIP'])[k + 1]"
    top = "CASE k WHEN 2 THEN 3 ELSE 8 END"
    level = f"(1 + (u * 7 + k) % {top})"
    pairs = f"generate_series(1, {users}) AS u, generate_series(0, 2) AS k"
    return [
        "INSERT INTO specializations (id, is_active, created_at) VALUES"
        " ('PLAYER', true, now()), ('COACH', true, now()), ('INTERNSHIP', true, now())",
        "INSERT INTO users (id, name, first_name, last_name, email, password_hash, role,"
        " is_active, payment_verified, credit_balance, credit_purchased, xp_balance,"
        " manual_review_required, nda_accepted, parental_consent, created_at)"
        " SELECT u, 'Tanuló ' || u, 'Árvíz' || u, 'Tükör', 'user' || u || '@bench.test', 'x',"
        " (CASE WHEN u % 100 = 0 THEN 'INSTRUCTOR' ELSE 'STUDENT' END)::userrole,"
        " u % 37 <> 0, false, 0, 0, 0, false, false, false, now() - (u || ' minutes')::interval"
        f" FROM generate_series(1, {users}) AS u",
        # Progress: every pair but 1 in 50 (missing progress); 1 in 20 with NULL level/totals.
        "INSERT INTO specialization_progress (id, student_id, specialization_id,"
        " current_level, total_xp, completed_sessions, completed_projects,"
        " theory_hours_completed, practice_hours_completed, last_activity, created_at)"
        f" SELECT u * 3 + k, u, {specs},"
        f" CASE WHEN (u + k) % 20 = 0 THEN NULL ELSE {level} END,"
        " CASE WHEN (u + k) % 20 = 0 THEN NULL ELSE u % 5000 END, u % 30, 0, 0, 0,"
        f" now(), now() FROM {pairs} WHERE (u * 3 + k) % 50 <> 1",
        # Licences: every pair but 1 in 50 (missing licence); 1 in 50 one level off.
        "INSERT INTO user_licenses (id, user_id, specialization_type, current_level,"
        " max_achieved_level, started_at, last_advanced_at, payment_verified,"
        " onboarding_completed, is_active, renewal_cost, credit_balance, credit_purchased)"
        f" SELECT u * 3 + k, u, {specs},"
        f" CASE WHEN (u * 3 + k) % 50 = 2 THEN {level} % {top} + 1"
        f" WHEN (u + k) % 20 = 0 THEN 1 ELSE {level} END,"
        f" {top}, now() - interval '400 days', now(), false, true, true, 0, 0, 0"
        f" FROM {pairs} WHERE (u * 3 + k) % 50 <> 3",
        # History: two rows for two licences in three, one for the rest (about 5/3 each).
        "INSERT INTO license_progressions (id, user_license_id, from_level, to_level,"
        " advanced_by, advancement_reason, advanced_at)"
        " SELECT l.id * 2 + s, l.id, s, s + 1, CASE WHEN s = 1 THEN 100 END,"
        " CASE WHEN s = 1 THEN 'Vizsga sikeres' END, now() - interval '300 days'"
        " FROM user_licenses l, generate_series(0, 1) AS s WHERE s = 0 OR l.id % 3 <> 0",
    ]


def source_database(users: int, *, env: dict, admin_url: str) -> dict:
    name = f"{data.BENCH_DB}_source"
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        cursor.execute(f"CREATE DATABASE {name}")
    source_url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        started = time.perf_counter()
        with psycopg2.connect(source_url) as source, source.cursor() as cursor:
            cursor.execute(SCHEMA.read_text())
            for statement in _source_sql(users):
                cursor.execute(statement)
            cursor.execute(
                "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM"
                " specialization_progress), (SELECT COUNT(*) FROM user_licenses),"
                " (SELECT COUNT(*) FROM license_progressions)"
            )
            counts = cursor.fetchone()
        source.close()
        built_s = time.perf_counter() - started
        with unguarded(), connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE imports_importedrow, specializations_progressevent,"
                " specializations_externalid, licenses_licenseprogression, licenses_userlicense,"
                " specializations_specializationprogress, auth_user CASCADE"
            )
        first = measure.run_process(["import_source", source_url], env)
        problems = []
        if first.returncode != 0:
            problems.append(f"import_source exited {first.returncode}: {first.stderr[-500:]}")
        desyncs = _desyncs(env)
        reported = re.search(r"definition: (.*) \(of (\d+) pairs\)", first.stdout)
        again = measure.run_process(["import_source", source_url], env)
        if "0 changed" not in again.stdout or " new, " not in again.stdout:
            problems.append("the second run's report is not as expected")
        if re.search(r"[1-9]\d* new", again.stdout) or re.search(r"[1-9]\d* changed", again.stdout):
            problems.append("the second run changed something on an unchanged source")
        return {
            "users": counts[0],
            "progress_rows": counts[1],
            "licences": counts[2],
            "history_rows": counts[3],
            "source_built_s": round(built_s, 1),
            "wall_s": round(first.wall_s, 2),
            "rss_mb": round(first.max_rss_mb, 1),
            "output": first.stdout.strip(),
            "reported_desyncs": reported.group(0) if reported else None,
            "check_sync_after": desyncs,
            "rerun_wall_s": round(again.wall_s, 2),
            "rerun_rss_mb": round(again.max_rss_mb, 1),
            "rerun_output": again.stdout.strip(),
            "totals_not_events": _totals_mismatches(),
            "problems": problems,
        }
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def print_imports(results: dict, say) -> None:
    if "import_progress" in results:
        r = results["import_progress"]
        say(
            f"import_progress: {r['lines']:,} lines at {r['pairs']:,} pairs: {r['wall_s']} s whole"
            f" process = {r['lines_per_s']:,} lines/s, RSS {r['rss_mb']} MB;"
            f" {r['desyncs_after']} desyncs after, {r['totals_not_events']} rows whose totals"
            f" are not their events' sum; the same file again {r['replay_wall_s']} s"
            f" (RSS {r['replay_rss_mb']} MB); load average {r['load_before']:.2f} before,"
            f" {r['load_after']:.2f} after"
        )
        for problem in r["problems"]:
            say(f"    PROBLEM: {problem}")
    if "import_source" in results:
        r = results["import_source"]
        say(
            f"import_source: {r['users']:,} users, {r['progress_rows']:,} progress rows,"
            f" {r['licences']:,} licences, {r['history_rows']:,} history rows:"
            f" {r['wall_s']} s whole process, RSS {r['rss_mb']} MB; rerun unchanged"
            f" {r['rerun_wall_s']} s (RSS {r['rerun_rss_mb']} MB); reported:"
            f" {r['reported_desyncs']}; check_sync after: {json.dumps(r['check_sync_after'])}"
        )
        for problem in r["problems"]:
            say(f"    PROBLEM: {problem}")


def goals(results: dict) -> list[tuple[str, bool, str]]:
    out = []
    if "import_progress" in results:
        r = results["import_progress"]
        out.append(
            (
                "import_progress: at least 20,000 lines/s at 1M pairs, RSS <= 200 MB,"
                " 0 desyncs, totals = events",
                r["lines_per_s"] >= 20_000
                and r["rss_mb"] <= 200
                and not r["desyncs_after"]
                and not r["totals_not_events"]
                and not r["problems"],
                f"{r['lines']:,} lines in {r['wall_s']} s ({r['lines_per_s']:,}/s),"
                f" RSS {r['rss_mb']} MB",
            )
        )
    if "import_source" in results:
        r = results["import_source"]
        out.append(
            (
                "import_source: 100k users, 300k pairs, 500k history rows in at most 3 minutes",
                r["wall_s"] <= 180 and not r["problems"],
                f"{r['wall_s']} s, RSS {r['rss_mb']} MB",
            )
        )
    return out
