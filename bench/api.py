"""The HTTP API under load, behind the production server (``BENCH_PARTS=api``).

gunicorn as bench/web.py starts it, over BENCH_API_N pairs in sync (events on a desynced
pair would meet the commit guard, which is not what is measured here). wrk loads, in
alternating rounds so that a neighbour's load falls on all alike: the admin login page
(the baseline), ``POST /api/v1/events`` (a random student, a fresh Idempotency-Key per
request) and ``GET /api/v1/students/{id}/progress`` (a random student). Then batches of
1,000 events are sent back to back by BENCH_API_BATCH_SENDERS httpx clients. Import
after ``django.setup()``.
"""

import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

from licenses.guard import unguarded

from . import data, web

EVENTS = "/api/v1/events"
BATCH = 1000
# wrk's Lua has one fixed random sequence (math.random is not seeded): every thread of
# every run would send the same students, and the same keys again in every round (replays,
# not events). So each run passes a fresh run id and seed (``wrk ... -- RUN SEED``) and each
# thread seeds its own sequence.
SEEDED = """
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
function init(args) run = args[1]; math.randomseed(tonumber(args[2]) + tid * 7919) end
"""
# A random student, a key no other request, thread or run uses.
EVENT_SCRIPT = (
    SEEDED
    + """
local n = 0
request = function()
  n = n + 1
  local body = string.format(
    '{"student_id": %d, "specialization": "PLAYER", "xp": %d, "sessions": 1}',
    math.random(1, USERS), math.random(1, 100))
  wrk.headers["Idempotency-Key"] = string.format("%s-%d-%d", run, tid, n)
  wrk.headers["Content-Type"] = "application/json"
  return wrk.format("POST", nil, nil, body)
end
"""
)
READ_SCRIPT = (
    SEEDED
    + """
request = function()
  return wrk.format("GET", string.format("/api/v1/students/%d/progress", math.random(1, USERS)))
end
"""
)
PAGES = ("admin login (baseline)", "POST /api/v1/events", "GET .../progress")


def _batches(url: str, key: str, users: int, seconds: float, senders: int) -> dict:
    """Batches of 1,000 back to back from ``senders`` clients: events/s over the run.

    The bodies are made before the clock starts (enough for 15,000 events/s): the
    server shares this host's two cores with the senders, and what is measured is the
    server, not a Python client building 1,000 events and their JSON per request.
    """
    import json
    import random

    counts, errors, latencies = [0] * senders, [], []
    per_sender = int(seconds * 15_000 / BATCH / senders) + 1

    def body(rng: random.Random) -> bytes:
        run = uuid.uuid4().hex
        events = [
            {"key": f"{run}-{i}", "student_id": rng.randint(1, users),
             "specialization": "PLAYER", "xp": rng.randint(1, 100), "sessions": 1}
            for i in range(BATCH)
        ]  # fmt: skip
        return json.dumps({"events": events}).encode()

    bodies = [[body(random.Random(slot * 100_000 + n)) for n in range(per_sender)]
              for slot in range(senders)]  # fmt: skip
    deadline = time.monotonic() + seconds

    def send(slot: int) -> None:
        rng = random.Random(-slot)
        with httpx.Client(base_url=url, timeout=120, headers={
            "Authorization": f"Bearer {key}", "X-Forwarded-Proto": "https",
            "Content-Type": "application/json"}) as client:  # fmt: skip
            while time.monotonic() < deadline:
                content = bodies[slot].pop() if bodies[slot] else body(rng)
                t0 = time.perf_counter()
                reply = client.post("/api/v1/events/batch", content=content)
                latencies.append(time.perf_counter() - t0)
                if reply.status_code == 200 and reply.json()["applied"] == BATCH:
                    counts[slot] += BATCH
                else:
                    errors.append(f"{reply.status_code} {reply.text[:200]}")

    started = time.perf_counter()
    threads = [threading.Thread(target=send, args=(slot,)) for slot in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "senders": senders,
        "seconds": round(elapsed, 1),
        "batches": len(latencies),
        "events": sum(counts),
        "events_per_s": round(sum(counts) / elapsed),
        "batch_p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "batch_max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "errors": len(errors),
        "error_samples": errors[:3],
    }


