"""Faults with real processes and connections: check_sync --repair started twice, killed,
cut off from PostgreSQL, blocked by a lock, behind pgbouncer in transaction mode.

Each ends with no half-repaired pair, one audit row per licence change, runs that
say what happened and every repair counted once. Small batches
(SYNC_REPAIR_BATCH_SIZE=5) make "mid-run" a matter of a few hundred batches.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from licenses import consistency
from licenses.guard import unguarded
from licenses.models import LicenseProgression, UserLicense
from monitoring import selectors
from monitoring.models import HealthCheckRun
from specializations.models import SpecializationProgress
from tests.conftest import manage_process, requires_postgres
from tests.factories import make_pairs

pytestmark = [requires_postgres, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
REPAIR = ["check_sync", "--repair", "--timeout", "60"]
SILENT_AFTER = 2  # SYNC_RUN_INTERRUPTED_AFTER_SECONDS in the processes and here
APP_NAME = f"repair-fault-test-{os.getpid()}"


class Desyncs:
    """``n`` pairs of each kind of desync (4n in all), with the levels repair must reach."""

    def __init__(self, n: int):
        users = make_pairs(4 * n, level=2)
        self.ahead = [u.pk for u in users[:n]]  # progress 4, licence 2: licence raised
        self.behind = [u.pk for u in users[n : 2 * n]]  # licence 5: progress raised
        self.no_licence = [u.pk for u in users[2 * n : 3 * n]]  # licence created
        self.no_progress = [u.pk for u in users[3 * n :]]  # progress created
        self.total = 4 * n
        with unguarded():  # committed desyncs, let through the commit guard on purpose
            SpecializationProgress.objects.filter(student_id__in=self.ahead).update(current_level=4)
            UserLicense.objects.filter(user_id__in=self.behind).update(
                current_level=5, max_achieved_level=5
            )
            UserLicense.objects.filter(user_id__in=self.no_licence).delete()
            SpecializationProgress.objects.filter(student_id__in=self.no_progress).delete()

    def repaired_now(self) -> int:
        return self.total - consistency.count_pairs().inconsistent

    def assert_nothing_half_done(self) -> None:
        """Every licence change has its one audit row, and no audit row lacks its change."""
        raised = UserLicense.objects.filter(user_id__in=self.ahead, current_level=4)
        created = UserLicense.objects.filter(user_id__in=self.no_licence)
        assert LicenseProgression.objects.count() == raised.count() + created.count()
        for licence in [*raised, *created]:
            (entry,) = licence.progressions.all()
            assert entry.to_level == licence.current_level
        # A side moved or created without its pair being in sync would be a desync of a
        # kind the data did not start with (each pair is either untouched or repaired).
        by_kind = consistency.count_pairs().by_kind
        assert by_kind["level_mismatch"] <= len(self.ahead) + len(self.behind)

    def assert_all_repaired_once(self) -> None:
        assert consistency.count_pairs().inconsistent == 0
        levels = (
            dict(SpecializationProgress.objects.values_list("student_id", "current_level")),
            dict(UserLicense.objects.values_list("user_id", "current_level")),
        )
        for ids, level in [(self.ahead, 4), (self.behind, 5), (self.no_licence, 2)]:
            assert {levels[0][i] for i in ids} == {level} == {levels[1][i] for i in ids}
        assert {levels[0][i] for i in self.no_progress} == {2}
        assert LicenseProgression.objects.count() == len(self.ahead) + len(self.no_licence)
        assert HealthCheckRun.objects.aggregate(n=Sum("repaired"))["n"] == self.total
        assert not HealthCheckRun.objects.filter(state="running").exists()


def database_url(port=None) -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{port or s['PORT'] or 5432}/{s['NAME']}"


def command(args, *, port=None, **settings) -> subprocess.Popen:
    """``manage.py args`` against the test database; its connections carry APP_NAME."""
    return manage_process(
        *args,
        PGAPPNAME=APP_NAME,  # libpq's application_name: these backends, not the suite's
        SECRET_KEY="fault-test",
        DATABASE_URL=database_url(port),
        SYNC_REPAIR_BATCH_SIZE="5",
        SYNC_RUN_INTERRUPTED_AFTER_SECONDS=str(SILENT_AFTER),
        **settings,
    )


def finish(process, timeout=60) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def wait_for(condition, *, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.01)
    raise AssertionError("timed out waiting")


def mid_run(repaired_at_least=50) -> HealthCheckRun:
    return wait_for(
        lambda: HealthCheckRun.objects.filter(
            kind="repair", state="running", repaired__gte=repaired_at_least
        ).first()
    )


def repair_backends() -> list[int]:
    """Backends of the processes started here (the suite may hold connections of its own)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = %s",
            [APP_NAME],
        )
        return [pid for (pid,) in cursor.fetchall()]


@pytest.fixture(autouse=True)
def _silent_after(settings):
    settings.SYNC_RUN_INTERRUPTED_AFTER_SECONDS = SILENT_AFTER


