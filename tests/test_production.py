"""The production stack as docs/production.md deploys it, with real processes.

gunicorn runs from deploy/academy-web.service (DEBUG off, default security settings,
static files collected into a temp STATIC_ROOT, settings from an ACADEMY_ENV_FILE),
nginx from deploy/nginx-academy.conf; systemd-analyze and nginx -t check deploy/.
Tools missing outside CI skip; in CI (CI=true) they fail.
"""

import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from tests.production import (
    DEPLOY,
    ROOT,
    SERVER_TOKEN,
    clean_environment,
    fetch,
    free_port,
    installed,
    nginx_config,
    read_unit,
    require_tool,
    stop,
    wait_until_serving,
    write_env_file,
)

HTTPS = {"X-Forwarded-Proto": "https"}  # what the TLS proxy adds
STYLESHEET = re.compile(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"')


@pytest.fixture
def site(committed_db, production_server):
    # committed_db: on PostgreSQL the server writes into the test database; flushed after.
    return production_server


def make_staff(site) -> tuple[str, str]:
    username, password = f"ops-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    result = site.manage(
        "createsuperuser", "--noinput", "--username", username,
        "--email", f"{username}@example.org", DJANGO_SUPERUSER_PASSWORD=password,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return username, password


def log_in(base: str, username: str, password: str, headers: dict) -> str:
    """The admin's login form as a browser posts it; returns the session cookie line."""
    page = fetch(f"{base}/admin/login/", headers=headers)
    assert page.status == 200, page.status
    csrf = page.cookies()["csrftoken"].split(";")[0].split("=", 1)[1]
    form_token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)[1]
    host = urlsplit(base).netloc
    response = fetch(
        f"{base}/admin/login/?next=/admin/",
        method="POST",
        headers={
            **headers,
            "Cookie": f"csrftoken={csrf}",
            "Origin": f"https://{host}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        body=urlencode(
            {
                "csrfmiddlewaretoken": form_token.decode(),
                "username": username,
                "password": password,
                "next": "/admin/",
            }
        ).encode(),
    )
    assert response.status == 302, (response.status, response.body[:2000])
    assert response.headers["Location"] == "/admin/"
    return response.cookies()["sessionid"]


def test_admin_css_is_served_hashed_compressed_and_cached(site):
    page = fetch(f"{site.url}/admin/login/", headers=HTTPS)
    assert page.status == 200
    stylesheet = STYLESHEET.search(page.body.decode())[1]  # the manifest's hashed name
    css = fetch(f"{site.url}{stylesheet}", headers={**HTTPS, "Accept-Encoding": "gzip"})
    assert css.status == 200
    assert css.headers.get_content_type() == "text/css"
    assert css.headers["Content-Encoding"] == "gzip"
    assert "immutable" in css.headers["Cache-Control"]
    plain = fetch(f"{site.url}/static/admin/css/base.css", headers=HTTPS)
    assert (plain.status, plain.headers.get_content_type()) == (200, "text/css")
    assert (site.static_root / "staticfiles.json").is_file()  # collectstatic went there