def api(n: int, *, env: dict, admin_url: str, seconds: int, rounds: int, workers: int,
        batch_seconds: int, senders: int) -> dict:  # fmt: skip
    wrk = web.shutil.which("wrk")
    if wrk is None:
        raise SystemExit("BENCH_PARTS=api needs wrk (Debian: apt-get install wrk)")
    from django.db import connection

    from api.services import create_api_key

    with unguarded(), connection.cursor() as cursor:  # its progress and licences in two steps
        data.fill_postgres(cursor, n, data.CLEAN)
    data.vacuum_analyze(admin_url)
    users = (n + 2) // 3
    new = create_api_key("bench", scopes=["events:write", "progress:read", "catalogue:read"])
    # No rate limit for the bench client: the server's speed is measured, not the limit.
    type(new.api_key.client).objects.filter(pk=new.api_key.client_id).update(
        rate_limit_per_minute=0
    )
    connection.close()

    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    server_env = {**env, "ALLOWED_HOSTS": "127.0.0.1", "STATIC_ROOT": str(workdir / "static"),
                  "HOME": str(workdir)}  # fmt: skip
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=data.ROOT, env=server_env, check=True,
    )  # fmt: skip
    process, port, log = web._start(server_env, workdir, workers)
    auth = [web.HTTPS, f"Authorization: Bearer {new.key}"]
    scripts = {
        PAGES[0]: ("/admin/login/", [web.HTTPS], None),
        PAGES[1]: (EVENTS, auth, EVENT_SCRIPT.replace("USERS", str(users))),
        PAGES[2]: ("/api/v1/students/1/progress", auth, READ_SCRIPT.replace("USERS", str(users))),
    }  # fmt: skip
    samples = {name: [] for name in PAGES}
    answered = 0  # single events wrk counted as answered, warm-up included
    try:
        for name, (path, headers, script) in scripts.items():
            warm = _wrk(wrk, port, path, headers, script, connections=16, seconds=2)
            answered += warm["requests"] if name == PAGES[1] else 0
        for _ in range(rounds):
            for name, (path, headers, script) in scripts.items():
                samples[name].append(
                    _wrk(wrk, port, path, headers, script, connections=16, seconds=seconds)
                )
        answered += sum(run["requests"] for run in samples[PAGES[1]])
        applied = _events_of("bench")
        batches = _batches(f"http://127.0.0.1:{port}", new.key, users, batch_seconds, senders)
    finally:
        process.terminate()
        process.wait(timeout=60)
    return {
        "n": n, "workers": workers, "seconds": seconds, "rounds": rounds,
        "pages": {name: web._median_run(runs) for name, runs in samples.items()},
        # Each answered request applied its event (a replay would apply none; the server
        # may apply a few more that wrk sent but stopped waiting for).
        "single_events": {"answered": answered, "applied": applied},
        "batches": batches,
    }  # fmt: skip


def _events_of(source: str) -> int:
    from django.db import connection

    from specializations.models import ProgressEvent

    try:
        return ProgressEvent.objects.filter(source=source).count()
    finally:
        connection.close()


def _wrk(wrk, port, path, headers, script, *, connections, seconds):
    if script is None:
        return web._wrk(wrk, port, path, headers, connections=connections, seconds=seconds)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script + web.REPORT)
        lua.flush()
        args = [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
        for header in headers:
            args += ["-H", header]
        done = subprocess.run(
            [*args, "-s", lua.name, f"http://127.0.0.1:{port}{path}", "--",
             uuid.uuid4().hex[:12], str(random.randrange(2**31))],
            capture_output=True, text=True, timeout=seconds + 60,
        )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr[-2000:]}")
    web._drain(port)
    r = web.json.loads(done.stdout.strip().splitlines()[-1])
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


def goals(a: dict) -> list[tuple[str, bool, str]]:
    pages = a["pages"]
    login = pages[PAGES[0]]
    out = []
    for name, bound in ((PAGES[1], 0.8), (PAGES[2], 1.0)):
        r = pages[name]
        pairs = zip(r["req_per_s_each"], login["req_per_s_each"], strict=True)
        ratios = [x / y for x, y in pairs]
        ratio = statistics.median(ratios)
        out.append((
            f"api {name} at 16 conns >= {bound}x login req/s, 0 errors",
            ratio >= bound and r["errors"] == 0 and r["timeouts"] == 0,
            f"{ratio:.2f}x (median of rounds {', '.join(f'{x:.2f}' for x in ratios)};"
            f" {r['req_per_s']:.0f} vs {login['req_per_s']:.0f} req/s), p99 {r['p99_ms']} ms,"
            f" {r['errors']} errors, {r['timeouts']} timeouts",
        ))  # fmt: skip
    e = a["single_events"]
    out.append((
        "api single events: every answered request applied its event (no replays measured)",
        e["applied"] >= e["answered"],
        f"{e['applied']:,} events applied for {e['answered']:,} answered requests",
    ))  # fmt: skip
    b = a["batches"]
    out.append((
        "api batches of 1,000 >= 10,000 events/s",
        b["events_per_s"] >= 10_000 and b["errors"] == 0,
        f"{b['events_per_s']:,} events/s ({b['batches']} batches from {b['senders']} senders,"
        f" p50 {b['batch_p50_ms']} ms per batch, {b['errors']} errors)",
    ))  # fmt: skip
    return out


def print_api(a: dict, say) -> None:
    say(
        f"API behind gunicorn ({a['workers']} workers) over {a['n']:,} pairs, 16 connections,"
        f" {a['rounds']} alternating rounds of {a['seconds']} s (medians):"
    )
    say(f"  {'page':<26} {'responses':>9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'max ms':>7} {'errors':>6} {'timeouts':>8}")  # fmt: skip
    for name, r in a["pages"].items():
        say(
            f"  {name:<26} {r['requests']:>9} {r['req_per_s']:>8.1f} {r['p50_ms']:>7.1f}"
            f" {r['p99_ms']:>7.1f} {r['max_ms']:>7.1f} {r['errors']:>6} {r['timeouts']:>8}"
        )
    b = a["batches"]
    say(
        f"  batches of {BATCH}: {b['events']:,} events in {b['seconds']} s from"
        f" {b['senders']} senders = {b['events_per_s']:,} events/s, p50 {b['batch_p50_ms']} ms"
        f" per batch, max {b['batch_max_ms']} ms, {b['errors']} errors"
    )
    for sample in b["error_samples"]:
        say(f"    error: {sample}")
