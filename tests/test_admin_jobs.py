"""Repairs too large for a request run as background jobs, and their run page follows them.

The admin queues the job with the ORM backend (django-tasks-db) and redirects to the
run's page; the worker is the backend's own loop in this process (db_worker's Worker,
without its signal handlers) or, on PostgreSQL, the real ``manage.py db_worker`` started
from deploy/academy-worker.service.
"""

import signal
import time
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

from licenses import consistency
from licenses.models import LicenseProgression
from monitoring.models import HealthCheckRun, RunState
from monitoring.repair import claim
from specializations.models import SpecializationProgress
from tests import factories
from tests.conftest import manage
from tests.production import database_url, start_worker, stop

DESYNCS = reverse("admin:monitoring_desynccase_changelist")
ORM_BACKEND = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


def run_page(run) -> str:
    return reverse("admin:monitoring_healthcheckrun_change", args=[run.pk])


def progress_url(run) -> str:
    return reverse("admin:monitoring_healthcheckrun_progress", args=[run.pk])


@pytest.fixture
def orm_backend(settings):
    settings.TASKS = ORM_BACKEND


@pytest.fixture
def run_worker(monkeypatch):
    """The ORM backend's worker loop until the queue is empty, in this process.

    Its between-jobs ``close_old_connections()`` would close the test's transaction,
    so it is left out here, as Django's test client leaves it out of requests.
    """
    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)
    return _run_worker


def _run_worker() -> None:
    db_worker.Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    ).run()


def keys(users, specialization="PLAYER"):
    return [f"{u.pk}:{specialization}" for u in users]


def repair(client, query="", *, selected=(), across=False, reason="bulk import", follow=False):
    data = {"action": "repair_selected", ACTION_CHECKBOX_NAME: list(selected) or ["x"]}
    data.update(post="yes", reason=reason, select_across="1" if across else "0")
    return client.post(DESYNCS + query, data, follow=follow)


@pytest.mark.django_db
def test_a_selection_within_the_limit_is_repaired_in_the_request(
    staff_client, orm_backend, settings
):
    settings.SYNC_ADMIN_INLINE_REPAIR_LIMIT = 3
    users = factories.make_desynced_pairs(3)
    response = repair(staff_client, selected=keys(users), follow=True)
    (message,) = response.context["messages"]
    assert str(message).startswith("Repaired 3 desync case(s)")
    assert not DBTaskResult.objects.exists()
    run = HealthCheckRun.objects.get()
    assert (run.state, run.repaired, run.job_id, run.queued_at) == ("done", 3, "", None)


@pytest.mark.django_db
def test_a_selection_over_the_limit_is_queued_and_redirects_to_its_run_page(
    staff_client, staff, orm_backend, settings
):
    settings.SYNC_ADMIN_INLINE_REPAIR_LIMIT = 3
    users = factories.make_desynced_pairs(4)
    confirmation = staff_client.post(
        DESYNCS, {"action": "repair_selected", ACTION_CHECKBOX_NAME: keys(users)}
    )
    assert b'id="repair-in-background"' in confirmation.content

    response = repair(staff_client, selected=keys(users))
    run = HealthCheckRun.objects.get()
    assert response.status_code == 302 and response["Location"] == run_page(run)
    assert (run.kind, run.state, run.planned, run.triggered_by) == ("repair", "queued", 4, staff)
    job = DBTaskResult.objects.get()
    assert (str(job.id), job.status, job.task_path) == (
        run.job_id,
        "READY",
        "monitoring.tasks.repair_job",
    )
    assert job.args_kwargs["kwargs"]["pairs"] == [[u.pk, "PLAYER"] for u in users]
    assert consistency.count_pairs().inconsistent == 4  # nothing repaired in the request

    page = staff_client.get(run_page(run))
    assert "Waiting for a worker (queued since" in page.content.decode()
    assert page.context["progress"].done_text == "0 of 4"
    assert staff_client.get(progress_url(run)).json()["state"] == "queued"


@pytest.mark.django_db
def test_every_matching_case_is_a_job_however_few(staff_client, orm_backend):
    factories.make_desynced_pairs(2)
    response = repair(staff_client, "?kind=level_mismatch&p=2&o=1", across=True)
    run = HealthCheckRun.objects.get()
    assert response["Location"] == run_page(run)
    assert (run.state, run.planned) == ("queued", None)  # counted by the job
    job = DBTaskResult.objects.get()
    # Paging and ordering do not choose cases; the filter does.
    assert job.args_kwargs["kwargs"]["query"] == "kind=level_mismatch"
    assert job.args_kwargs["kwargs"]["pairs"] is None


