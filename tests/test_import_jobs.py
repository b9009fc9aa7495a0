"""Imports started from the admin run as background jobs, and their run page follows them.

The admin's forms with Django's test client; the job executed by the test settings'
immediate backend (inside the request that queues it), or queued with the ORM backend
and run by the backend's own worker loop in this process, as the repair jobs' tests do.
The real ``manage.py db_worker`` process: tests/test_import_jobs_worker.py.
"""

import json
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.views.debug import ExceptionReporter
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

from imports import runs, tasks
from imports.models import ImportRun
from licenses import consistency
from specializations.models import ProgressEvent, SpecializationProgress
from specializations.services import enroll
from tests.source_db import ACADEMY

pytestmark = pytest.mark.django_db

RUNS = reverse("admin:imports_importrun_changelist")
NEW_FILE = reverse("admin:imports_importrun_new_file")
RUN_SOURCE = reverse("admin:imports_importrun_run_source")
ORM_BACKEND = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
HEADER = "student_id,specialization,xp,sessions,reason"


def run_page(run) -> str:
    return reverse("admin:imports_importrun_change", args=[run.pk])


def progress_url(run) -> str:
    return reverse("admin:imports_importrun_progress", args=[run.pk])


def page_text(client, run) -> str:
    response = client.get(run_page(run))
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Uploads land in this test's own folder."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


def stored_files(media: Path) -> list[Path]:
    return [path for path in media.rglob("*") if path.is_file()]


@pytest.fixture
def students(make_user, academy_catalogue):
    """Three students enrolled in GANCUJU_PLAYER (level k at (k - 1) * 1,000 XP)."""
    users = [make_user() for _ in range(3)]
    for user in users:
        enroll(user, "GANCUJU_PLAYER")
    return users


@pytest.fixture
def orm_backend(settings):
    settings.TASKS = ORM_BACKEND


@pytest.fixture
def run_worker(monkeypatch):
    """The ORM backend's worker loop until the queue is empty, in this process (its
    between-jobs ``close_old_connections()`` left out: it would end the test's transaction)."""
    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)

    def run() -> None:
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

    return run


