"""Import jobs run by the real worker: ``manage.py db_worker`` from deploy/academy-worker.service,
a process of its own on the shared PostgreSQL test database, reading the uploads from the
same MEDIA_ROOT. It is killed with ``kill -9`` in the middle of an import: the run reads
interrupted once its heartbeat is old, nothing of it is written, and Run again ends as one
uninterrupted import; its database connection cut mid-import ends it failed. The reporter's
heartbeat thread on both databases, and a real browser following a run: at the end.
"""

import os
import signal
import time
from pathlib import Path

import psycopg2
import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.management.commands import db_worker

from imports import runs, tasks
from imports.models import ImportRun
from licenses import consistency
from specializations.models import ProgressEvent, SpecializationProgress
from specializations.services import enroll
from tests.production import database_url, start_worker, stop
from tests.source_db import ACADEMY
from tests.test_browser import browser, click_and_wait, screenshot  # noqa: F401  (a fixture)

ORM_BACKEND = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
APP_NAME = "import-job-worker-test"
LINES = 30_000

needs_shared_database = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the SQLite test database is in memory, out of the worker process's reach",
)


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def staff_client(committed_db, settings, media):
    settings.TASKS = ORM_BACKEND
    staff = get_user_model().objects.create_user("importer", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    return client


def worker(tmp_path: Path, name: str, media: Path, **settings: str):
    return start_worker(
        tmp_path / name,
        database_url=database_url(connection.settings_dict),
        MEDIA_ROOT=str(media),
        PGAPPNAME=APP_NAME,
        **settings,
    )


def wait_for(condition, *, seconds=60.0, worker=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := condition():
            return found
        if worker is not None and worker.process.poll() is not None:
            raise AssertionError(f"the worker exited:\n{worker.log.read_text()}")
        time.sleep(0.05)
    log = worker.log.read_text() if worker else ""
    raise AssertionError(f"timed out\n{log}")


def run_page(run) -> str:
    return reverse("admin:imports_importrun_change", args=[run.pk])


def progress(client, run) -> dict:
    return client.get(reverse("admin:imports_importrun_progress", args=[run.pk])).json()


def awards(students) -> SimpleUploadedFile:
    rows = [f"{students[i % len(students)].pk},PLAYER,2,1" for i in range(LINES)]
    content = "\n".join(["student_id,specialization,xp,sessions", *rows]) + "\n"
    return SimpleUploadedFile("awards.csv", content.encode())


def imported() -> tuple:
    return (
        ProgressEvent.objects.filter(source="import:awards.csv").count(),
        sorted(SpecializationProgress.objects.values_list("total_xp", "completed_sessions")),
    )


def backend_waits_for_a_lock():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            " AND wait_event_type = 'Lock'",
            [APP_NAME],
        )
        return cursor.fetchone()


def backend_gone() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = %s", [APP_NAME]
        )
        return cursor.fetchone()[0] == 0


