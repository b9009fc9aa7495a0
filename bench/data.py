"""The benchmark databases and their data, built set-based (INSERT ... SELECT).

Pair ``i`` (0 <= i < n) is user ``i // 3 + 1`` in specialization
``SPECS[i % 3]``. A ``Layout`` injects desyncs by ``i % period``: one slot per
kind, so the expected counts are known exactly without reading the data back,
and the three kinds fall on all three specializations.
"""

import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

from specializations.default_catalogue import CODES, LEVELS

ROOT = Path(__file__).resolve().parent.parent
# The default catalogue's three specializations (bench data is laid out by i % 3).
SPECS = CODES
assert len(SPECS) == 3, "the bench lays pairs out over three specializations"


# SQL over a pair's index i: its specialization code and that specialization's top level.
def _by_spec(values) -> str:
    return f"CASE i % 3 {' '.join(f'WHEN {n} THEN {v}' for n, v in enumerate(values))} END"


SPEC_SQL = _by_spec(f"'{code}'" for code in SPECS)
MAX_LEVEL_SQL = _by_spec(len(LEVELS[code]) for code in SPECS)
# BENCH_DATABASE: another name when two people bench on one server at the same time.
BENCH_DB = os.environ.get("BENCH_DATABASE", "") or "bench"
if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", BENCH_DB):
    sys.exit(f"BENCH_DATABASE={BENCH_DB!r}: expected a lower-case SQL identifier (a-z, 0-9, _)")
PROGRESS = "specializations_specializationprogress"
LICENSE = "licenses_userlicense"
PROGRESSION = "licenses_licenseprogression"


@dataclass(frozen=True)
class Layout:
    """Which pairs are desynced: ``i % period`` equal to one of the three slots."""

    period: int | None = None  # None: no desyncs
    missing_license: int = 0
    missing_progress: int = 0
    level_mismatch: int = 0

    def expected(self, n: int) -> dict:
        def hits(slot: int) -> int:
            return 0 if self.period is None else n // self.period + (n % self.period > slot)

        by_kind = {
            "level_mismatch": hits(self.level_mismatch),
            "missing_license": hits(self.missing_license),
            "missing_progress": hits(self.missing_progress),
        }
        return {"total": n, "inconsistent": sum(by_kind.values()), "by_kind": by_kind}

    def kind_of(self, i: int) -> str:
        slot = None if self.period is None else i % self.period
        if slot == self.missing_license:
            return "missing_license"
        if slot == self.missing_progress:
            return "missing_progress"
        if slot == self.level_mismatch:
            return "level_mismatch"
        return "ok"


# About 2% desyncs: one pair in 150 per kind. 7, 57 and 107 fall on three specializations.
SCALE = Layout(period=150, missing_license=7, missing_progress=57, level_mismatch=107)
# 10% desyncs, for repair (10k desyncs in 100k pairs).
REPAIR = Layout(period=30, missing_license=3, missing_progress=13, level_mismatch=23)
CLEAN = Layout()


def pair(i: int) -> tuple[int, str]:
    return i // 3 + 1, SPECS[i % 3]


def bench_urls(database_url: str) -> tuple[str, str]:
    """(maintenance URL to create/drop from, URL of the bench database) on the same server."""
    parts = urlsplit(database_url or "postgres://postgres@127.0.0.1:5432/postgres")
    if not parts.scheme.startswith("postgres"):
        parts = urlsplit("postgres://postgres@127.0.0.1:5432/postgres")
    admin = parts.path.lstrip("/") or "postgres"
    if admin == BENCH_DB:
        admin = "postgres"
    return (
        urlunsplit(parts._replace(path=f"/{admin}")),
        urlunsplit(parts._replace(path=f"/{BENCH_DB}")),
    )


def recreate_database(admin_url: str) -> None:
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {BENCH_DB}")
    conn.close()


def drop_database(admin_url: str) -> None:
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    conn.close()


def migrate(env: dict) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def _level_sql(i: str, max_level: str) -> str:
    # A spread of levels 1..max, the same on both sides unless a mismatch is injected.
    return f"(1 + ((({i}) / 3) * 7 + ({i})) % {max_level})"


def _pairs_cte(n: int, layout: Layout) -> str:
    period = layout.period or 1
    slot = "NULL::int" if layout.period is None else f"i % {period}"
    return f"""
        WITH pairs AS (
            SELECT i, i / 3 + 1 AS user_id,
                   {SPEC_SQL} AS spec,
                   {_level_sql("i", MAX_LEVEL_SQL)} AS level,
                   {MAX_LEVEL_SQL} AS max_level,
                   {slot} AS slot,
                   (i / {period}) % 2 AS up
            FROM generate_series(0, {n - 1}) AS i
        )"""


