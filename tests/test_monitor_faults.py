"""The monitor at night, as real processes: bad settings, a hung server, no database.

Each case runs ``manage.py`` as cron or a monitoring system would, with the
fault made for real (a mistyped variable, a socket that accepts and never
answers, a database file locked by another process, a refused port).
"""

import importlib.metadata
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import django
import pytest

from tests.conftest import manage, once_per_suite
from tests.factories import write_sqlite_pairs

pytestmark = once_per_suite

ROOT = Path(__file__).resolve().parent.parent
REFUSED = "postgres://postgres@127.0.0.1:9/nowhere"  # port 9 (discard): nothing listens here


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory):
    path = tmp_path_factory.mktemp("faults") / "db.sqlite3"
    url = f"sqlite:///{path}"
    result = manage("migrate", "--noinput", DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    return url


def assert_unknown(result, reason: str) -> None:
    """Exit 3, ``SYNC UNKNOWN - <reason>`` first and only, nothing on stderr."""
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.splitlines() == [f"SYNC UNKNOWN - {reason}"]
    assert result.stderr == ""


@pytest.mark.parametrize(
    "env, reason",
    [
        (
            {"SECRET_KEY": ""},
            "SECRET_KEY is not set: export SECRET_KEY (or set DEBUG=1 for local development).",
        ),
        ({"DATABASE_URL": "garbage"}, "DATABASE_URL='garbage' is not a supported database URL"),
        ({"DATABASE_URL": "postgres://[::1"}, "DATABASE_URL='postgres://[::1' is not a database"),
        (
            {"DATABASE_URL": "postgres://sync:s3cret@[::1/x"},
            "DATABASE_URL='postgres://sync:***@[::1/x' is not a database URL",
        ),
        ({"SYNC_WARN_BELOW": "abc"}, "SYNC_WARN_BELOW='abc' is not a number"),
        ({"SYNC_WARN_BELOW": "1,5"}, "SYNC_WARN_BELOW='1,5' is not a number"),
        ({"SYNC_WARN_BELOW": "nan"}, "SYNC_WARN_BELOW='nan' is not a finite number"),
        ({"SYNC_CRITICAL_BELOW": "inf"}, "SYNC_CRITICAL_BELOW='inf' is not a finite number"),
        ({"SYNC_WARN_BELOW": "101"}, "SYNC_WARN_BELOW='101' must be at most 100"),
        (
            {"SYNC_WARN_BELOW": "90", "SYNC_CRITICAL_BELOW": "95"},
            "SYNC_CRITICAL_BELOW=95 must not be above SYNC_WARN_BELOW=90",
        ),
        ({"SYNC_STALE_AFTER_SECONDS": "abc"}, "SYNC_STALE_AFTER_SECONDS='abc' is not an integer"),
        ({"SYNC_STALE_AFTER_SECONDS": "0"}, "SYNC_STALE_AFTER_SECONDS='0' must be at least 1"),
        ({"SYNC_SAMPLE_RETENTION_DAYS": "-1"}, "SYNC_SAMPLE_RETENTION_DAYS='-1' must be at least"),
        (
            {"SYNC_SAMPLE_RETENTION_DAYS": "999999999999"},
            "SYNC_SAMPLE_RETENTION_DAYS='999999999999' must be at most 36500",
        ),
        (
            {"SYNC_VIOLATION_SAMPLE_SIZE": "-5"},
            "SYNC_VIOLATION_SAMPLE_SIZE='-5' must be at least 0",
        ),
        (
            {"SYNC_MAX_REPLICA_LAG_SECONDS": "soon"},
            "SYNC_MAX_REPLICA_LAG_SECONDS='soon' is not a number",
        ),
        ({"CONN_MAX_AGE": "abc"}, "CONN_MAX_AGE='abc' is not an integer"),
        ({"CONN_HEALTH_CHECKS": "maybe"}, "CONN_HEALTH_CHECKS='maybe' is not a boolean"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD' is not one of DEBUG, INFO, WARNING"),
        (
            {"SYNC_METRICS_PREFIX": "bad-prefix"},
            "SYNC_METRICS_PREFIX='bad-prefix' is not a valid Prometheus metric name prefix",
        ),
        ({"ACADEMY_ENV_FILE": "/nonexistent/academy.env"}, "ACADEMY_ENV_FILE='/nonexistent/"),
    ],
)
def test_a_configuration_error_is_unknown_naming_the_variable(sqlite_url, env, reason):
    result = manage("check_sync", **{"DATABASE_URL": sqlite_url, **env})
    assert result.returncode == 3, result.stdout + result.stderr
    first, *rest = result.stdout.splitlines()
    assert first.startswith(f"SYNC UNKNOWN - configuration error: {reason}")
    assert rest == [] and result.stderr == ""


def test_an_unreadable_settings_file_is_unknown(sqlite_url, tmp_path):
    # A directory where the file should be: unreadable even for root, unlike chmod 000.
    result = manage("check_sync", DATABASE_URL=sqlite_url, ACADEMY_ENV_FILE=str(tmp_path))
    assert_unknown(
        result,
        f"configuration error: the settings file {str(tmp_path)!r} cannot be read: Is a directory",
    )


SECRET = "sh16GBlZbTOY4ac6QT26D60PKaKq"  # must never be printed
MALFORMED = "expected NAME=value with nothing around the '='"
NOT_EQUALS = "(the line starts with {!r} and then not '=')"


@pytest.mark.parametrize(
    "lines, reason",
    [
        ([f"SECRET_KEY = {SECRET}"], f"line 1: {MALFORMED} {NOT_EQUALS.format('SECRET_KEY')}"),
        (
            ["# the database", f"DATABASE_URL postgres://sync:{SECRET}@db/academy"],
            f"line 2: {MALFORMED} {NOT_EQUALS.format('DATABASE_URL')}",
        ),
        ([f"SECRET_KEY:{SECRET}"], f"line 1: {MALFORMED} {NOT_EQUALS.format('SECRET_KEY')}"),
        ([SECRET], f"line 1: {MALFORMED} (the line is not shown)"),  # a key pasted alone
        (
            ["DATABASE_URL=postgres://sync:", f"{SECRET}@db/academy"],  # a wrapped value
            f"line 2: {MALFORMED} (the line is not shown)",
        ),
        (
            [f"SECRET_KEY={SECRET}", "", "DATABSE_URL=postgres://db/academy"],
            "line 3: DATABSE_URL is not a setting (did you mean DATABASE_URL?)",
        ),
        (["SYNC_WARN_BELWO=99.9"], "line 1: SYNC_WARN_BELWO is not a setting (did you mean"),
        (
            [f"secret_key={SECRET}"],
            "line 1: secret_key is not a setting (did you mean SECRET_KEY?)",
        ),
        (["GUNICORN_WORKERS=3"], "line 1: GUNICORN_WORKERS does nothing here: it is read by"),
        (
            ["DJANGO_SETTINGS_MODULE=academy_local"],
            "line 1: DJANGO_SETTINGS_MODULE does nothing here: it chooses the settings",
        ),
        (
            [f"SECRET_KEY={SECRET}", f"export SECRET_KEY='{SECRET}'"],
            "line 2: SECRET_KEY is already set on line 1",
        ),
    ],
)
def test_a_bad_line_in_the_settings_file_is_unknown_naming_the_line_not_the_value(
    sqlite_url, tmp_path, lines, reason
):
    path = tmp_path / "env"
    path.write_text("\n".join(lines) + "\n")
    result = manage("check_sync", DATABASE_URL=sqlite_url, ACADEMY_ENV_FILE=str(path))
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.splitlines() == [result.stdout.strip()] and result.stdout.startswith(
        f"SYNC UNKNOWN - configuration error: the settings file {str(path)!r}, {reason}"
    )
    assert result.stderr == ""  # django-environ printed "Invalid line: <the secret>" here
    assert SECRET not in result.stdout
    checked = manage("check", DATABASE_URL=sqlite_url, ACADEMY_ENV_FILE=str(path))
    assert checked.returncode == 1
    assert len(checked.stderr.splitlines()) == 1 and reason in checked.stderr
    assert SECRET not in checked.stderr


def test_the_settings_file_takes_comments_quotes_export_and_libpq_variables(sqlite_url, tmp_path):
    path = tmp_path / "env"
    path.write_text(
        "\ufeff# production, saved by an editor that writes a byte-order mark\r\n"
        "  # indented comment\r\n"
        "\r\n"
        "export SYNC_WARN_BELOW='99.5'\r\n"
        'SYNC_CRITICAL_BELOW="97"\r\n'
        'SYNC_HEALTH_TOKEN="a\\nb\\"c=d#e"\r\n'  # as django-environ read it: \\n stays
        "PGCONNECT_TIMEOUT=5\r\n"
    )
    shown = (
        "import os; from django.conf import settings as s;"
        " print(s.SYNC_WARN_BELOW, s.SYNC_CRITICAL_BELOW, s.SYNC_HEALTH_TOKEN,"
        " os.environ['PGCONNECT_TIMEOUT'])"
    )
    result = manage(
        "shell", "-v", "0", "-c", shown, DATABASE_URL=sqlite_url, ACADEMY_ENV_FILE=str(path)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["99.5", "97.0", 'a\\nb"c=d#e', "5"]


def test_a_misspelled_sync_variable_in_the_environment_is_unknown(sqlite_url):
    result = manage("check_sync", DATABASE_URL=sqlite_url, SYNC_HEALT_TOKEN="t0ken")
    assert_unknown(
        result,
        "configuration error: SYNC_HEALT_TOKEN (in the environment) is not a setting"
        " (did you mean SYNC_HEALTH_TOKEN?)",
    )


def test_the_web_application_refuses_to_start_the_same_way(sqlite_url):
    result = manage("check", DATABASE_URL=sqlite_url, SYNC_WARN_BELOW="9,9")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "Configuration error: SYNC_WARN_BELOW='9,9' is not a number"
    ]
    wsgi = subprocess.run(
        [sys.executable, "-c", "import config.wsgi"],
        cwd=ROOT,
        env={**os.environ, "SECRET_KEY": "x", "DATABASE_URL": sqlite_url, "SYNC_WARN_BELOW": "x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wsgi.returncode == 1
    assert wsgi.stderr.splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: SYNC_WARN_BELOW='x' is not a number"
    )


def write_pairs(url: str, *, in_sync: int, out_of_sync: int) -> None:
    """PLAYER pairs: ``in_sync`` at level 1, then ``out_of_sync`` with the progress ahead."""
    write_sqlite_pairs(url.removeprefix("sqlite:///"), [(1, 1)] * in_sync + [(2, 1)] * out_of_sync)


@pytest.mark.parametrize(
    "warn_below, code",
    [("9.9e1", 1), ("99", 1), ("98.5", 0), ("985e-1", 0)],
)
def test_numbers_are_read_as_python_reads_them(sqlite_url, warn_below, code):
    # 98.5 % consistent: degraded under 99 however it is written (django-environ read
    # "9.9e1" as 9.91 and called this OK).
    write_pairs(sqlite_url, in_sync=197, out_of_sync=3)
    result = manage(
        "check_sync",
        "--no-record",
        "-v",
        "0",
        DATABASE_URL=sqlite_url,
        SYNC_WARN_BELOW=warn_below,
        SYNC_CRITICAL_BELOW="90",
    )
    assert result.returncode == code, result.stdout
    assert "'consistency'=98.50%;" in result.stdout


def test_the_installed_console_script_reports_the_same_way(sqlite_url):
    script = Path(sys.executable).with_name("academy-check-sync")
    env = {**os.environ, "SECRET_KEY": "x", "DEBUG": "", "ACADEMY_ENV_FILE": os.devnull}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the script sets it
    bad = subprocess.run(
        [script, "-v", "0"],
        env={**env, "DATABASE_URL": sqlite_url, "SYNC_WARN_BELOW": "abc"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (bad.returncode, bad.stderr) == (3, "")
    assert bad.stdout == (
        "SYNC UNKNOWN - configuration error: SYNC_WARN_BELOW='abc' is not a number\n"
    )
    write_pairs(sqlite_url, in_sync=10, out_of_sync=0)
    good = subprocess.run(
        [script, "-v", "0", "--no-record"],
        env={**env, "DATABASE_URL": sqlite_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith("SYNC OK - 0 of 10 pairs out of sync")


def test_the_installed_manage_script_is_manage_py(sqlite_url, tmp_path):
    # A wheel has no manage.py: academy-manage, from any directory, the same one line.
    script = Path(sys.executable).with_name("academy-manage")
    env = {**os.environ, "SECRET_KEY": "x", "DEBUG": "", "ACADEMY_ENV_FILE": os.devnull}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the script sets it
    bad = subprocess.run(
        [script, "migrate", "--check"],
        cwd=tmp_path,
        env={**env, "DATABASE_URL": sqlite_url, "SYNC_WARN_BELOW": "9,9"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert bad.stderr.splitlines() == ["Configuration error: SYNC_WARN_BELOW='9,9' is not a number"]
    good = subprocess.run(
        [script, "migrate", "--check"],
        cwd=tmp_path,
        env={**env, "DATABASE_URL": sqlite_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    check = subprocess.run(
        [script, "check_sync", "-v", "0", "--no-record"],
        cwd=tmp_path,
        env={**env, "DATABASE_URL": sqlite_url, "SYNC_WARN_BELOW": "abc"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (check.returncode, check.stderr) == (3, "")


# --- A database that hangs ---


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted, stop = [], threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


@pytest.mark.parametrize("timeout", [1, 3])
def test_a_server_that_never_answers_is_unknown_within_the_timeout(silent_server, timeout):
    port, accepted = silent_server
    result = manage(
        "check_sync",
        "--timeout",
        str(timeout),
        timeout=timeout + 30,
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/academy",
    )
    assert accepted, "check_sync never reached the server"
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.startswith("SYNC UNKNOWN - ")
    assert len(result.stdout.splitlines()) == 1 and result.stderr == ""
    assert result.elapsed < timeout + 2 + 1.5  # + the interpreter's own start-up


def test_a_database_locked_by_another_process_is_unknown_within_the_timeout(sqlite_url):
    write_pairs(sqlite_url, in_sync=10, out_of_sync=0)
    locker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # readers wait (the settings allow them 20 s)
    try:
        result = manage("check_sync", "--timeout", "2", DATABASE_URL=sqlite_url)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert_unknown(result, "the check did not complete within timeout=2 seconds")
    assert result.elapsed < 2 + 2 + 1.5


# --- The endpoints without a database ---

PROBE = """
import json, django
django.setup()
from django.test import Client
client = Client()
token = {"Authorization": "Bearer probe-token"}
for url in ["/health/sync/", "/health/sync/metrics"]:
    response = client.get(url, headers=token)
    print(json.dumps([url, response.status_code, response["Content-Type"],
                      response.content.decode()]))
client.cookies["sessionid"] = "a-session-the-database-would-look-up"
response = client.get("/health/sync/")
print(json.dumps(["session", response.status_code, response["Content-Type"],
                  response.content.decode()]))
"""


def test_without_a_database_the_endpoints_answer_503_with_one_log_line_each(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": "probe",
            "DEBUG": "",
            "ALLOWED_HOSTS": "testserver",
            "SECURE_SSL_REDIRECT": "0",
            "SYNC_HEALTH_TOKEN": "probe-token",
            "DATABASE_URL": REFUSED,
            "STATIC_ROOT": str(tmp_path),  # collectstatic's output, as in production
            "ACADEMY_ENV_FILE": os.devnull,  # a developer's .env stays out of it
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (_, health_status, health_type, health_body), metrics, session = (
        json.loads(line) for line in result.stdout.splitlines()
    )
    assert (health_status, health_type) == (503, "application/json")
    body = json.loads(health_body)
    assert body["status"] == "unknown"
    assert body["reason"].startswith("database unavailable: connection to server at")
    assert metrics[1:3] == [503, "text/plain; charset=utf-8"]
    assert metrics[3].startswith("database unavailable: ")
    assert session[1] == 503 and json.loads(session[3])["status"] == "unknown"
    log = result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    assert len(log) == 3, log  # one line per failed request
    assert log[0].startswith("GET /health/sync/: database unavailable: ")


def test_version_is_the_products_not_djangos(sqlite_url):
    result = manage("check_sync", "--version", DATABASE_URL=sqlite_url)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == importlib.metadata.version("academy-sync") + "\n"
    assert result.stdout.strip() != django.get_version()
