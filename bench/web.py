"""The web endpoints under load, behind the production server (``BENCH_PARTS=web``).

gunicorn starts as docs/production.md starts it (``-c python:config.gunicorn_conf``,
DEBUG off, collected static files), with BENCH_WEB_WORKERS workers, against the bench
database filled with N pairs; wrk (Debian's ``wrk``) loads each page at 16 and 100
connections. Import after ``django.setup()``.
"""

import http.client
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.test import Client

from licenses.guard import unguarded
from monitoring.services import run_health_check

from . import data

TOKEN = "bench-health-token-0123456789abcdef"
HTTPS = "X-Forwarded-Proto: https"  # what the TLS proxy adds
DESYNCS = "/admin/monitoring/desynccase/"
PROGRESS = "/admin/specializations/specializationprogress/"
# (name, path, credentials): "token" = the bearer token, "staff" = a session cookie.
PAGES = [
    ("admin login (baseline)", "/admin/login/", None),
    ("/health/sync/", "/health/sync/", "token"),
    ("/health/sync/metrics", "/health/sync/metrics", "token"),
    ("desync cases list", DESYNCS, "staff"),
    ("desync cases, one kind", DESYNCS + "?kind=missing_license", "staff"),
    ("desync cases, search", DESYNCS + "?q=bench4242", "staff"),
    ("progress list", PROGRESS, "staff"),
    ("progress, level mismatch", PROGRESS + "?sync=level_mismatch", "staff"),
    ("progress, search", PROGRESS + "?q=bench4242", "staff"),
    ("licences list", "/admin/licenses/userlicense/", "staff"),
    # What any admin list costs here before its rows: the admin's own floor on this machine.
    ("smallest admin list (3 rows)", "/admin/specializations/specialization/", "staff"),
]  # fmt: skip
# Issue 15's bounds on an admin list's time per page, checked through the server with one
# connection (no queue): the time staff wait for a page.
LIST_BOUND_MS = {"desync cases": 100, "progress": 50, "licences": 50}
COMPARED = ("admin login (baseline)", "/health/sync/", "/health/sync/metrics")
# wrk reports its own summary through this script: one JSON line, microseconds.
REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d,' ..
    ' "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str, headers: dict) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _start(env: dict, workdir: Path, workers: int) -> tuple[subprocess.Popen, int, Path]:
    port = _free_port()
    log = workdir / "gunicorn.log"
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "-c", "python:config.gunicorn_conf"],
        cwd=data.ROOT,
        env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(workers)},
        # The access log goes to a file, as journald would take it: its cost is measured.
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            _get(port, "/health/sync/", {})
            return process, port, log
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit(f"gunicorn did not start:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.2)


def _drain(port: int) -> None:
    """Wait until the requests wrk left queued are served (a slow page's backlog would
    otherwise be the next run's first minute); a probe queues behind them."""
    _get(port, "/health/sync/", {"X-Forwarded-Proto": "https", "Authorization": f"Bearer {TOKEN}"})


def _wrk(wrk: str, port: int, path: str, headers: list[str], *, connections: int, seconds: int):
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(REPORT)
        script.flush()
        threads = min(2, connections)  # wrk needs a connection per thread
        args = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
        for header in headers:
            args += ["-H", header]
        run = subprocess.run(
            [*args, "-s", script.name, f"http://127.0.0.1:{port}{path}"],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    if run.returncode != 0:
        raise SystemExit(f"wrk failed ({run.returncode}): {run.stderr[-2000:]}")
    _drain(port)
    r = json.loads(run.stdout.strip().splitlines()[-1])
    return {
        "connections": connections,
        "requests": r["requests"],
        "req_per_s": round(r["requests"] / (r["duration_us"] / 1e6), 1),
        "p50_ms": round(r["p50_us"] / 1000, 1),
        "p99_ms": round(r["p99_us"] / 1000, 1),
        "max_ms": round(r["max_us"] / 1000, 1),
        "errors": r["connect"] + r["read"] + r["write"] + r["status"],
        "non_2xx": r["status"],
        "timeouts": r["timeout"],
    }


def _median_run(samples: list[dict]) -> dict:
    """Medians of rate and latency over the rounds; every response and error counted."""
    return {
        "connections": samples[0]["connections"],
        "rounds": len(samples),
        "requests": sum(r["requests"] for r in samples),
        **{
            key: statistics.median(r[key] for r in samples)
            for key in ("req_per_s", "p50_ms", "p99_ms")
        },  # fmt: skip
        "max_ms": max(r["max_ms"] for r in samples),
        "errors": sum(r["errors"] for r in samples),
        "non_2xx": sum(r["non_2xx"] for r in samples),
        "timeouts": sum(r["timeouts"] for r in samples),
        "req_per_s_each": [r["req_per_s"] for r in samples],
    }


def web(n: int, *, env: dict, admin_url: str, seconds: int, rounds: int, workers: int) -> dict:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("BENCH_PARTS=web needs wrk (Debian: apt-get install wrk)")
    from django.db import connection

    with unguarded(), connection.cursor() as cursor:  # its desyncs, on purpose
        data.fill_postgres(cursor, n, data.SCALE)
    data.vacuum_analyze(admin_url)
    # A recorded run for the health endpoint and the metrics (2% desyncs: degraded, 200).
    report = run_health_check()
    staff = get_user_model().objects.create_superuser("bench-web-staff", password=None)
    client = Client()
    client.force_login(staff)  # a session row the server reads (same SECRET_KEY)
    session = client.cookies["sessionid"].value
    connection.close()

    workdir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    server_env = {
        **env,
        "ALLOWED_HOSTS": "127.0.0.1",
        "STATIC_ROOT": str(workdir / "static"),
        "SYNC_HEALTH_TOKEN": TOKEN,
        "HOME": str(workdir),
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=data.ROOT,
        env=server_env,
        check=True,
    )
    process, port, log = _start(server_env, workdir, workers)
    credentials = {
        None: [HTTPS],
        "token": [HTTPS, f"Authorization: Bearer {TOKEN}"],
        "staff": [HTTPS, f"Cookie: sessionid={session}"],
    }
    pages = {name: {"path": path, "who": who, "samples": {1: [], 16: [], 100: []}}
             for name, path, who in PAGES}  # fmt: skip
    try:
        for page in pages.values():
            headers = credentials[page["who"]]
            page["status"] = _get(port, page["path"], dict(h.split(": ", 1) for h in headers))
            # Warm-up: every worker's imports, catalogue cache and database connection.
            _wrk(wrk, port, page["path"], headers, connections=16, seconds=2)
        for name, page in pages.items():
            if name not in COMPARED:  # a list's own time per page, one request at a time
                page["samples"][1].append(
                    _wrk(wrk, port, page["path"], credentials[page["who"]],
                         connections=1, seconds=seconds * rounds)
                )  # fmt: skip
        for connections in (16, 100):
            # The baseline and the two endpoints compared with it take turns, round by
            # round, so a neighbour's load on the shared cores falls on all three alike.
            for _ in range(rounds):
                for name in COMPARED:
                    page = pages[name]
                    page["samples"][connections].append(
                        _wrk(wrk, port, page["path"], credentials[page["who"]],
                             connections=connections, seconds=seconds)
                    )  # fmt: skip
            for name, page in pages.items():
                if name not in COMPARED:  # the slow lists: one longer run each
                    page["samples"][connections].append(
                        _wrk(wrk, port, page["path"], credentials[page["who"]],
                             connections=connections, seconds=seconds * rounds)
                    )  # fmt: skip
        for page in pages.values():
            page["runs"] = [_median_run(samples) for samples in page["samples"].values() if samples]
    finally:
        process.terminate()
        process.wait(timeout=60)
    return {
        "n": n,
        "workers": workers,
        "seconds": seconds,
        "rounds": rounds,
        "recorded_status": report.status,
        "conn_max_age": connection.settings_dict.get("CONN_MAX_AGE"),
        "access_log_lines": sum(1 for _ in log.open("rb")),
        "pages": pages,
    }


def goals(w: dict) -> list[tuple[str, bool, str]]:
    pages = w["pages"]
    login = {r["connections"]: r for r in pages["admin login (baseline)"]["runs"]}
    out = []
    for name in ("/health/sync/", "/health/sync/metrics"):
        for r in pages[name]["runs"]:
            base = login[r["connections"]]
            # Round by round (each round ran login, health, metrics back to back): the
            # median of those ratios, which a neighbour's load moves least.
            pairs = zip(r["req_per_s_each"], base["req_per_s_each"], strict=True)
            ratios = [a / b for a, b in pairs]
            ratio = statistics.median(ratios)
            out.append(
                (
                    f"web {name} at {r['connections']} conns >= 0.9x login req/s",
                    ratio >= 0.9,
                    f"{ratio:.2f}x (median of rounds {', '.join(f'{x:.2f}' for x in ratios)};"
                    f" {r['req_per_s']:.0f} vs {base['req_per_s']:.0f} req/s)",
                )
            )
    for name, page in pages.items():
        bound = next((ms for prefix, ms in LIST_BOUND_MS.items() if name.startswith(prefix)), None)
        for r in page["runs"]:
            if r["connections"] == 1 and bound is not None:
                out.append(
                    (
                        f"web {name}, one connection: p50 <= {bound} ms per page (issue 15)",
                        r["p50_ms"] <= bound and r["errors"] == 0 and page["status"] == 200,
                        f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, {r['requests']} pages,"
                        f" {r['req_per_s']:.1f} pages/s, {r['errors']} errors",
                    )
                )
                continue
            # No response within the run at all is a miss too (wrk counts as timeouts only
            # the requests that ended past --timeout, not those still waiting at the end).
            clean = (
                r["errors"] == 0 and r["timeouts"] == 0 and page["status"] == 200
                and r["requests"] > 0
            )  # fmt: skip
            latency_ok = r["connections"] != 16 or r["p99_ms"] < 100
            # A closed loop: each connection waits on average connections / rate (Little's law).
            wait = r["connections"] * 1000 / r["req_per_s"] if r["req_per_s"] else float("inf")
            out.append(
                (
                    f"web {name} at {r['connections']} conns: 0 errors/timeouts"
                    + (", p99 < 100 ms" if r["connections"] == 16 else ""),
                    clean and latency_ok,
                    f"HTTP {page['status']}, {r['requests']} responses, {r['errors']} errors,"
                    f" {r['timeouts']} timeouts, p99 {r['p99_ms']} ms;"
                    f" {r['req_per_s']:.0f} req/s, so a mean wait of {wait:.0f} ms",
                )
            )
    return out


def print_web(w: dict, say) -> None:
    say(
        f"Web behind gunicorn ({w['workers']} workers, DEBUG off, CONN_MAX_AGE"
        f" {w['conn_max_age']}) over {w['n']:,} pairs; login, health and metrics in"
        f" {w['rounds']} alternating rounds of {w['seconds']} s (medians), the lists"
        f" {w['rounds'] * w['seconds']} s each:"
    )
    say(f"  {'page':<26} {'conns':>5} {'responses':>9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'max ms':>7} {'errors':>6} {'timeouts':>8}")  # fmt: skip
    for name, page in w["pages"].items():
        for r in page["runs"]:
            say(
                f"  {name:<26} {r['connections']:>5} {r['requests']:>9} {r['req_per_s']:>8.1f}"
                f" {r['p50_ms']:>7.1f}"
                f" {r['p99_ms']:>7.1f} {r['max_ms']:>7.1f} {r['errors']:>6} {r['timeouts']:>8}"
            )
