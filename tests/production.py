"""The production stack for tests: deploy/'s units run for real, nginx's sample site in front.

gunicorn starts with the web unit's own ExecStart and Environment lines (paths moved from
/srv/academy into this checkout, /etc/academy/env into a temp file), in a clean
environment as systemd gives it: DEBUG off, the default security settings, a free port.
nginx serves deploy/nginx-academy.conf with a throwaway certificate on free ports.
"""

import http.client
import json
import os
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SERVER_TOKEN = "production-test-token-0123456789"


def require_tool(name: str) -> str:
    """The tool's path; skip without it, except in CI (CI=true), where that is a failure."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        message = f"needs {name} (Debian package; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def installed(text: str, *, env_file: Path) -> str:
    """A deploy/ file with its production paths pointing into this checkout and ``env_file``."""
    return text.replace("/etc/academy/env", str(env_file)).replace("/srv/academy", str(ROOT))


@dataclass(frozen=True)
class Unit:
    exec_start: list[str]
    environment: dict[str, str]
    working_directory: str
    exec_reload: list[list[str]]  # each ExecReload= line, in order


def read_unit(name: str, *, env_file: Path) -> Unit:
    """The few keys of a deploy/ unit that say how its process starts."""
    exec_start, environment, cwd, exec_reload = None, {}, None, []
    text = (DEPLOY / name).read_text()
    for token in ("/srv/academy", "/etc/academy/env"):
        assert token in text, f"{name} no longer mentions {token}: update tests/production.py"
    for line in installed(text, env_file=env_file).splitlines():
        key, _, value = line.partition("=")
        if key == "ExecStart":
            exec_start = shlex.split(value)
        elif key == "Environment":
            environment.update(item.split("=", 1) for item in shlex.split(value))
        elif key == "WorkingDirectory":
            cwd = value
        elif key == "ExecReload":
            exec_reload.append(shlex.split(value))
    assert exec_start and cwd, f"{name}: no ExecStart or WorkingDirectory"
    return Unit(exec_start, environment, cwd, exec_reload)


def clean_environment(home: Path) -> dict[str, str]:
    """What systemd gives a service: no DATABASE_URL, DEBUG or .env from the developer."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}


def write_env_file(path: Path, **values: str) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    path.chmod(0o640)
    return path


def database_url(settings_dict: dict) -> str:
    """A URL for the database Django is connected to (the live test database)."""
    if settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{settings_dict['NAME']}"
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{quote(settings_dict['NAME'], safe='')}"


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):
        assert self.headers.get_content_type() == "application/json", (self.status, self.body)
        return json.loads(self.body)

    def cookies(self) -> dict[str, str]:
        """name -> the whole Set-Cookie line (attributes included)."""
        lines = self.headers.get_all("Set-Cookie") or []
        return {line.split("=", 1)[0]: line for line in lines}