@needs_shared_database
def test_a_worker_killed_mid_import_leaves_it_interrupted_and_run_again_completes_it(
    staff_client, settings, tmp_path, media
):
    settings.SYNC_RUN_INTERRUPTED_AFTER_SECONDS = 3  # the page's reading; the worker's: below
    students = [get_user_model().objects.create_user(f"player{i}") for i in range(3)]
    for student in students:
        enroll(student, "PLAYER")
    staff_client.post(reverse("admin:imports_importrun_new_file"), {"file": awards(students)})
    run = ImportRun.objects.get()
    assert run.state == "queued" and len(list(media.rglob("awards.csv"))) == 1

    # The ledger is locked: the import reads the whole file, then waits in its check.
    blocker = psycopg2.connect(database_url(connection.settings_dict))
    blocker.cursor().execute("LOCK TABLE specializations_progressevent IN ACCESS EXCLUSIVE MODE")
    first = worker(tmp_path, "first", media, SYNC_RUN_INTERRUPTED_AFTER_SECONDS="3")
    try:
        wait_for(backend_waits_for_a_lock, worker=first)
        reading = wait_for(
            lambda: (p := progress(staff_client, run))["done"] == LINES and p, worker=first
        )
        assert (reading["state"], reading["total"], reading["texts"]["read"]) == (
            "running",
            LINES,
            "30,000 of 30,000",
        )
        assert reading["message"] == (
            "All 30,000 lines read; checking them and writing them in one transaction."
        )
        time.sleep(4)  # longer than the age limit: its heartbeat keeps it running
        assert progress(staff_client, run)["state"] == "running"
        run.refresh_from_db()
        assert (run.pid, run.host) == (first.process.pid, os.uname().nodename)

        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=10)
    finally:
        blocker.rollback()
        blocker.close()
        stop(first.process)
    wait_for(backend_gone)
    assert imported()[0] == 0  # nothing of the killed run is written

    dead = wait_for(lambda: (p := progress(staff_client, run))["state"] == "interrupted" and p)
    assert dead["stalled"] and dead["message"].startswith("Interrupted: no report since ")
    page = staff_client.get(run_page(run)).content.decode()
    assert 'id="run-again"' in page

    response = staff_client.post(reverse("admin:imports_importrun_run_again", args=[run.pk]))
    again = ImportRun.objects.exclude(pk=run.pk).get()
    assert response["Location"] == run_page(again)
    second = worker(tmp_path, "second", media)
    try:
        wait_for(lambda: again.refresh_from_db() or again.state == "done", worker=second)
    finally:
        stop(second.process)
    run.refresh_from_db()
    assert run.state == "interrupted" and f"taken over by run {again.pk}" in run.state_reason
    assert (again.report["events"], again.report["written"]) == (LINES, True)
    assert imported() == (LINES, [(20_000, 10_000)] * 3)
    assert consistency.count_pairs().inconsistent == 0
    assert list(media.rglob("*.csv")) == []  # the upload is gone with the run's end
    assert (
        "Done: 30,000 new events imported from 30,000 lines"
        in staff_client.get(run_page(again)).content.decode()
    )


@needs_shared_database
def test_the_worker_reads_the_source_url_from_its_own_settings(
    staff_client, source, academy_catalogue, settings, tmp_path, media
):
    url = source.url.replace("://postgres@", "://postgres:w0rker-secret@", 1)
    settings.IMPORTS_SOURCE_URL = url  # the web server's, for its page
    staff_client.post(reverse("admin:imports_importrun_run_source"), {})
    run = ImportRun.objects.get()
    process = worker(tmp_path, "source", media, IMPORTS_SOURCE_URL=url)
    try:
        wait_for(lambda: run.refresh_from_db() or run.state == "done", worker=process)
    finally:
        stop(process.process)
    assert run.report["found"] == ACADEMY["found"] and run.read == ACADEMY["found"]
    assert consistency.count_pairs().inconsistent == 3
    assert "w0rker-secret" not in process.log.read_text()
    assert "w0rker-secret" not in staff_client.get(run_page(run)).content.decode()


# --- The reporter's thread: the count the callbacks left unwritten, and the heartbeat ---


@pytest.mark.django_db(transaction=True)
def test_the_reporters_thread_writes_the_last_count_and_keeps_the_heartbeat(settings):
    settings.SYNC_RUN_INTERRUPTED_AFTER_SECONDS = 4  # a beat every second
    long_ago = timezone.now() - timezone.timedelta(minutes=10)
    run = ImportRun.objects.create(
        kind="file", state="running", started_at=long_ago, updated_at=long_ago
    )
    with runs.Reporter(run) as reporter:
        reporter.lines(10_000)
        reporter.lines(20_000)  # within the second: left to the thread
        wait_for(lambda: ImportRun.objects.get(pk=run.pk).read == {"lines": 20_000}, seconds=10)
        first = ImportRun.objects.get(pk=run.pk).updated_at
        wait_for(lambda: ImportRun.objects.get(pk=run.pk).updated_at > first, seconds=10)
    assert runs.read_state(ImportRun.objects.get(pk=run.pk)) == "running"