def test_login_works_behind_the_proxy_header(site):
    username, password = make_staff(site)
    redirect = fetch(f"{site.url}/admin/login/")  # no proxy header: plain HTTP
    assert redirect.status == 301
    assert redirect.headers["Location"].startswith("https://127.0.0.1:")

    session = log_in(site.url, username, password, HTTPS)
    assert "Secure" in session and "HttpOnly" in session
    index = fetch(f"{site.url}/admin/", headers={**HTTPS, "Cookie": session.split(";")[0]})
    assert index.status == 200
    assert b"Site administration" in index.body
    assert index.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_health_answers_a_plain_http_probe_with_json_not_a_redirect(site):
    assert fetch(f"{site.url}/health/sync/").json() == {"error": "authentication required"}
    assert fetch(f"{site.url}/health/sync/").status == 401
    bearer = {"Authorization": f"Bearer {SERVER_TOKEN}"}

    # The check as the timer's unit runs it (an empty database is healthy: exit 0).
    unit = read_unit("academy-check-sync.service", env_file=site.env_file)
    check = subprocess.run(
        unit.exec_start,
        cwd=unit.working_directory,
        env={**clean_environment(site.home), **unit.environment},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr

    health = fetch(f"{site.url}/health/sync/", headers=bearer)
    assert health.status == 200
    body = health.json()
    assert body["status"] == "healthy" and body["age_seconds"] < 60
    metrics = fetch(f"{site.url}/health/sync/metrics", headers=bearer)
    assert metrics.status == 200 and b"academy_sync_" in metrics.body
    # Only health is exempt from the HTTPS redirect.
    assert fetch(f"{site.url}/admin/", headers=bearer).status == 301


def test_access_log_goes_to_stdout(site):
    marker = f"/health/sync/?probe={uuid.uuid4().hex}"
    fetch(f"{site.url}{marker}", headers={"X-Forwarded-For": "203.0.113.7"})
    deadline = time.monotonic() + 10
    while marker not in site.stdout.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next(line for line in site.stdout.read_text().splitlines() if marker in line)
    assert line.startswith("203.0.113.7 127.0.0.1 ")
    assert f'"GET {marker} HTTP/1.1" 401 ' in line
    assert re.search(r" \d+ms$", line)


def test_each_worker_freezes_what_it_loaded_out_of_the_collector(site):
    # A worker that serves has run post_worker_init (gunicorn calls it before serving):
    # its modules, some 75,000 objects, out of every full collection's walk.
    frozen = re.findall(r"Worker \d+: (\d+) objects frozen out of the collector",
                        site.stderr.read_text())  # fmt: skip
    assert frozen, site.stderr.read_text()[-2000:]
    assert min(map(int, frozen)) > 10_000


def test_an_unlisted_host_is_a_400_with_one_log_line_not_a_traceback(site):
    probe = f"/health/sync/?probe={uuid.uuid4().hex}"
    answer = fetch(f"{site.url}{probe}", headers={"Host": "10.9.8.7:8000"})
    assert answer.status == 400
    deadline = time.monotonic() + 10
    while probe not in site.stdout.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)  # the access line is written after the response
    errors = site.stderr.read_text()
    refusals = [line for line in errors.splitlines() if "Invalid HTTP_HOST header" in line]
    assert refusals == [
        "Invalid HTTP_HOST header: '10.9.8.7:8000'. You may need to add '10.9.8.7' to"
        " ALLOWED_HOSTS."
    ]
    assert "Traceback" not in errors