def test_two_repairs_started_together_one_runs_one_is_refused_at_once(committed_db):
    data = Desyncs(750)
    started = time.monotonic()
    processes = [command(REPAIR), command(REPAIR)]
    ended = {}
    while len(ended) < 2:
        for i, process in enumerate(processes):
            if i not in ended and process.poll() is not None:
                ended[i] = time.monotonic() - started
        time.sleep(0.01)
    results = [finish(p) for p in processes]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 3], results
    refused = next(i for i, (code, _, _) in enumerate(results) if code == 3)
    winner = 1 - refused
    (run,) = HealthCheckRun.objects.all()  # the refusal wrote nothing
    out = results[refused][1]
    assert out.startswith(
        f"SYNC UNKNOWN - a repair is already running (run {run.pk} by system on"
        f" {socket.gethostname()} pid {processes[winner].pid} since "
    ), out
    assert ended[refused] < ended[winner]  # refused while the holder was still at work
    assert (run.state, run.repaired, run.pid) == ("done", data.total, processes[winner].pid)
    data.assert_all_repaired_once()


def test_kill_9_mid_run_keeps_and_counts_the_committed_batches_then_a_rerun_finishes(
    committed_db,
):
    data = Desyncs(750)
    process = command(REPAIR)
    killed = mid_run()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    wait_for(lambda: not repair_backends())  # its backend rolled the open batch back
    killed.refresh_from_db()
    assert killed.state == "running"  # nobody could say otherwise ...
    assert killed.repaired == data.repaired_now() < data.total  # ... but it counted exactly
    data.assert_nothing_half_done()

    # Still fresh: a rerun is refused, naming the dead holder.
    code, out, _ = finish(command(REPAIR))
    assert code == 3 and f"a repair is already running (run {killed.pk} " in out
    # Silent for longer than SYNC_RUN_INTERRUPTED_AFTER_SECONDS: interrupted, and no
    # longer in the way.
    wait_for(lambda: selectors.run_state(killed, now=timezone.now()) == "interrupted", timeout=5)
    code, out, _ = finish(command(REPAIR))
    assert code == 0, out
    killed.refresh_from_db()
    rerun = HealthCheckRun.objects.exclude(pk=killed.pk).get()
    assert killed.state == "interrupted"
    assert f"taken over by run {rerun.pk}" in killed.state_reason
    assert rerun.repaired == data.total - killed.repaired
    data.assert_all_repaired_once()


def test_connection_terminated_mid_run_ends_interrupted_with_its_count_then_a_rerun_finishes(
    committed_db,
):
    data = Desyncs(750)
    process = command(REPAIR)
    mid_run()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [repair_backends()]
        )
    code, out, err = finish(process)
    assert code == 3, out + err
    run = HealthCheckRun.objects.get()
    # psycopg2 reads the server's notice, or only the closed socket when it was idle.
    cut_off = ("terminating connection due to administrator command", "server closed the")
    assert out.startswith(
        f"SYNC UNKNOWN - repair stopped after {run.repaired} repaired pair(s), which are kept: "
    ), out
    assert out.split("which are kept: ")[1].startswith(cut_off), out
    assert run.state == "interrupted"
    assert run.state_reason.startswith(cut_off)
    assert run.repaired == data.repaired_now() < data.total
    data.assert_nothing_half_done()

    assert finish(command(REPAIR))[0] == 0
    data.assert_all_repaired_once()


def test_sigterm_mid_run_ends_it_interrupted_with_its_count(committed_db):
    # systemd's stop (or a kill) sends SIGTERM: the repair stops between two
    # statements, says so, and its run tells what it did.
    data = Desyncs(750)
    process = command(REPAIR)
    mid_run()
    process.send_signal(signal.SIGTERM)
    code, out, err = finish(process)
    assert code == 3, out + err
    run = HealthCheckRun.objects.get()
    assert out == (
        f"SYNC UNKNOWN - repair stopped after {run.repaired} repaired pair(s), which are kept:"
        " stopped by SIGTERM\n"
    )
    assert (run.state, run.state_reason) == ("interrupted", "stopped by SIGTERM")
    assert run.repaired == data.repaired_now() < data.total
    data.assert_nothing_half_done()
    assert finish(command(REPAIR))[0] == 0
    data.assert_all_repaired_once()