def fetch(url: str, *, method="GET", headers=None, body: bytes | None = None) -> Response:
    """One request, redirects not followed (a 301 is an answer here); TLS not verified."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=30, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path or "/", body=body, headers=headers or {})
        response = conn.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        conn.close()


def wait_until_serving(url: str, process: subprocess.Popen, log: Path, seconds=60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            fetch(url)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"not serving {url} after {seconds} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()  # gunicorn: graceful stop; nginx: fast stop
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Server:
    """gunicorn as the web unit runs it."""

    url: str
    env: dict[str, str]
    env_file: Path
    process: subprocess.Popen
    stdout: Path
    stderr: Path
    runtime_directory: Path
    home: Path
    static_root: Path
    database_url: str

    def manage(self, *args: str, timeout=120, **env: str) -> subprocess.CompletedProcess:
        """A management command with the server's configuration (its env file), and ``env``."""
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def start_server(tmp: Path, *, database_url: str, workers: int = 2) -> Server:
    """collectstatic, (migrate a fresh SQLite file), then gunicorn from the web unit."""
    tmp.mkdir(parents=True, exist_ok=True)
    home, run, static_root = tmp / "home", tmp / "run", tmp / "static"
    for directory in (home, run):
        directory.mkdir(exist_ok=True)
    port = free_port()
    env_file = write_env_file(
        tmp / "env",
        SECRET_KEY="production-test-secret-key-not-used-anywhere-else-0123456789",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url,
        STATIC_ROOT=str(static_root),
        SYNC_HEALTH_TOKEN=SERVER_TOKEN,
    )
    unit = read_unit("academy-web.service", env_file=env_file)
    env = {**clean_environment(home), **unit.environment}
    server_env = {
        **env,
        # What systemd's RuntimeDirectory= sets; the port and worker count are the test's.
        "RUNTIME_DIRECTORY": str(run),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
    }

    def manage(*args):
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stderr[-3000:]}"

    if database_url.startswith("sqlite"):
        manage("migrate", "--noinput", "-v", "0")
    manage("collectstatic", "--noinput", "-v", "0")
    stdout, stderr = tmp / "gunicorn.out", tmp / "gunicorn.err"
    process = subprocess.Popen(
        unit.exec_start,
        cwd=unit.working_directory,
        env=server_env,
        stdout=stdout.open("wb"),
        stderr=stderr.open("wb"),
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{url}/health/sync/", process, stderr)
    except BaseException:
        stop(process)
        raise
    return Server(
        url=url,
        env=env,
        env_file=env_file,
        process=process,
        stdout=stdout,
        stderr=stderr,
        runtime_directory=run,
        home=home,
        static_root=static_root,
        database_url=database_url,
    )


@dataclass
class Worker:
    """db_worker as the worker unit runs it."""

    process: subprocess.Popen
    log: Path

    def wait_until_started(self, seconds=60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"exited {self.process.returncode}:\n{self.log.read_text()}")
            if "Starting worker" in self.log.read_text():
                return
            time.sleep(0.1)
        raise AssertionError(f"the worker did not start in {seconds} s:\n{self.log.read_text()}")


def start_worker(tmp: Path, *, database_url: str, **settings: str) -> Worker:
    """db_worker from deploy/academy-worker.service (its ExecStart and Environment lines),
    in a clean environment with a settings file for ``database_url`` (and ``settings``, more
    lines of it); started, not waited for."""
    tmp.mkdir(parents=True, exist_ok=True)
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env_file = write_env_file(
        tmp / "env",
        SECRET_KEY="production-test-secret-key-not-used-anywhere-else-0123456789",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url,
        **settings,
    )
    unit = read_unit("academy-worker.service", env_file=env_file)
    log = tmp / "worker.log"
    process = subprocess.Popen(
        unit.exec_start,
        cwd=unit.working_directory,
        env={**clean_environment(home), **unit.environment},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    return Worker(process, log)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    openssl = require_tool("openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def nginx_config(directory: Path, *, upstream_port: int, http_port: int, https_port: int) -> Path:
    """deploy/nginx-academy.conf on test ports and certificate, inside a minimal nginx.conf."""
    cert, key = self_signed_certificate(directory)
    site = (DEPLOY / "nginx-academy.conf").read_text()
    replacements = {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;": "",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "listen [::]:443 ssl http2;": "",
        "/etc/letsencrypt/live/academy.example.org/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/academy.example.org/privkey.pem": str(key),
    }
    for old, new in replacements.items():
        assert old in site, f"deploy/nginx-academy.conf has no {old!r}: update tests/production.py"
        site = site.replace(old, new)
    (directory / "academy.conf").write_text(site)
    temp = "".join(
        f"    {kind}_temp_path {directory / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = directory / "nginx.conf"
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "") + f"pid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} warn;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"    access_log {directory / 'access.log'};\n"
        f"{temp}"
        f"    include {directory / 'academy.conf'};\n"
        "}\n"
    )
    return main


@dataclass
class Proxy:
    """nginx with the sample site: https_url is the site, http_url its plain-HTTP side."""

    https_url: str
    http_url: str
    process: subprocess.Popen
    error_log: Path


def start_proxy(tmp: Path, *, upstream_port: int) -> Proxy:
    nginx = require_tool("nginx")
    tmp.mkdir(parents=True, exist_ok=True)
    http_port, https_port = free_port(), free_port()
    config = nginx_config(
        tmp, upstream_port=upstream_port, http_port=http_port, https_port=https_port
    )
    log = tmp / "nginx.stderr"
    process = subprocess.Popen(
        [nginx, "-p", str(tmp), "-c", str(config), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        stdin=subprocess.DEVNULL,
    )
    https_url = f"https://127.0.0.1:{https_port}"
    try:
        wait_until_serving(https_url + "/health/sync/", process, log)
    except BaseException:
        stop(process)
        raise
    return Proxy(https_url, f"http://127.0.0.1:{http_port}", process, tmp / "error.log")


@pytest.fixture(scope="module")
def production_server(django_db_setup, tmp_path_factory):
    """gunicorn on the live test database (PostgreSQL) or a migrated SQLite file.

    The SQLite test database is in memory, out of another process's reach, so there the
    server has a file of its own; on PostgreSQL it serves the test database, and tests
    that write through it use ``committed_db`` so their data is flushed afterwards.
    Per module: its workers keep their connections (CONN_MAX_AGE), which other modules'
    tests must not find open on the test database.
    """
    from django.db import connection

    tmp = tmp_path_factory.mktemp("production")
    if connection.vendor == "sqlite":
        url = f"sqlite:///{tmp / 'academy.sqlite3'}"
    else:
        url = database_url(connection.settings_dict)
    server = start_server(tmp / "web", database_url=url)
    yield server
    stop(server.process)  # before pytest-django drops the test database


@pytest.fixture(scope="module")
def production_proxy(production_server, tmp_path_factory):
    proxy = start_proxy(
        tmp_path_factory.mktemp("nginx"), upstream_port=urlsplit(production_server.url).port
    )
    yield proxy
    stop(proxy.process)