def csv_upload(rows: list[str], name="awards.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, ("\n".join([HEADER, *rows]) + "\n").encode(), "text/csv")


def upload(client, file, *, follow=False, **fields):
    return client.post(NEW_FILE, {"file": file, **fields}, follow=follow)


def xp(user) -> int:
    progress = SpecializationProgress.objects.get(student=user, specialization="GANCUJU_PLAYER")
    return progress.total_xp


def test_a_csv_upload_is_imported_by_its_job_and_the_run_page_shows_the_report(
    staff_client, staff, students, media
):
    a, b, _ = students
    response = upload(
        staff_client,
        csv_upload(
            [
                f"{a.pk},GANCUJU_PLAYER,600,1,Torna",
                f"{a.pk},GANCUJU_PLAYER,1500,2,Vizsga",
                f"{b.pk},GANCUJU_PLAYER,10,0,",
            ]
        ),  # fmt: skip
    )
    run = ImportRun.objects.get()
    assert response.status_code == 302 and response["Location"] == run_page(run)
    assert (run.kind, run.state, run.triggered_by, run.file_name) == ("file", "done", staff,
                                                                       "awards.csv")  # fmt: skip
    assert (run.ledger_source, run.planned, run.read) == ("import:awards.csv", 3, {"lines": 3})
    assert run.report["events"] == 3 and run.report["written"] is True
    assert (xp(a), xp(b)) == (2100, 10)
    assert consistency.count_pairs().inconsistent == 0
    assert run.stored_file == "" and stored_files(media) == []  # deleted when the run ended

    page = page_text(staff_client, run)
    assert "Done: 3 new events imported from 3 lines (0 already recorded)." in page
    assert 'data-finished="1"' in page and "setTimeout(poll" not in page
    for cell in ("<td>import:awards.csv</td>", "<td>levels raised</td><td>1</td>"):
        assert cell in page


def test_json_lines_uploaded_twice_change_nothing_the_second_time(staff_client, students):
    a, _, _ = students
    lines = [
        {"student_id": a.pk, "specialization": "GANCUJU_PLAYER", "xp": 1200, "key": "quiz-1"},
        {"student_id": a.pk, "specialization": "GANCUJU_PLAYER", "sessions": 2, "key": "quiz-2"},
    ]
    content = ("\n".join(json.dumps(line) for line in lines) + "\n").encode()
    upload(staff_client, SimpleUploadedFile("feed.jsonl", content), ledger_source="quiz")
    upload(staff_client, SimpleUploadedFile("feed.jsonl", content), ledger_source="quiz")
    first, second = ImportRun.objects.order_by("id")
    assert (first.state, first.report["events"], first.report["replays"]) == ("done", 2, 0)
    assert (second.state, second.report["events"], second.report["replays"]) == ("done", 0, 2)
    assert xp(a) == 1200
    assert ProgressEvent.objects.filter(source="quiz").count() == 2
    assert "Done: 0 new events imported from 2 lines (2 already recorded)." in page_text(
        staff_client, second
    )


def test_a_bad_file_fails_listing_its_bad_lines_and_writes_nothing(staff_client, students, media):
    a, _, _ = students
    events = ProgressEvent.objects.count()
    upload(
        staff_client,
        csv_upload(
            [
                f"{a.pk},GANCUJU_PLAYER,10,,",
                "999999,GANCUJU_PLAYER,10,,",
                f"{a.pk},NO_SUCH,10,,",
                f"{a.pk},GANCUJU_PLAYER,1.5,,",
            ]
        ),  # fmt: skip
    )
    run = ImportRun.objects.get()
    assert run.state == "failed"
    assert run.state_reason == "refused: bad lines: 3 of 4; nothing was written"
    assert [(b["line"], b["field"]) for b in run.report["bad"]] == [
        (3, "student_id"),
        (4, "specialization"),
        (5, "xp"),
    ]
    assert xp(a) == 0 and ProgressEvent.objects.count() == events
    assert stored_files(media) == []
    page = page_text(staff_client, run)
    assert "Refused: 3 problems in 4 lines, listed below; nothing was written." in page
    assert "<td>3</td><td>student_id</td><td>999999 is not a user</td>" in page
    assert "<td>4</td><td>specialization</td><td>&#x27;NO_SUCH&#x27; is not in the" in page
    assert ">3 bad lines</h3>" in page


def test_a_dry_run_reports_what_it_would_import_and_writes_nothing(staff_client, students):
    a, _, _ = students
    upload(staff_client, csv_upload([f"{a.pk},GANCUJU_PLAYER,1500,,"]), dry_run="on")
    run = ImportRun.objects.get()
    assert (run.state, run.dry_run, run.report["events"], run.report["written"]) == (
        "done",
        True,
        1,
        False,
    )
    assert xp(a) == 0
    page = page_text(staff_client, run)
    assert "Dry run done: 1 new events in 1 lines (0 already recorded); nothing was" in page
    assert "<td>new events (to write)</td><td>1</td>" in page


def test_a_file_that_is_not_utf8_fails_saying_so(staff_client, students):
    a, _, _ = students
    content = f"{HEADER}\n{a.pk},GANCUJU_PLAYER,10,,Edz\xe9s\n".encode("latin-1")
    upload(staff_client, SimpleUploadedFile("latin.csv", content))
    run = ImportRun.objects.get()
    assert (run.state, run.state_reason) == (
        "failed",
        "the file is not UTF-8 text (byte 0xe9): save it as UTF-8 and upload it again",
    )
    assert xp(a) == 0
    assert "Failed: the file is not UTF-8 text (byte 0xe9)" in page_text(staff_client, run)


@pytest.mark.parametrize(
    "name, content, error",
    [
        ("awards.xlsx", b"PK\x03\x04", "“awards.xlsx” is not a .csv or .jsonl file."),
        ("empty.csv", b"", "The submitted file is empty."),
    ],
)
def test_the_form_refuses_other_files_and_queues_nothing(staff_client, media, name, content, error):
    response = upload(staff_client, SimpleUploadedFile(name, content))
    assert response.status_code == 200
    assert response.context["form"].errors["file"] == [error]
    assert not ImportRun.objects.exists() and stored_files(media) == []


def test_an_upload_the_storage_cannot_keep_queues_nothing_and_says_why(staff_client, media):
    media.write_text("a file where the folder should be")  # the storage cannot write there
    response = upload(staff_client, csv_upload(["1,GANCUJU_PLAYER,1,,"]), follow=True)
    (message,) = response.context["messages"]
    assert str(message).startswith("The import was not queued: could not store the upload: ")
    assert not ImportRun.objects.exists()


def test_a_ledger_source_the_ledger_refuses_is_named_on_the_form(staff_client, media):
    response = upload(staff_client, csv_upload(["1,GANCUJU_PLAYER,1,,"]), ledger_source="opening")
    assert response.status_code == 200
    (error,) = response.context["form"].errors["ledger_source"]
    assert error.startswith("Not a ledger source: source='opening'")
    assert not ImportRun.objects.exists() and stored_files(media) == []


def test_queued_for_the_worker_the_page_waits_then_shows_the_outcome(
    staff_client, students, orm_backend, run_worker, media
):
    a, _, _ = students
    upload(staff_client, csv_upload([f"{a.pk},GANCUJU_PLAYER,10,,"]))
    run = ImportRun.objects.get()
    assert (run.state, run.job_id) == ("queued", str(DBTaskResult.objects.get().id))
    job = DBTaskResult.objects.get()
    assert (job.task_path, job.args_kwargs["kwargs"]) == (
        "imports.tasks.import_job",
        {"run_id": run.pk},
    )
    assert len(stored_files(media)) == 1  # kept for the worker
    page = page_text(staff_client, run)
    assert "Waiting for a worker (queued since" in page and "setTimeout(poll, 1000)" in page
    assert staff_client.get(progress_url(run)).json()["state"] == "queued"

    run_worker()
    run.refresh_from_db()
    assert (run.state, xp(a)) == ("done", 10)
    assert run.host and run.pid == os.getpid() and run.started_at >= run.queued_at
    assert stored_files(media) == []
    progress = staff_client.get(progress_url(run)).json()
    assert (progress["finished"], progress["texts"]["read"]) == (True, "1 of 1")


def test_progress_is_on_the_run_page_while_the_file_is_read(
    staff_client, students, orm_backend, run_worker, monkeypatch
):
    a, b, c = students
    rows = [f"{(a, b, c)[i % 3].pk},GANCUJU_PLAYER,1,," for i in range(25_000)]
    upload(staff_client, csv_upload(rows))
    run = ImportRun.objects.get()
    seen = []
    real = tasks.import_progress

    def watched(path, *, on_progress, **options):
        def callback(lines):
            on_progress(lines)
            seen.append(staff_client.get(progress_url(run)).json())

        return real(path, on_progress=callback, **options)

    monkeypatch.setattr(tasks, "import_progress", watched)
    run_worker()
    first = seen[0]
    assert (first["state"], first["finished"], first["done"], first["total"]) == (
        "running",
        False,
        10_000,
        25_000,
    )
    assert first["message"] == "Reading the file: 10,000 of 25,000 lines."
    assert first["texts"]["read"] == "10,000 of 25,000"
    run.refresh_from_db()
    assert (run.state, run.read, run.report["events"]) == ("done", {"lines": 25_000}, 25_000)


def test_progress_writes_are_throttled_to_one_a_second(
    students, django_assert_num_queries, monkeypatch
):
    run = ImportRun.objects.create(kind="file", state="running", started_at=timezone.now())
    reporter = runs.Reporter(run)
    with django_assert_num_queries(1):
        for lines in range(1, 1001):  # tiny batches: one write, not a thousand
            reporter.lines(lines)
    run.refresh_from_db()
    assert run.read == {"lines": 1}
    clock = [1000.0]
    monkeypatch.setattr(runs, "monotonic", lambda: clock[0])
    reporter = runs.Reporter(run)
    with django_assert_num_queries(2):
        for at, lines in ((1000.0, 5), (1000.5, 6), (1001.2, 7)):  # the one at 0.5 s waits
            clock[0] = at
            reporter.lines(lines)
    run.refresh_from_db()
    assert run.read == {"lines": 7}


def test_a_stop_signal_interrupts_before_writing_keeps_the_file_and_it_runs_again(
    staff_client, students, orm_backend, run_worker, monkeypatch, media
):
    a, b, c = students
    rows = [f"{(a, b, c)[i % 3].pk},GANCUJU_PLAYER,1,," for i in range(25_000)]
    upload(staff_client, csv_upload(rows))
    run = ImportRun.objects.get()
    real = tasks.import_progress

    def stopped(path, *, on_progress, **options):
        os.kill(os.getpid(), signal.SIGTERM)  # systemctl stop, while the file is read
        return real(path, on_progress=on_progress, **options)

    monkeypatch.setattr(tasks, "import_progress", stopped)
    run_worker()
    run.refresh_from_db()
    assert (run.state, run.state_reason) == ("interrupted", "stopped by SIGTERM")
    assert not ProgressEvent.objects.filter(source="import:awards.csv").exists()
    assert run.stored_file and len(stored_files(media)) == 1  # kept for Run again
    page = page_text(staff_client, run)
    assert "Interrupted: stopped by SIGTERM. Nothing was written; run it again." in page
    assert 'id="run-again"' in page

    monkeypatch.setattr(tasks, "import_progress", real)
    response = staff_client.post(reverse("admin:imports_importrun_run_again", args=[run.pk]))
    again = ImportRun.objects.exclude(pk=run.pk).get()
    assert response["Location"] == run_page(again)
    run.refresh_from_db()
    assert (run.state, run.stored_file) == ("interrupted", "")  # handed over
    run_worker()
    again.refresh_from_db()
    assert (again.state, again.file_name, again.report["events"]) == ("done", "awards.csv", 25_000)
    assert xp(a) == 8334 and stored_files(media) == []


def test_a_run_whose_worker_died_reads_interrupted_and_runs_again(
    staff_client, students, orm_backend, run_worker, settings
):
    settings.SYNC_RUN_INTERRUPTED_AFTER_SECONDS = 60
    a, _, _ = students
    upload(staff_client, csv_upload([f"{a.pk},GANCUJU_PLAYER,10,,"]))
    run = ImportRun.objects.get()
    silent_since = timezone.now() - timedelta(minutes=5)  # a worker killed mid-run
    ImportRun.objects.filter(pk=run.pk).update(
        state="running", started_at=silent_since, updated_at=silent_since
    )
    DBTaskResult.objects.all().delete()
    progress = staff_client.get(progress_url(run)).json()
    assert (progress["state"], progress["finished"], progress["stalled"]) == (
        "interrupted",
        True,
        True,
    )
    assert progress["message"].startswith("Interrupted: no report since ")
    assert (
        "its worker stopped. An import writes all or nothing; run it again."
        in (progress["message"])
    )
    list_page = staff_client.get(RUNS).content.decode()
    assert "Interrupted (no report since" in list_page

    staff_client.post(reverse("admin:imports_importrun_run_again", args=[run.pk]))
    again = ImportRun.objects.exclude(pk=run.pk).get()
    run.refresh_from_db()
    assert run.state == "interrupted"
    assert run.state_reason.endswith(f"stopped; taken over by run {again.pk} (Run again)")
    run_worker()
    again.refresh_from_db()
    assert (again.state, xp(a)) == ("done", 10)


def test_only_an_interrupted_run_runs_again(staff_client, students):
    a, _, _ = students
    upload(staff_client, csv_upload([f"{a.pk},GANCUJU_PLAYER,10,,"]))
    run = ImportRun.objects.get()
    assert 'id="run-again"' not in page_text(staff_client, run)
    response = staff_client.post(
        reverse("admin:imports_importrun_run_again", args=[run.pk]), follow=True
    )
    (message,) = response.context["messages"]
    assert str(message) == (
        f"The import was not queued: run {run.pk} is done: only an interrupted run can be"
        " run again."
    )
    assert ImportRun.objects.count() == 1 and xp(a) == 10


# --- The source import: the configured source database (tests/source_db.py) ---


def with_password(url: str, password: str) -> str:
    """The URL with a password (the test server trusts local connections: it is ignored)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:{password}@{host}").geturl()


def test_a_source_import_reads_the_configured_database_and_never_shows_its_password(
    staff_client, source, academy_catalogue, settings, orm_backend, run_worker
):
    settings.IMPORTS_SOURCE_URL = with_password(source.url, "s3cret-pw")
    form = staff_client.get(RUN_SOURCE).content.decode()
    assert "postgres:***@" in form and 'id="start-import"' in form
    response = staff_client.post(RUN_SOURCE, {})
    run = ImportRun.objects.get()
    assert response["Location"] == run_page(run)
    assert run.source_database == with_password(source.url, "***")
    assert DBTaskResult.objects.get().args_kwargs["kwargs"] == {"run_id": run.pk}
    run_worker()
    run.refresh_from_db()
    assert run.state == "done", run.state_reason
    assert run.read == ACADEMY["found"]
    assert (run.report["found"], run.report["desyncs"]) == (ACADEMY["found"], ACADEMY["desyncs"])
    assert consistency.count_pairs().inconsistent == 3  # imported as they are

    page = page_text(staff_client, run)
    assert "Done: imported; the report below says what changed." in page
    assert "<td>users</td><td>9</td><td>9</td><td>0</td><td>0</td><td>0</td>" in page
    assert (
        "Desyncs in the source, by this product&#x27;s definition: 1 level mismatch,"
        " 1 missing licence, 1 missing progress (of 6 pairs)." in page
    )
    shown = [page, form, staff_client.get(RUNS).content.decode(),
             json.dumps(staff_client.get(progress_url(run)).json()),
             json.dumps(list(ImportRun.objects.values()), default=str),
             json.dumps(list(DBTaskResult.objects.values()), default=str)]  # fmt: skip
    assert not any("s3cret-pw" in text for text in shown)


def test_a_source_dry_run_writes_nothing(staff_client, source, academy_catalogue, settings):
    settings.IMPORTS_SOURCE_URL = source.url
    staff_client.post(RUN_SOURCE, {"dry_run": "on"})
    run = ImportRun.objects.get()
    assert (run.state, run.dry_run, run.report["new"]) == ("done", True, ACADEMY["found"])
    assert not get_user_model().objects.filter(email__endswith="@academy.test").exists()
    assert "Dry run done: nothing was written" in page_text(staff_client, run)


def test_bad_source_rows_fail_the_run_naming_table_row_and_field(
    staff_client, source, academy_catalogue, settings
):
    settings.IMPORTS_SOURCE_URL = source.url
    source.execute("UPDATE user_licenses SET current_level = 0 WHERE id = 5")
    staff_client.post(RUN_SOURCE, {})
    run = ImportRun.objects.get()
    assert (run.state, run.state_reason) == (
        "failed",
        "stopped: invalid source rows: 1; nothing was written",
    )
    assert not get_user_model().objects.filter(email__endswith="@academy.test").exists()
    page = page_text(staff_client, run)
    assert "Stopped: 1 invalid source row, listed below; nothing was written." in page
    assert (
        "<td>user_licenses</td><td>5</td><td>current_level</td>"
        "<td>level 0 is outside 1..3 of INTERNSHIP</td>" in page
    )

    staff_client.post(RUN_SOURCE, {"skip_invalid": "on"})
    again = ImportRun.objects.latest("id")
    assert (again.state, again.report["left_out"]["user_licenses"]) == ("done", 1)
    assert "1 invalid row, left out" in page_text(staff_client, again)


def test_an_unreachable_source_fails_with_the_reason_and_no_password(staff_client, settings):
    settings.IMPORTS_SOURCE_URL = "postgresql://reader:hunter2@127.0.0.1:1/practice"
    staff_client.post(RUN_SOURCE, {})
    run = ImportRun.objects.get()
    assert run.state == "failed"
    assert run.state_reason.startswith("source=postgresql://reader:***@127.0.0.1:1/practice: ")
    page = page_text(staff_client, run)
    assert "Failed: source=postgresql://reader:***@127.0.0.1:1/practice: " in page
    assert "hunter2" not in page and "hunter2" not in run.state_reason


def test_a_worker_without_the_source_setting_fails_the_run_saying_so(
    staff_client, settings, orm_backend, run_worker
):
    settings.IMPORTS_SOURCE_URL = "postgresql://reader@old-host/practice"  # the web server's
    staff_client.post(RUN_SOURCE, {})
    settings.IMPORTS_SOURCE_URL = ""  # the worker's settings lack it
    run_worker()
    run = ImportRun.objects.get()
    assert (run.state, run.state_reason) == (
        "failed",
        "no source database is configured (IMPORTS_SOURCE_URL)",
    )
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"  # the run says why, not a traceback


def test_an_error_report_hides_the_source_url(settings, rf):
    # Built, never a local: the page quotes this file's lines and the frame's variables.
    settings.IMPORTS_SOURCE_URL = "postgresql://reader:" + "pw-" + "7" * 12 + "@old-host/practice"
    try:
        raise ValueError("a bug")
    except ValueError:
        page = ExceptionReporter(rf.get("/admin/"), *sys.exc_info()).get_traceback_html()
    assert "IMPORTS_SOURCE_URL" in page and "pw-" + "7" * 12 not in page


def test_without_a_configured_source_the_page_says_so_and_queues_nothing(staff_client, settings):
    settings.IMPORTS_SOURCE_URL = ""
    page = staff_client.get(RUN_SOURCE).content.decode()
    assert 'id="source-not-configured"' in page and "IMPORTS_SOURCE_URL" in page
    assert 'id="start-import"' not in page
    response = staff_client.post(RUN_SOURCE, {}, follow=True)
    (message,) = response.context["messages"]
    assert str(message) == (
        "The import was not queued: no source database is configured (IMPORTS_SOURCE_URL)."
    )
    assert not ImportRun.objects.exists()


# --- Who may, and what the list costs ---


def limited_client(username: str, *codenames: str) -> Client:
    user = get_user_model().objects.create_user(username, is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


def test_starting_an_import_needs_the_add_permission_and_the_starter_follows_it(students):
    a, _, _ = students
    viewer = limited_client("viewer", "view_importrun")
    assert viewer.get(NEW_FILE).status_code == 403
    assert viewer.get(RUN_SOURCE).status_code == 403
    assert 'id="new-file-import"' not in viewer.get(RUNS).content.decode()

    starter = limited_client("starter", "add_importrun")
    response = upload(starter, csv_upload([f"{a.pk},GANCUJU_PLAYER,10,,"]))
    run = ImportRun.objects.get()
    assert response["Location"] == run_page(run)
    assert starter.get(run_page(run)).status_code == 200
    assert starter.get(progress_url(run)).status_code == 200
    bystander = limited_client("bystander")
    assert bystander.get(progress_url(run)).status_code == 403
    assert Client().get(progress_url(run)).status_code == 302  # to the login page


def make_runs(count: int, staff) -> None:
    now = timezone.now()
    ImportRun.objects.bulk_create(
        ImportRun(kind=kind, state=state, triggered_by=staff, file_name="awards.csv",
                  report=report, queued_at=now, updated_at=now, started_at=now)
        for kind, state, report in [
            ("file", "done", {"events": 3, "replays": 0}),
            ("file", "failed", {"bad_count": 2}),
            ("source", "done", {"new": {"users": 9}, "changed": {"users": 0}}),
            ("source", "running", {}),
        ] * (count // 4)
    )  # fmt: skip


def test_the_run_list_costs_the_same_queries_for_4_runs_and_for_40(
    staff_client, staff, django_assert_num_queries
):
    make_runs(4, staff)
    response = staff_client.get(RUNS)  # warm: sessions, content types
    with django_assert_num_queries(5) as few:
        response = staff_client.get(RUNS)
    assert response.status_code == 200
    make_runs(36, staff)
    with django_assert_num_queries(len(few.captured_queries)):
        response = staff_client.get(RUNS)
    page = response.content.decode()
    for summary in ("3 new events, 0 already recorded", "2 bad lines", "9 new rows, 0 changed"):
        assert summary in page