@pytest.mark.django_db
def test_the_worker_repairs_what_the_filtered_list_showed_and_the_page_says_done(
    staff_client, staff, orm_backend, run_worker
):
    players = factories.make_desynced_pairs(5)
    untouched = factories.make_pairs(2, level=2)
    for user in untouched:  # another kind, outside the kind filter
        factories.delete_row(SpecializationProgress, user, "PLAYER")
    repair(staff_client, "?kind=level_mismatch", across=True)
    run = HealthCheckRun.objects.get()

    run_worker()
    run.refresh_from_db()
    assert (run.state, run.planned, run.examined, run.repaired) == ("done", 5, 5, 5)
    assert run.host and run.pid and run.started_at >= run.queued_at
    assert [v.kind for v in consistency.violations()] == ["missing_progress"] * 2
    assert LogEntry.objects.filter(user=staff).count() == 5
    assert set(
        LicenseProgression.objects.filter(reason="bulk import").values_list(
            "license__user_id", flat=True
        )
    ) == {u.pk for u in players}
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"

    page = staff_client.get(run_page(run)).content.decode()
    assert (
        "Done: repaired 5, 0 already in sync. Check after: critical, 71.42% consistent,"
        " 2 desync(s) left." in page
    )
    progress = staff_client.get(progress_url(run)).json()
    assert (progress["finished"], progress["done_text"], progress["repaired"]) == (
        True,
        "5 of 5",
        5,
    )


@pytest.mark.django_db
def test_the_progress_of_a_running_repair_shows_done_total_rate_and_time_left(staff_client):
    run = claim.queue_repair(specialization=None, planned=3000)
    now = timezone.now()
    HealthCheckRun.objects.filter(pk=run.pk).update(
        state=RunState.RUNNING, started_at=now - timedelta(seconds=10), updated_at=now
    )
    HealthCheckRun.objects.filter(pk=run.pk).update(examined=1200, repaired=1100)

    progress = staff_client.get(progress_url(run)).json()
    assert {k: progress[k] for k in ("state", "done", "total", "repaired", "finished")} == {
        "state": "running",
        "done": 1200,
        "total": 3000,
        "repaired": 1100,
        "finished": False,
    }
    assert progress["rate"] == pytest.approx(120, rel=0.05)
    assert progress["seconds_left"] == pytest.approx(15, rel=0.05)
    assert progress["message"] == "Repairing: 1,200 of 3,000 pairs looked at, 1,100 repaired."
    assert progress["repaired_text"] == "1,100"
    page = staff_client.get(run_page(run)).content.decode()
    for text in ("1,200 of 3,000", ">1,100<", "pairs/s", " s</td>", 'data-finished="0"'):
        assert text in page
    assert "window.setTimeout(poll, 1000)" in page  # it refreshes itself while running


@pytest.mark.django_db
def test_a_job_refused_by_single_flight_says_so_on_its_run_page(
    staff_client, orm_backend, run_worker
):
    factories.make_desynced_pairs(3)
    repair(staff_client, across=True)
    queued = HealthCheckRun.objects.get()
    holder = claim.claim_repair(specialization="PLAYER")  # cron's repair started meanwhile

    run_worker()
    queued.refresh_from_db()
    assert queued.state == "failed"
    assert queued.state_reason.startswith(
        f"refused: a repair is already running (run {holder.pk} by system on "
    )
    assert consistency.count_pairs().inconsistent == 3 and not LogEntry.objects.exists()
    page = staff_client.get(run_page(queued)).content.decode()
    assert f"Failed: refused: a repair is already running (run {holder.pk} by system" in page


@pytest.mark.django_db
def test_while_a_repair_runs_queueing_is_refused_at_once(staff_client, orm_backend):
    factories.make_desynced_pairs(3)
    holder = claim.claim_repair(specialization=None)
    response = repair(staff_client, across=True, follow=True)
    (message,) = response.context["messages"]
    assert message.level_tag == "error"
    assert str(message).startswith(f"Repair refused: a repair is already running (run {holder.pk}")
    assert list(HealthCheckRun.objects.all()) == [holder] and not DBTaskResult.objects.exists()


@pytest.mark.django_db
def test_a_job_no_worker_has_started_says_so(staff_client, orm_backend, settings):
    settings.SYNC_RUN_INTERRUPTED_AFTER_SECONDS = 120
    factories.make_desynced_pairs(1)
    repair(staff_client, across=True)
    run = HealthCheckRun.objects.get()
    HealthCheckRun.objects.filter(pk=run.pk).update(
        queued_at=timezone.now() - timedelta(minutes=10)
    )
    progress = staff_client.get(progress_url(run)).json()
    assert (progress["state"], progress["waiting"], progress["stalled"]) == ("queued", True, True)
    assert (
        "no worker has started it for 10 min 00 s; is the worker running?" in (progress["message"])
    )
    assert "academy-worker.service" in staff_client.get(run_page(run)).content.decode()

    DBTaskResult.objects.update(status="FAILED")  # a worker crashed on it before it reported
    progress = staff_client.get(progress_url(run)).json()
    assert progress["job_status"] == "FAILED"
    assert "its job failed before the repair started" in progress["message"]


