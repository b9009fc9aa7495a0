"""Real threads on PostgreSQL: row locks keep every amount and every level coupled."""

import random
import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection

from licenses.consistency import count_pairs
from licenses.guard import unguarded
from licenses.models import LicenseProgression, UserLicense
from licenses.services import sync_license_to_progress, update_level_atomic
from monitoring.services import RepairOptions, repair
from specializations.models import SpecializationProgress
from specializations.services import enroll, update_progress
from tests.conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8
CALLS_PER_THREAD = 60  # 480 calls in all
JOIN_TIMEOUT = 120  # seconds; a thread still alive after this is a deadlock


def run_together(jobs: list[Callable[[], None]]) -> list[Exception]:
    """Start every job at once, each on its own thread and connection; return their errors.

    Fails the test when a thread is still running after JOIN_TIMEOUT (a deadlock).
    """
    barrier = threading.Barrier(len(jobs), timeout=JOIN_TIMEOUT)
    errors: list[Exception] = []

    def run(job) -> None:
        try:
            barrier.wait()
            job()
        except Exception as error:  # every failure is reported by the test
            errors.append(error)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not [thread for thread in threads if thread.is_alive()], "deadlock: threads hung"
    return errors


class Ledger:
    """What the threads sent, added up under a lock."""

    def __init__(self):
        self.sent, self._lock = Counter(), threading.Lock()

    def add(self, amounts: Counter) -> None:
        with self._lock:
            self.sent.update(amounts)


def hammer(users, *, seed, ledger) -> Callable[[], None]:
    """One thread's share: a random mix of both services on the shared users."""

    def job() -> None:
        rng, mine = random.Random(seed), Counter()
        try:
            for _ in range(CALLS_PER_THREAD):
                user = rng.choice(users)
                xp, sessions = rng.randint(0, 5_000), rng.randint(0, 2)
                if rng.random() < 0.75:
                    update_progress(user, "PLAYER", xp_gained=xp, sessions_completed=sessions)
                else:
                    update_level_atomic(
                        user,
                        "PLAYER",
                        new_level=rng.randint(1, 8),
                        xp_change=xp,
                        sessions_change=sessions,
                        reason="concurrency test",
                    )
                mine[(user.pk, "xp")] += xp
                mine[(user.pk, "sessions")] += sessions
        finally:
            ledger.add(mine)

    return job


def test_concurrent_updates_lose_nothing_and_never_desync(committed_db, make_user):
    users = [make_user() for _ in range(5)]
    for user in users[:3]:
        enroll(user, "PLAYER")  # the other two are enrolled by racing first updates
    ledger = Ledger()

    errors = run_together([hammer(users, seed=seed, ledger=ledger) for seed in range(THREADS)])

    assert errors == []
    for user in users:
        progress = SpecializationProgress.objects.get(student=user, specialization_id="PLAYER")
        assert (progress.total_xp, progress.completed_sessions) == (
            ledger.sent[(user.pk, "xp")],
            ledger.sent[(user.pk, "sessions")],
        )
    counts = count_pairs()
    assert counts.total == len(users)
    assert counts.inconsistent == 0, counts.by_kind


def test_restoring_a_missing_progress_row_races_a_first_update_without_deadlock(
    committed_db, make_user
):
    # Both create the progress row; both must lock progress before licence.
    users = [make_user() for _ in range(6)]
    for user in users:
        update_level_atomic(user, "PLAYER", new_level=3)
    with unguarded():
        SpecializationProgress.objects.all().delete()  # licences survive: missing_progress
    jobs = []
    for user in users:
        jobs.append(lambda user=user: sync_license_to_progress(user, "PLAYER"))
        jobs.append(lambda user=user: update_progress(user, "PLAYER", xp_gained=100))

    assert run_together(jobs) == []
    assert set(SpecializationProgress.objects.values_list("current_level", "total_xp")) == {
        (3, 100)
    }
    assert count_pairs().inconsistent == 0


def earn(users, *, seed, ledger) -> Callable[[], None]:
    """Students earning XP (first updates included) while repair runs."""

    def job() -> None:
        rng, mine = random.Random(seed), Counter()
        try:
            for _ in range(CALLS_PER_THREAD):
                user = rng.choice(users)
                xp = rng.randint(0, 9_000)
                update_progress(user, "PLAYER", xp_gained=xp, sessions_completed=1)
                mine[user.pk] += xp
        finally:
            ledger.add(mine)

    return job


def test_repair_runs_safely_while_students_earn_xp(committed_db, make_user):
    users = [make_user() for _ in range(24)]
    for user in users:
        update_level_atomic(user, "PLAYER", new_level=2)
    ids = [user.pk for user in users]
    # Every kind of desync, made behind the hook's back.
    with unguarded():  # desyncs of every kind, committed behind the hook's back
        SpecializationProgress.objects.filter(student_id__in=ids[0:8]).update(current_level=4)
        UserLicense.objects.filter(user_id__in=ids[8:12]).update(
            current_level=5, max_achieved_level=5
        )
        LicenseProgression.objects.filter(license__user_id__in=ids[12:16]).delete()
        UserLicense.objects.filter(user_id__in=ids[12:16]).delete()
        SpecializationProgress.objects.filter(student_id__in=ids[16:20]).delete()
    assert count_pairs().inconsistent == 20
    ledger = Ledger()

    def repair_repeatedly() -> None:
        for _ in range(5):
            repair(options=RepairOptions(batch_size=7))

    jobs = [earn(users, seed=seed, ledger=ledger) for seed in range(THREADS)]
    assert run_together([*jobs, repair_repeatedly]) == []

    repair()  # whatever the students' updates left behind the last pass
    assert count_pairs().inconsistent == 0
    for user in users:
        progress = SpecializationProgress.objects.get(student=user)
        assert progress.total_xp == ledger.sent[user.pk]  # restored rows started at 0 XP
        assert progress.current_level >= 2  # never lowered