def test_a_lock_held_by_another_connection_is_left_and_reported_within_the_lock_timeout(
    committed_db,
):
    data = Desyncs(10)
    locker = psycopg2.connect(**connection.get_connection_params())
    with locker.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM licenses_userlicense WHERE user_id = %s FOR UPDATE", [data.ahead[0]]
        )
    try:
        started = time.monotonic()
        code, out, _ = finish(command(REPAIR, SYNC_REPAIR_LOCK_TIMEOUT="0.5"))
        elapsed = time.monotonic() - started
    finally:
        locker.rollback()
        locker.close()
    assert elapsed < 5  # start-up, the repair, one lock timeout of retries, the check
    lines = out.splitlines()
    assert lines[0].startswith("SYNC WARNING - 1 of 40 pairs out of sync (97.50%)")
    assert code == 1  # the check after the repair tells what is left
    run = HealthCheckRun.objects.get()
    assert lines[1] == (
        "repaired 39 pair(s) (level_mismatch=19, missing_license=10, missing_progress=10),"
        " 0 already in sync, 1 left: locked by another transaction (run again),"
        f" in {lines[1].split(' in ')[-1].split(' ms')[0]} ms (run {run.pk})"
    )
    assert lines[2] == f"  user {data.ahead[0]} PLAYER: locked, left for later"
    assert (run.state, run.repaired, run.skipped_locked) == ("done", 39, 1)
    data.assert_nothing_half_done()
    assert finish(command(REPAIR))[0] == 0
    data.assert_all_repaired_once()


# --- Behind pgbouncer in transaction mode ---


@pytest.fixture
def pgbouncer(tmp_path):
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(binary):
        pytest.skip("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    s = connection.settings_dict
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    (folder / "users.txt").write_text(f'"{s["USER"]}" "{s["PASSWORD"] or ""}"\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={s['HOST'] or '127.0.0.1'} port={s['PORT'] or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        "pool_mode = transaction\n"
        # One server connection for every client: any session state one client left
        # behind would show in the next.
        "default_pool_size = 1\nmax_client_conn = 20\n"
        f"admin_users = {s['USER']}\n"  # SHOW CLIENTS: who waits for the one connection
        f"logfile = {folder / 'pgbouncer.log'}\npidfile = {folder / 'pgbouncer.pid'}\n"
    )
    shutil.chown(folder, user="postgres") if os.geteuid() == 0 else None
    for path in folder.iterdir():
        if os.geteuid() == 0:
            shutil.chown(path, user="postgres")
    user = ["-u", "postgres"] if os.geteuid() == 0 else []
    server = subprocess.Popen([binary, *user, str(folder / "pgbouncer.ini")])
    wait_for(lambda: _accepts(port), timeout=10)
    yield port
    server.terminate()
    server.wait(10)
    shutil.rmtree(folder, ignore_errors=True)


def _accepts(port) -> bool:
    try:
        psycopg2.connect(database_url(port), connect_timeout=1).close()
        return True
    except psycopg2.OperationalError:
        return False


def waiting_clients(port) -> int:
    """Clients pgbouncer holds back, waiting for a server connection."""
    admin = psycopg2.connect(database_url(port).rsplit("/", 1)[0] + "/pgbouncer")
    admin.autocommit = True  # the admin console takes no transactions
    try:
        with admin.cursor() as cursor:
            cursor.execute("SHOW CLIENTS")
            state = [column.name for column in cursor.description].index("state")
            return sum(row[state] == "waiting" for row in cursor.fetchall())
    finally:
        admin.close()


def test_behind_pgbouncer_in_transaction_mode_single_flight_holds_and_no_state_leaks(
    committed_db, pgbouncer
):
    data = Desyncs(100)
    # The first repair is held in its first batch (the lowest user id, repaired first:
    # it retries the locked pair until SYNC_REPAIR_LOCK_TIMEOUT) by a lock taken beside
    # pgbouncer, until the second repair has answered or it and three checks wait for
    # the one server connection: started together, the first could finish before the
    # second had started (a race, not single flight).
    locker = psycopg2.connect(**connection.get_connection_params())
    with locker.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM licenses_userlicense WHERE user_id = %s FOR UPDATE", [data.ahead[0]]
        )
    try:
        first = command(REPAIR, port=pgbouncer, SYNC_REPAIR_LOCK_TIMEOUT="60")
        wait_for(lambda: HealthCheckRun.objects.filter(kind="repair", state="running").exists())
        second = command(REPAIR, port=pgbouncer)
        checks = [command(["check_sync", "--no-record", "-v", "0"], port=pgbouncer)
                  for _ in range(3)]  # fmt: skip
        wait_for(lambda: second.poll() is not None or waiting_clients(pgbouncer) >= 4)
    finally:
        locker.rollback()
        locker.close()
    (code, out, err), refused = finish(first), finish(second)
    assert code == 0, (out, err)
    assert refused[0] == 3 and "a repair is already running (run " in refused[1], refused
    assert all(finish(p)[0] in (0, 1, 2) for p in checks)  # plain checks ran beside it
    data.assert_all_repaired_once()
    # The one server connection served every client: nothing set by one is seen by the next.
    probe = psycopg2.connect(database_url(pgbouncer))
    with probe.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('lock_timeout'), current_setting('statement_timeout'),"
            " current_setting('enable_hashjoin'), current_setting('jit')"
        )
        assert cursor.fetchone() == ("0", "0", "on", "on")
    probe.close()