# --- In a real browser: the upload form, then the run's page following the worker ---


@needs_shared_database
@pytest.mark.browser
def test_an_upload_in_a_real_browser_is_followed_by_its_page_to_done(
    committed_db,
    live_server,
    browser,  # noqa: F811  (the fixture imported above)
    settings,
    tmp_path,
    media,
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain http here
    settings.TASKS = ORM_BACKEND
    get_user_model().objects.create_user(
        "mover", password="moving-in-pass-1", is_staff=True, is_superuser=True
    )
    students = [get_user_model().objects.create_user(f"player{i}") for i in range(3)]
    for student in students:
        enroll(student, "PLAYER")
    path = tmp_path / "awards.csv"
    path.write_bytes(awards(students).read())

    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("mover")
    browser.find_element(By.NAME, "password").send_keys("moving-in-pass-1")
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "input[type=submit]"))
    browser.get(f"{live_server.url}/admin/imports/importrun/")
    click_and_wait(browser, browser.find_element(By.ID, "new-file-import"))
    browser.find_element(By.NAME, "file").send_keys(str(path))
    click_and_wait(browser, browser.find_element(By.ID, "start-import"))

    run = ImportRun.objects.get()
    assert browser.current_url.endswith(run_page(run))
    message = browser.find_element(By.ID, "run-progress-message").text
    assert message.startswith("Waiting for a worker (queued since")
    process = worker(tmp_path, "browser", media)
    try:

        def finished(driver):
            # The page reloads itself once the run has finished; until then it polls.
            panel = driver.find_elements(By.CSS_SELECTOR, "#run-progress[data-finished='1']")
            return panel[0] if panel else False

        WebDriverWait(browser, 90, poll_frequency=0.2).until(finished)
    finally:
        stop(process.process)
    assert browser.find_element(By.ID, "run-progress-message").text == (
        "Done: 30,000 new events imported from 30,000 lines (0 already recorded)."
    )
    assert browser.find_element(By.ID, "run-progress-read").text == "30,000 of 30,000"
    assert browser.find_element(By.ID, "run-progress-state").text == "Done"
    screenshot(browser, "import-run.png")
    assert imported() == (LINES, [(20_000, 10_000)] * 3)


@needs_shared_database
def test_a_database_connection_lost_mid_import_ends_the_run_failed_with_nothing_written(
    committed_db, settings, media, monkeypatch
):
    """The job's own connection is terminated while it reads (a failover, a restart): the
    run is ended failed on a fresh connection, saying why, and nothing is written."""
    settings.TASKS = ORM_BACKEND
    students = [get_user_model().objects.create_user(f"player{i}") for i in range(3)]
    for student in students:
        enroll(student, "PLAYER")
    tasks.queue_file_import(
        upload=awards(students), ledger_source="import:awards.csv", dry_run=False,
        triggered_by=None,
    )  # fmt: skip
    run = ImportRun.objects.get()
    real = tasks.import_progress

    def cut(path, *, on_progress, **options):
        def callback(lines):
            on_progress(lines)
            killer = psycopg2.connect(database_url(connection.settings_dict))
            with killer, killer.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid]
                )
            killer.close()

        return real(path, on_progress=callback, **options)

    monkeypatch.setattr(tasks, "import_progress", cut)
    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)
    db_worker.Worker(
        queue_names=["default"], interval=0, batch=True, backend_name="default",
        startup_delay=False, max_tasks=None, worker_id="test-worker", excluded_queue_names=[],
    ).run()  # fmt: skip
    run.refresh_from_db()
    assert run.state == "failed"
    assert run.state_reason.startswith(("OperationalError: ", "InterfaceError: "))
    assert imported()[0] == 0
    assert list(media.rglob("*.csv")) == []