def _license_level(layout: Layout) -> str:
    # Mismatches alternate: the licence one level above the progress, or one below (wrapping).
    return (
        f"CASE WHEN slot = {layout.level_mismatch} THEN"
        " CASE WHEN up = 0 THEN level % max_level + 1"
        " ELSE (level + max_level - 2) % max_level + 1 END"
        " ELSE level END"
    )


def fill_postgres(cursor, n: int, layout: Layout) -> None:
    """Replace all users, progress and licence rows with n pairs laid out by ``layout``."""
    users = (n + 2) // 3
    cursor.execute("SET synchronous_commit = off")
    cursor.execute(f"TRUNCATE auth_user, {PROGRESS}, {LICENSE}, {PROGRESSION} CASCADE")
    cursor.execute(
        "INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name,"
        " email, is_staff, is_active, date_joined)"
        " SELECT g, '!', false, 'bench' || g, '', '', '', false, true, now()"
        f" FROM generate_series(1, {users}) AS g"
    )
    cursor.execute("SELECT setval(pg_get_serial_sequence('auth_user', 'id'), %s)", [users])
    skip_progress = "" if layout.period is None else f"WHERE slot <> {layout.missing_progress}"
    skip_license = "" if layout.period is None else f"WHERE slot <> {layout.missing_license}"
    cursor.execute(
        _pairs_cte(n, layout) + f" INSERT INTO {PROGRESS} (student_id, specialization_id,"
        " current_level, total_xp, completed_sessions, completed_projects,"
        " theory_hours_completed, practice_hours_completed)"
        f" SELECT user_id, spec, level, 0, 0, 0, 0, 0 FROM pairs {skip_progress} ORDER BY i"
    )
    cursor.execute(
        _pairs_cte(n, layout) + f" INSERT INTO {LICENSE} (user_id, specialization_id,"
        " current_level, max_achieved_level, is_active)"
        f" SELECT user_id, spec, {_license_level(layout)}, max_level, true"
        f" FROM pairs {skip_license} ORDER BY i"
    )
    cursor.execute("SET synchronous_commit = on")


def vacuum_analyze(admin_url: str) -> None:
    """VACUUM needs its own autocommit connection; it also sets the visibility map."""
    conn = psycopg2.connect(admin_url.rsplit("/", 1)[0] + f"/{BENCH_DB}")
    conn.autocommit = True
    with conn.cursor() as cur:
        for table in ("auth_user", PROGRESS, LICENSE, PROGRESSION):
            cur.execute(f"VACUUM ANALYZE {table}")
    conn.close()


def build_sqlite(path: Path, n: int, layout: Layout, env: dict) -> None:
    """A migrated SQLite file holding n pairs, built with a recursive CTE."""
    path.unlink(missing_ok=True)
    migrate({**env, "DATABASE_URL": f"sqlite:///{path}"})
    period = layout.period or 1
    slot = "NULL" if layout.period is None else f"i % {period}"
    pairs = f"""
        WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < {n - 1}),
        pairs AS (
            SELECT i, i / 3 + 1 AS user_id,
                   {SPEC_SQL} AS spec,
                   {_level_sql("i", MAX_LEVEL_SQL)} AS level,
                   {MAX_LEVEL_SQL} AS max_level,
                   {slot} AS slot, (i / {period}) % 2 AS up
            FROM seq)"""
    db = sqlite3.connect(path)
    db.executescript("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")
    with db:
        db.execute(
            "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g"
            f" WHERE i < {(n + 2) // 3})"
            " INSERT INTO auth_user (id, password, is_superuser, username, first_name,"
            " last_name, email, is_staff, is_active, date_joined)"
            " SELECT i, '!', 0, 'bench' || i, '', '', '', 0, 1, datetime('now') FROM g"
        )
        db.execute(
            pairs + f" INSERT INTO {PROGRESS} (student_id, specialization_id, current_level,"
            " total_xp, completed_sessions, completed_projects, theory_hours_completed,"
            " practice_hours_completed)"
            " SELECT user_id, spec, level, 0, 0, 0, 0, 0 FROM pairs"
            f" WHERE slot IS NULL OR slot <> {layout.missing_progress}"
        )
        db.execute(
            pairs + f" INSERT INTO {LICENSE} (user_id, specialization_id, current_level,"
            " max_achieved_level, is_active)"
            f" SELECT user_id, spec, {_license_level(layout)}, max_level, 1 FROM pairs"
            f" WHERE slot IS NULL OR slot <> {layout.missing_license}"
        )
    db.execute("ANALYZE")
    db.close()


def subprocess_env(database_url: str) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=env.get("SECRET_KEY") or "bench-only-secret-key-not-for-production",
        DJANGO_SETTINGS_MODULE="config.settings",
        # Production-like and explicit: a developer's .env (DEBUG=1 keeps a
        # log of every query) must not leak into the figures.
        DEBUG="",
        ACADEMY_ENV_FILE=os.devnull,
    )
    return env
