"""Exactly once under concurrency: real processes, each on its own PostgreSQL connection,
send the same idempotency key at the same moment; the ledger's unique index decides."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

from specializations.models import ProgressEvent, SpecializationProgress
from specializations.services import enroll
from tests.conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
SENDERS = 16
TIMEOUT = 120  # seconds; a sender still running after this is a deadlock


def database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def send_together(calls: list[dict]) -> list[dict]:
    """Start one process per call, release them together, return their outcomes."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "ACADEMY_ENV_FILE": os.devnull,
        "DATABASE_URL": database_url(),
    }
    senders = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.ledger_sender", json.dumps(call)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for call in calls
    ]
    try:
        for sender in senders:  # every process connected and waiting
            assert sender.stdout.readline().strip() == "ready", sender.stderr.read()
        for sender in senders:
            sender.stdin.write("go\n")
            sender.stdin.flush()
        outcomes = []
        for sender in senders:
            out, err = sender.communicate(timeout=TIMEOUT)
            assert sender.returncode == 0, err
            outcomes.append(json.loads(out))
        return outcomes
    finally:
        for sender in senders:
            if sender.poll() is None:
                sender.kill()
                sender.wait()


def test_the_same_key_sent_by_sixteen_processes_at_once_applies_once(committed_db, make_user):
    student = make_user()
    enroll(student, "PLAYER")
    call = {
        "student": student.pk,
        "specialization": "PLAYER",
        "xp_gained": 25_000,
        "sessions_completed": 12,
        "idempotency_key": "tournament-final-2026",
        "source": "tournament",
    }

    outcomes = send_together([call] * SENDERS)

    assert Counter(o.get("replayed") for o in outcomes) == {False: 1, True: SENDERS - 1}
    event = ProgressEvent.objects.get()
    assert {o["event"] for o in outcomes} == {event.pk}
    progress = SpecializationProgress.objects.get(student=student)
    assert (progress.total_xp, progress.completed_sessions, progress.current_level) == (
        25_000,
        12,
        2,
    )


def test_a_first_update_that_also_enrols_applies_once(committed_db, make_user):
    student = make_user()  # not enrolled: the senders race to create the progress row too
    call = {"student": student.pk, "specialization": "COACH", "xp_gained": 700}

    outcomes = send_together([{**call, "idempotency_key": "k", "source": "quiz"}] * SENDERS)

    assert Counter(o.get("replayed") for o in outcomes) == {False: 1, True: SENDERS - 1}
    assert SpecializationProgress.objects.get(student=student).total_xp == 700
    assert ProgressEvent.objects.count() == 1


def test_one_key_sent_for_different_students_at_once_is_applied_to_one(committed_db, make_user):
    # Different progress rows, so no row lock orders them: only the unique index does.
    students = [make_user() for _ in range(4)]
    for student in students:
        enroll(student, "PLAYER")
    calls = [
        {
            "student": students[i % 4].pk,
            "specialization": "PLAYER",
            "xp_gained": 100,
            "idempotency_key": "shared",
            "source": "quiz",
        }
        for i in range(SENDERS)
    ]

    outcomes = send_together(calls)

    event = ProgressEvent.objects.get()
    winner = event.progress.student_id
    for call, outcome in zip(calls, outcomes, strict=True):
        if call["student"] == winner:
            assert "error" not in outcome and outcome["event"] == event.pk
        else:
            assert outcome["error"] == "IdempotencyConflict", outcome
    totals = dict(SpecializationProgress.objects.values_list("student_id", "total_xp"))
    assert totals == {s.pk: 100 if s.pk == winner else 0 for s in students}