@pytest.mark.django_db
def test_the_job_of_a_staff_user_deleted_meanwhile_is_refused(orm_backend, run_worker):
    staff = get_user_model().objects.create_user("leaver", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    factories.make_desynced_pairs(2)
    repair(client, across=True)
    run = HealthCheckRun.objects.get()
    staff_id = staff.pk
    staff.delete()

    run_worker()
    run.refresh_from_db()
    assert run.state == "failed"
    assert run.state_reason == (
        f"refused: the staff user (id {staff_id}) who queued this repair no longer exists"
    )
    assert consistency.count_pairs().inconsistent == 2


@pytest.mark.django_db
def test_a_run_page_is_shown_to_whoever_queued_it_and_refused_to_other_staff(orm_backend):
    def limited(username, *perms):
        user = get_user_model().objects.create_user(username, is_staff=True)
        for codename in perms:
            user.user_permissions.add(Permission.objects.get(codename=codename))
        client = Client()
        client.force_login(user)
        return client

    owner = limited("repairer", "change_userlicense", "view_desynccase")
    factories.make_desynced_pairs(2)
    repair(owner, across=True)
    run = HealthCheckRun.objects.get()
    assert owner.get(run_page(run)).status_code == 200
    assert owner.get(progress_url(run)).status_code == 200

    other = limited("bystander", "view_desynccase")
    assert other.get(run_page(run)).status_code in (302, 403)
    assert other.get(progress_url(run)).status_code == 403
    assert Client().get(progress_url(run)).status_code == 302  # to the login page


def test_the_limit_setting_is_read_strictly():
    for raw, problem in (("2k", "is not an integer"), ("0", "must be at least 1")):
        result = manage(
            "check",
            DEBUG="1",
            DATABASE_URL="sqlite:///:memory:",
            SYNC_ADMIN_INLINE_REPAIR_LIMIT=raw,
        )
        assert result.returncode == 1
        assert result.stderr.splitlines() == [
            f"Configuration error: SYNC_ADMIN_INLINE_REPAIR_LIMIT={raw!r} {problem}"
        ]


# --- The real worker (a process of its own, on the shared PostgreSQL test database) ---

needs_shared_database = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the SQLite test database is in memory, out of the worker process's reach",
)


def wait_for(run, *, states, seconds=60, worker=None) -> HealthCheckRun:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.state in states:
            return run
        if worker is not None and worker.process.poll() is not None:
            raise AssertionError(f"the worker exited:\n{worker.log.read_text()}")
        time.sleep(0.05)
    log = worker.log.read_text() if worker else ""
    raise AssertionError(f"run {run.pk} still {run.state} after {seconds} s\n{log}")


@pytest.fixture
def worker(committed_db, settings, tmp_path):
    settings.TASKS = ORM_BACKEND
    process = start_worker(tmp_path, database_url=database_url(connection.settings_dict))
    yield process
    stop(process.process)


@needs_shared_database
def test_the_real_db_worker_runs_a_queued_repair(worker):
    staff = get_user_model().objects.create_user("night-shift", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    factories.make_desynced_pairs(40)
    repair(client, across=True)
    run = wait_for(HealthCheckRun.objects.get(), states={"done"}, worker=worker)
    assert (run.planned, run.examined, run.repaired, run.inconsistent) == (40, 40, 40, 0)
    assert run.pid == worker.process.pid
    assert consistency.count_pairs().inconsistent == 0
    assert "Done: repaired 40, 0 already in sync" in client.get(run_page(run)).content.decode()
    worker.process.send_signal(signal.SIGTERM)  # idle: stops at once
    assert worker.process.wait(timeout=20) == 0


@needs_shared_database
def test_stopping_the_worker_mid_repair_interrupts_the_run_with_what_it_committed(worker):
    staff = get_user_model().objects.create_user("day-shift", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    factories.bulk_mismatched_pairs(20_000, prefix="import")
    repair(client, across=True)
    run = HealthCheckRun.objects.get()
    worker.wait_until_started()
    deadline = time.monotonic() + 60
    while run.repaired == 0 and time.monotonic() < deadline:  # past its first batch
        time.sleep(0.02)
        run.refresh_from_db()
    assert run.state == "running", worker.log.read_text()

    worker.process.send_signal(signal.SIGTERM)  # systemctl stop
    assert worker.process.wait(timeout=30) == 0
    run.refresh_from_db()
    assert (run.state, run.state_reason) == ("interrupted", "stopped by SIGTERM")
    assert 0 < run.repaired < 20_000
    # What it committed is kept and counted once; nothing half-repaired.
    assert consistency.count_pairs().inconsistent == 20_000 - run.repaired
    assert LogEntry.objects.filter(user=staff).count() == run.repaired
    assert "Interrupted: stopped by SIGTERM." in client.get(run_page(run)).content.decode()
