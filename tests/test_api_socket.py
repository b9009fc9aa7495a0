"""The API over a real socket, behind gunicorn as the web unit runs it, with httpx.

A retry after a lost answer (a read that timed out, a connection closed before the
answer) applies the event once; two senders of one key at once apply it once. The
server's write is held back by a real lock (a PostgreSQL row lock or SQLite's write
lock, taken by a second connection of the test) so the requests are in flight together.
"""

import json
import os
import re
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx
import psycopg2
import pytest

from tests.production import ROOT

HTTPS = {"X-Forwarded-Proto": "https"}  # what the TLS proxy adds


@pytest.fixture
def site(committed_db, production_server):
    """(server, key, student id): a client with every scope and an enrolled student."""
    made = production_server.manage(
        "shell", "-c",
        "from django.contrib.auth import get_user_model\n"
        "from specializations.services import enroll\n"
        "users = get_user_model().objects\n"
        "user = users.create(username=f'socket-{users.count()}')\n"
        "enroll(user, 'PLAYER')\n"
        "print(user.pk)", "-v", "0",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = production_server.manage(
        "create_api_key", "attendance", "--scopes", "events:write,progress:read", "-v", "0"
    )
    assert key.returncode == 0, key.stderr
    return production_server, key.stdout.strip(), int(made.stdout.strip())


@contextmanager
def writes_held(server):
    """The server's writes wait while this is open (a second connection holds the lock)."""
    url = server.database_url
    if url.startswith("sqlite"):
        holder = sqlite3.connect(urlsplit(url).path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # SQLite's one write lock
    else:
        holder = psycopg2.connect(url)
        with holder.cursor() as cursor:  # every progress row, FOR UPDATE, until released
            cursor.execute("SELECT id FROM specializations_specializationprogress FOR UPDATE")
    try:
        yield holder
    finally:
        holder.commit() if not url.startswith("sqlite") else holder.execute("COMMIT")
        holder.close()


def waiting_on_locks(server) -> int | None:
    """How many server connections wait for a lock (PostgreSQL); None where unknown."""
    if server.database_url.startswith("sqlite"):
        return None
    with psycopg2.connect(server.database_url) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0]


def wait_for_waiters(server, n: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        count = waiting_on_locks(server)
        if count is None:
            time.sleep(1.0)  # SQLite: no way to see a waiter; give the requests time
            return
        if count >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{n} requests never waited on the held lock")


def event(student, **amounts):
    return {"student_id": student, "specialization": "PLAYER", **amounts}


def headers(key, idempotency_key):
    return {**HTTPS, "Authorization": f"Bearer {key}", "Idempotency-Key": idempotency_key}


def xp_of(server, key, student) -> int:
    reply = httpx.get(
        f"{server.url}/api/v1/students/{student}/progress",
        headers={**HTTPS, "Authorization": f"Bearer {key}"},
    )
    [row] = reply.json()["specializations"]
    return row["totals"]["xp"]


def send_with_retries(server, key, body, idempotency_key, *, timeout, attempts=20):
    """The README's retry loop, short: the same key until an answer arrives."""
    for _ in range(attempts):
        try:
            return httpx.post(
                f"{server.url}/api/v1/events", json=body,
                headers=headers(key, idempotency_key), timeout=timeout,
            )  # fmt: skip
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("no answer after every retry")


def test_a_retry_after_a_read_timeout_applies_once(site):
    server, key, student = site
    with writes_held(server):
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{server.url}/api/v1/events", json=event(student, xp=70),
                headers=headers(key, "timeout-1"), timeout=httpx.Timeout(10, read=0.5),
            )  # fmt: skip
        wait_for_waiters(server, 1)  # the lost request is still in the server
    reply = send_with_retries(server, key, event(student, xp=70), "timeout-1", timeout=30)
    assert reply.status_code in (200, 201)
    assert reply.json()["totals"]["xp"] == 70
    assert xp_of(server, key, student) == 70


def test_a_retry_after_the_connection_closed_unanswered_applies_once(site):
    server, key, student = site
    body = httpx.Request(
        "POST", f"{server.url}/api/v1/events", json=event(student, xp=30),
        headers=headers(key, "closed-1"),
    )  # fmt: skip
    raw = b"".join(
        [b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"]
        + [f"{name}: {value}\r\n".encode() for name, value in body.headers.items()
           if name.lower() != "host"]
        + [b"\r\n", body.read()]
    )  # fmt: skip
    port = urlsplit(server.url).port
    with writes_held(server):
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(raw)  # and hang up without reading a byte of the answer
        wait_for_waiters(server, 1)
    reply = send_with_retries(server, key, event(student, xp=30), "closed-1", timeout=30)
    assert reply.status_code in (200, 201)
    assert xp_of(server, key, student) == 30


def test_two_senders_of_one_key_at_once_apply_it_once(site):
    server, key, student = site
    replies = []

    def send():
        replies.append(
            httpx.post(
                f"{server.url}/api/v1/events",
                json=event(student, xp=11),
                headers=headers(key, "twice-1"),
                timeout=60,
            )  # fmt: skip
        )

    with writes_held(server):
        senders = [threading.Thread(target=send) for _ in range(2)]
        for sender in senders:
            sender.start()
        wait_for_waiters(server, 2)
    for sender in senders:
        sender.join(timeout=60)
    assert sorted(reply.status_code for reply in replies) == [200, 201]
    first, replay = sorted(replies, key=lambda reply: reply.status_code, reverse=True)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == first.content
    assert xp_of(server, key, student) == 11


def test_the_docs_and_their_static_files_come_from_the_server(site):
    server, _, _ = site
    page = httpx.get(f"{server.url}/api/v1/docs", headers=HTTPS)
    assert page.status_code == 200
    for asset in ("swagger-ui-bundle", "swagger-ui-init", "swagger-ui"):
        found = [part.split('"')[0] for part in page.text.split('"/static/')[1:]
                 if part.startswith(f"ninja/{asset}.")]  # fmt: skip
        assert found, asset
        assert httpx.get(f"{server.url}/static/{found[0]}", headers=HTTPS).status_code == 200


def test_an_error_through_gunicorn_is_a_problem_never_html(site):
    server, key, _ = site
    reply = httpx.post(f"{server.url}/api/v1/events", content=b"{", headers=headers(key, "bad-1"))
    assert reply.status_code == 400
    assert reply.headers["Content-Type"] == "application/problem+json"


def readme_block(language: str) -> str:
    """The README's API section's code block in ``language``, as a reader copies it."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("\n## API\n") :]
    section = section[: section.index("\n## ", 1)]
    return re.search(rf"```{language}\n(.*?)```", section, re.S)[1]


@pytest.fixture
def readme_site(committed_db, production_server):
    """The README's student: a new coach known as src-17 to a new client (the server
    outlives a test: a client of its own gives the README's fixed key a fresh start)."""
    client = f"attendance-{uuid.uuid4().hex[:8]}"
    made = production_server.manage(
        "shell", "-c",
        "from django.contrib.auth import get_user_model\n"
        "from specializations.services import enroll, link_external_id\n"
        f"user = get_user_model().objects.create(username='readme-{client}')\n"
        "enroll(user, 'COACH')\n"
        f"link_external_id(user, source='{client}', external_id='src-17')", "-v", "0",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = production_server.manage(
        "create_api_key", client, "--scopes", "events:write,progress:read", "-v", "0"
    )
    assert key.returncode == 0, key.stderr
    return production_server, key.stdout.strip()


def test_the_readmes_curl_example_applies_its_event_once(readme_site):
    server, key = readme_site
    command = readme_block("sh").rstrip().replace("https://academy.example.org", server.url)
    command += ' -H "X-Forwarded-Proto: https" -w "\\n%{http_code}"'  # what the TLS proxy adds
    env = {"PATH": os.environ["PATH"], "ACADEMY_API_KEY": key}
    answers = [subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True,
                              check=True).stdout.rsplit("\n", 1) for _ in range(2)]  # fmt: skip
    (first, created), (again, replayed) = answers
    assert (created, replayed) == ("201", "200")
    assert json.loads(again) == json.loads(first)
    assert json.loads(first)["totals"]["xp"] == 150


def test_the_readmes_python_example_sends_once_and_names_a_refused_field(readme_site, monkeypatch):
    server, key = readme_site
    real_post = httpx.post

    def behind_the_proxy(url, *, headers, **kwargs):  # what the TLS proxy adds
        return real_post(url, headers={**headers, **HTTPS}, **kwargs)

    monkeypatch.setattr(httpx, "post", behind_the_proxy)
    code = readme_block("python")
    code = code.replace(
        'API = "https://academy.example.org/api/v1"', f'API = "{server.url}/api/v1"'
    )
    code = code.replace('KEY = "acad_..."', f'KEY = "{key}"')
    example: dict = {}
    exec(compile(code, "README.md", "exec"), example)  # ends by sending its event: 150 XP
    event = {"external_id": "src-17", "specialization": "COACH", "xp": 5}
    first = example["send_event"](event, "readme-retry-1")
    assert example["send_event"](event, "readme-retry-1") == first  # a retry: the replay
    assert first["totals"]["xp"] == 155
    with pytest.raises(RuntimeError, match=r"422: .*xp.*-5"):
        example["send_event"]({**event, "xp": -5})