def test_a_refused_setting_stops_the_server_with_one_line_before_it_listens(tmp_path):
    env_file = write_env_file(
        tmp_path / "env",
        SECRET_KEY="production-test-secret-key-not-used-anywhere-else-0123456789",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        SYNC_WARN_BELOW="99,5",
    )
    unit = read_unit("academy-web.service", env_file=env_file)
    started = subprocess.run(
        unit.exec_start,
        cwd=unit.working_directory,
        env={**clean_environment(tmp_path), **unit.environment,
             "GUNICORN_BIND": f"127.0.0.1:{free_port()}", "GUNICORN_WORKERS": "2"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert started.returncode == 78  # EX_CONFIG: the unit does not restart into it
    assert "RestartPreventExitStatus=78" in (DEPLOY / "academy-web.service").read_text()
    output = started.stdout + started.stderr
    assert "Traceback" not in output and "Listening at" not in output
    assert started.stderr.strip().splitlines()[-1] == (
        "Configuration error: SYNC_WARN_BELOW='99,5' is not a number"
    )


def test_a_reload_checks_the_settings_before_it_signals_gunicorn(tmp_path):
    def reload_probe(**values):
        env_file = write_env_file(tmp_path / "env", **values)
        unit = read_unit("academy-web.service", env_file=env_file)
        probe, signal = unit.exec_reload  # the probe first: a refusal stops the reload there
        assert signal[:3] == ["/bin/kill", "-s", "HUP"]
        return subprocess.run(
            probe, cwd=unit.working_directory,
            env={**clean_environment(tmp_path), **unit.environment},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    good = dict(
        SECRET_KEY="production-test-secret-key-not-used-anywhere-else-0123456789",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    assert (reload_probe(**good).returncode, reload_probe(**good).stderr) == (0, "")
    refused = reload_probe(**good, SYNC_WARN_BELWO="99")
    assert refused.returncode == 78
    assert refused.stderr.splitlines() == [
        f"Configuration error: the settings file {str(tmp_path / 'env')!r}, line 3:"
        " SYNC_WARN_BELWO is not a setting (did you mean SYNC_WARN_BELOW?)"
    ]


def test_control_socket_is_the_units_own_not_the_shared_default(site, tmp_path):
    socket_path = site.runtime_directory / "gunicorn.ctl"
    assert socket_path.is_socket()
    assert socket_path.stat().st_mode & 0o777 == 0o600
    gunicornc = str(Path(sys.executable).with_name("gunicornc"))
    shown = subprocess.run(
        [gunicornc, "-s", str(socket_path), "-c", "show workers", "-j"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count('"pid"') == 2  # the server's two workers

    # A second instance for the same user, without a runtime directory of its own, opens
    # no socket: gunicorn's default (~/.gunicorn/gunicorn.ctl) would be shared by both.
    unit = read_unit("academy-web.service", env_file=site.env_file)
    port = free_port()
    stderr = tmp_path / "second.err"
    second = subprocess.Popen(
        unit.exec_start,
        cwd=unit.working_directory,
        env={
            **site.env,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": "1",
        },
        stdout=subprocess.DEVNULL,
        stderr=stderr.open("wb"),
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/health/sync/", second, stderr)
    finally:
        stop(second)
    assert not (site.home / ".gunicorn").exists()
    assert socket_path.is_socket()  # the first one's socket survived the second's stop


@pytest.mark.parametrize("value", ["abc", "0", "-2", "٣"])
def test_a_bad_worker_count_is_refused_naming_the_variable(value, tmp_path):
    result = subprocess.run(
        [str(Path(sys.executable).with_name("gunicorn")), "-c", "python:config.gunicorn_conf",
         "--check-config"],
        cwd=ROOT, env={**clean_environment(tmp_path), "GUNICORN_WORKERS": value},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"GUNICORN_WORKERS={value!r}: expected a whole number of at least 1."
    )


def test_units_pass_systemd_analyze_verify(tmp_path):
    analyze = require_tool("systemd-analyze")
    # Paths point into this checkout (its .venv must hold gunicorn and python: verify
    # checks that the commands exist); any warning (an unknown key, a bad value) fails.
    units = []
    for source in sorted(DEPLOY.glob("academy-*")):
        unit = tmp_path / source.name
        unit.write_text(installed(source.read_text(), env_file=tmp_path / "env"))
        units.append(str(unit))
    # Every academy-* unit is verified (a worker unit added later too); these must exist.
    assert {p.rsplit("/", 1)[1] for p in units} >= {
        "academy-web.service",
        "academy-worker.service",
        "academy-check-sync.service",
        "academy-check-sync.timer",
    }
    result = subprocess.run(
        [analyze, "verify", "--man=no", *units], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def test_the_sample_nginx_site_passes_nginx_t(tmp_path):
    nginx = require_tool("nginx")
    config = nginx_config(tmp_path, upstream_port=8000, http_port=free_port(), https_port=443)
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_through_the_sample_nginx_site(committed_db, production_server, production_proxy):
    proxy = production_proxy
    # Plain HTTP: health answers (401 JSON without credentials), the rest moves to HTTPS.
    probe = fetch(f"{proxy.http_url}/health/sync/")
    assert probe.status == 401 and probe.json() == {"error": "authentication required"}
    moved = fetch(f"{proxy.http_url}/admin/login/")
    assert moved.status == 301 and moved.headers["Location"].startswith("https://")

    page = fetch(f"{proxy.https_url}/admin/login/")
    stylesheet = STYLESHEET.search(page.body.decode())[1]
    css = fetch(f"{proxy.https_url}{stylesheet}")
    assert (css.status, css.headers.get_content_type()) == (200, "text/css")
    username, password = make_staff(production_server)
    session = log_in(proxy.https_url, username, password, {})
    index = fetch(f"{proxy.https_url}/admin/", headers={"Cookie": session.split(";")[0]})
    assert index.status == 200 and b"Site administration" in index.body
