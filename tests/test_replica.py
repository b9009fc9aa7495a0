"""check_sync against a real hot standby: believed when current, UNKNOWN when behind.

The test builds its own primary and streaming standby (``pg_createcluster``,
``pg_basebackup -R``) beside the main cluster, which it leaves alone, and
drops both at the end. It needs root and Debian's PostgreSQL tools: outside
CI it skips without them; in CI their absence is a failure.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import psycopg2
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
PAIRS = 200
ALLOWED = 2  # SYNC_MAX_REPLICA_LAG_SECONDS for the quiet spells below
QUIET = ALLOWED + 0.5

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL half only"),
]


def _missing_tools() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create PostgreSQL clusters"
    for tool in ("pg_createcluster", "pg_ctlcluster", "pg_dropcluster", "pg_basebackup"):
        if shutil.which(tool) is None:
            return f"needs {tool} (Debian's postgresql-common)"
    if not os.path.isdir("/etc/postgresql") or not os.listdir("/etc/postgresql"):
        return "needs a Debian PostgreSQL installation (/etc/postgresql)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True, timeout=120)


class Cluster:
    def __init__(self, version: str, name: str):
        self.version, self.name, self.port = version, name, _free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/academy"

    @property
    def data_dir(self) -> str:
        return f"/var/lib/postgresql/{self.version}/{self.name}"

    def create(self, *, empty: bool = False) -> None:
        _sh(
            "pg_createcluster", self.version, self.name, "-p", str(self.port), "--",
            "--auth=trust",
        )  # fmt: skip
        if empty:  # the data directory is about to come from pg_basebackup
            shutil.rmtree(self.data_dir)
            _sh("install", "-d", "-o", "postgres", "-g", "postgres", "-m", "700", self.data_dir)

    def start(self) -> None:
        _sh("pg_ctlcluster", self.version, self.name, "start")

    def drop(self) -> None:
        subprocess.run(
            ["pg_dropcluster", "--stop", self.version, self.name], capture_output=True, timeout=120
        )

    def connect(self, dbname: str = "academy"):
        # Autocommit, and used through closing(): psycopg2's `with conn` opens a transaction.
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname)
        conn.autocommit = True
        return conn

    def query(self, sql: str, params=()):
        with closing(self.connect()) as conn, conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone() if cursor.description else None


def drop_leftovers(version: str) -> None:
    """Drop the clusters of an earlier run that was killed before its teardown."""
    for name in os.listdir(f"/etc/postgresql/{version}"):
        owner = name.removeprefix("sync").partition("_")[0]
        if name.startswith("sync") and owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            Cluster(version, name).drop()


@pytest.fixture(scope="module")
def streaming():
    """(primary, standby): a primary with the schema and a standby streaming from it."""
    missing = _missing_tools()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the replica test {missing}, and CI must run it")
        pytest.skip(missing)
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    drop_leftovers(version)
    tag = f"sync{os.getpid()}"
    primary, standby = Cluster(version, f"{tag}_primary"), Cluster(version, f"{tag}_standby")
    try:
        primary.create()
        primary.start()
        with closing(primary.connect("postgres")) as conn, conn.cursor() as cursor:
            cursor.execute("CREATE DATABASE academy")
            # No commits but the tests' own: the quiet spells below stay quiet.
            cursor.execute("ALTER SYSTEM SET autovacuum = off")
            cursor.execute("SELECT pg_reload_conf()")
        migrated = check_sync_process(["migrate", "--noinput"], primary=primary.url)
        assert migrated.returncode == 0, migrated.stderr
        standby.create(empty=True)
        subprocess.run(
            ["runuser", "-u", "postgres", "--", "pg_basebackup", "-h", "127.0.0.1",
             "-p", str(primary.port), "-U", "postgres", "-D", standby.data_dir, "-R",
             "-X", "stream", "--checkpoint=fast"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        standby.start()
        yield primary, standby
    finally:
        standby.drop()
        primary.drop()


def _environment(primary: str, replica: str | None, settings: dict[str, str]) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "replica-test",
        "DEBUG": "",
        "ACADEMY_ENV_FILE": os.devnull,  # a developer's .env stays out of it
        "DATABASE_URL": primary,
        "REPLICA_DATABASE_URL": replica or "",
        **settings,
    }


def check_sync_process(args, *, primary: str, replica: str | None = None, **settings: str):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_environment(primary, replica, settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def check_sync_start(args, *, primary: str, replica: str | None = None, **settings: str):
    """``check_sync_process`` without waiting for it: ``communicate()`` ends it."""
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_environment(primary, replica, settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def write_pairs(primary: Cluster, *, first_user: int, count: int, desynced: int) -> None:
    """``count`` users with a PLAYER pair each; the first ``desynced`` licences at level 2.

    One transaction, let through the commit guard on purpose (the desyncs)."""
    conn = primary.connect()
    conn.autocommit = False
    with closing(conn), conn.cursor() as cursor:
        cursor.execute("SELECT set_config('academy.sync_guard', 'off', true)")
        cursor.execute(
            "INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name,"
            " email, is_staff, is_active, date_joined)"
            " SELECT i, '', false, 'u' || i, '', '', '', false, true, now()"
            " FROM generate_series(%s, %s) i",
            [first_user, first_user + count - 1],
        )
        cursor.execute(
            "INSERT INTO specializations_specializationprogress (student_id, specialization_id,"
            " current_level, total_xp, completed_sessions, completed_projects,"
            " theory_hours_completed, practice_hours_completed, last_activity)"
            " SELECT i, 'PLAYER', 1, 0, 0, 0, 0, 0, now() FROM generate_series(%s, %s) i",
            [first_user, first_user + count - 1],
        )
        cursor.execute(
            "INSERT INTO licenses_userlicense (user_id, specialization_id, current_level,"
            " max_achieved_level, started_at, is_active)"
            " SELECT i, 'PLAYER', CASE WHEN i < %s THEN 2 ELSE 1 END,"
            " CASE WHEN i < %s THEN 2 ELSE 1 END, now(), true FROM generate_series(%s, %s) i",
            [first_user + desynced] * 2 + [first_user, first_user + count - 1],
        )
        conn.commit()


def wait_until(condition, *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the standby did not get there in time"
        time.sleep(0.05)


def primary_position(primary: Cluster) -> str:
    return primary.query("SELECT pg_current_wal_lsn()::text")[0]


def replayed(standby: Cluster, position: str) -> bool:
    return standby.query("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [position])[0]


def received(standby: Cluster, position: str) -> bool:
    return standby.query("SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn", [position])[0]


def runs(primary: Cluster) -> list[tuple]:
    with closing(primary.connect()) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT database, status, inconsistent, replica_lag_seconds"
            " FROM monitoring_healthcheckrun ORDER BY id"
        )
        return cursor.fetchall()


def test_a_current_replica_is_believed_and_its_lag_recorded(streaming):
    primary, standby = streaming
    write_pairs(primary, first_user=1, count=PAIRS, desynced=1)
    wait_until(lambda: replayed(standby, primary_position(primary)))
    before = len(runs(primary))

    result = check_sync_process(
        ["check_sync", "--database", "replica", "--json"], primary=primary.url, replica=standby.url
    )
    assert result.returncode == 0, result.stdout + result.stderr  # 1 of 200: 99.5 %
    report = json.loads(result.stdout)
    assert (report["database"], report["inconsistent"], report["total_checked"]) == (
        "replica",
        1,
        PAIRS,
    )
    assert report["replica_lag_seconds"] == 0.0
    assert runs(primary)[before:] == [("replica", "healthy", 1, 0.0)]


# Thresholds that put 1 desync in 200 pairs (99.5 %) at each state, with its exit.
STATES = {
    "healthy": ({}, 0),
    "degraded": ({"SYNC_WARN_BELOW": "99.9"}, 1),
    "critical": ({"SYNC_WARN_BELOW": "99.9", "SYNC_CRITICAL_BELOW": "99.8"}, 2),
}


def test_a_replica_in_step_with_a_quiet_primary_exits_by_the_primarys_state(streaming):
    primary, standby = streaming
    wait_until(lambda: replayed(standby, primary_position(primary)))
    time.sleep(QUIET)  # no commit for longer than the allowance
    primary.query("CHECKPOINT")  # WAL without a commit, as an idle primary writes
    primary.query("SELECT pg_switch_wal()")
    wait_until(lambda: replayed(standby, primary_position(primary)))
    before = len(runs(primary))

    # All three at once, so that none follows another's commit. Each records its run on
    # the primary first: WAL that the standby in step replays at once.
    checks = {
        state: check_sync_start(
            ["check_sync", "--database", "replica", "--json"],
            primary=primary.url,
            replica=standby.url,
            SYNC_MAX_REPLICA_LAG_SECONDS=str(ALLOWED),
            **thresholds,
        )
        for state, (thresholds, _) in STATES.items()
    }
    for state, check in checks.items():
        out, err = check.communicate(timeout=120)
        assert check.returncode == STATES[state][1], out + err
        report = json.loads(out)
        assert (report["status"], report["inconsistent"]) == (state, 1)
        assert report["replica_lag_seconds"] == 0.0
    assert sorted(runs(primary)[before:]) == sorted(("replica", state, 1, 0.0) for state in STATES)


def test_a_paused_replica_is_unknown_and_records_nothing(streaming):
    primary, standby = streaming
    wait_until(lambda: replayed(standby, primary_position(primary)))
    standby.query("SELECT pg_wal_replay_pause()")
    try:
        wait_until(lambda: standby.query("SELECT pg_get_wal_replay_pause_state()")[0] == "paused")
        time.sleep(2.5)  # the last replayed commit gets older than the allowed lag
        write_pairs(primary, first_user=10_000, count=PAIRS, desynced=PAIRS)  # all out of sync
        wait_until(lambda: received(standby, primary_position(primary)))
        before = runs(primary)

        behind = check_sync_process(
            ["check_sync", "--database", "replica", "--max-replica-lag", "1"],
            primary=primary.url,
            replica=standby.url,
        )
        assert behind.returncode == 3, behind.stdout + behind.stderr
        (line,) = behind.stdout.splitlines()
        assert line.startswith("SYNC UNKNOWN - replica 'replica' is ")
        assert line.endswith(" s behind the primary (replay paused; allowed 1 s)")
        assert int(line.split(" is ")[1].split(" s ")[0]) >= 2
        assert behind.stderr == ""
        new_runs = runs(primary)[len(before) :]
        assert not [run for run in new_runs if run[1] in ("healthy", "degraded", "critical")]

        # Without the primary, what the standby received and has not replayed tells it.
        alone = check_sync_process(
            ["check_sync", "--database", "replica", "--max-replica-lag", "1", "--no-record"],
            primary="postgres://postgres@127.0.0.1:9/nowhere",
            replica=standby.url,
        )
        assert alone.returncode == 3, alone.stdout + alone.stderr
        assert alone.stdout.startswith("SYNC UNKNOWN - replica 'replica' is ")

        # The primary itself is checked as it is: half of the pairs now out of sync.
        direct = check_sync_process(["check_sync", "--no-record", "--json"], primary=primary.url)
        assert json.loads(direct.stdout)["inconsistent"] == PAIRS + 1
    finally:
        standby.query("SELECT pg_wal_replay_resume()")

    wait_until(lambda: replayed(standby, primary_position(primary)))
    caught_up = check_sync_process(
        ["check_sync", "--database", "replica", "--json", "--max-replica-lag", "1"],
        primary=primary.url,
        replica=standby.url,
    )
    assert caught_up.returncode == 2, caught_up.stdout + caught_up.stderr
    assert json.loads(caught_up.stdout)["inconsistent"] == PAIRS + 1


def test_a_replica_whose_replay_waits_is_as_old_as_its_last_replayed_commit(streaming):
    primary, standby = streaming
    wait_until(lambda: replayed(standby, primary_position(primary)))
    time.sleep(QUIET)  # the last replayed commit gets older than the allowance
    reader = standby.connect()
    reader.autocommit = False
    try:
        with reader.cursor() as cursor:  # a long read on the standby, holding its table lock
            cursor.execute("SELECT count(*) FROM licenses_userlicense")
        locker = primary.connect()
        locker.autocommit = False
        with closing(locker), locker.cursor() as cursor:
            # Replay waits for the reader (max_standby_streaming_delay, 30 s by default).
            cursor.execute("LOCK TABLE licenses_userlicense IN ACCESS EXCLUSIVE MODE")
            locker.commit()
        write_pairs(primary, first_user=20_000, count=PAIRS, desynced=PAIRS)
        wait_until(lambda: received(standby, primary_position(primary)))

        behind = check_sync_process(
            ["check_sync", "--database", "replica"],
            primary=primary.url,
            replica=standby.url,
            SYNC_MAX_REPLICA_LAG_SECONDS=str(ALLOWED),
        )
        assert behind.returncode == 3, behind.stdout + behind.stderr
        (line,) = behind.stdout.splitlines()
        assert line.startswith("SYNC UNKNOWN - replica 'replica' is ")
        assert line.endswith(f" s behind the primary (allowed {ALLOWED} s)")  # not paused
    finally:
        reader.rollback()
        reader.close()

    wait_until(lambda: replayed(standby, primary_position(primary)))
    direct = check_sync_process(["check_sync", "--no-record", "--json"], primary=primary.url)
    caught_up = check_sync_process(
        ["check_sync", "--database", "replica", "--json"],
        primary=primary.url,
        replica=standby.url,
        SYNC_MAX_REPLICA_LAG_SECONDS=str(ALLOWED),
    )
    assert caught_up.returncode == direct.returncode == 2, caught_up.stdout + caught_up.stderr
    assert json.loads(caught_up.stdout)["inconsistent"] == 2 * PAIRS + 1
    assert json.loads(direct.stdout)["inconsistent"] == 2 * PAIRS + 1


def test_a_replica_blocked_by_replay_is_unknown_within_the_timeout(streaming):
    primary, standby = streaming
    locker = primary.connect()
    locker.autocommit = False
    try:
        with locker.cursor() as cursor:
            # Replayed on the standby: its startup process holds the same lock.
            cursor.execute("LOCK TABLE licenses_userlicense IN ACCESS EXCLUSIVE MODE")
            cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
            (position,) = cursor.fetchone()
        primary.query("SELECT txid_current()")  # a commit elsewhere flushes the lock's record
        standby.query("SELECT 1")  # the standby is up
        wait_until(lambda: received(standby, position))
        started = time.monotonic()
        result = check_sync_process(
            ["check_sync", "--database", "replica", "--timeout", "2"],
            primary=primary.url,
            replica=standby.url,
        )
        elapsed = time.monotonic() - started
    finally:
        locker.rollback()
        locker.close()
    assert result.returncode == 3, result.stdout + result.stderr
    assert len(result.stdout.splitlines()) == 1 and result.stderr == ""
    assert result.stdout.startswith("SYNC UNKNOWN - ")
    assert elapsed < 2 + 2 + 1.5


def test_a_replica_that_can_neither_stream_nor_reach_its_primary_is_unknown(streaming):
    # Last in the module: it stops the primary for good.
    primary, standby = streaming
    _sh("pg_ctlcluster", primary.version, primary.name, "stop", "-m", "fast")
    wait_until(
        lambda: standby.query(
            "SELECT COALESCE((SELECT status FROM pg_stat_wal_receiver), 'none') <> 'streaming'"
        )[0]
    )
    result = check_sync_process(
        ["check_sync", "--database", "replica", "--no-record"],
        primary=primary.url,
        replica=standby.url,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "SYNC UNKNOWN - replica 'replica' cannot tell how far it is behind: it is not "
        "streaming and the primary cannot be reached"
    ]
    assert result.stderr == ""
