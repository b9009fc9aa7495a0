"""Real threads on PostgreSQL: row locks keep every amount and every level coupled."""

import random
import threading
from collections import Counter

import pytest
from django.db import connection

from licenses.consistency import count_pairs
from licenses.models import LicenseProgression, UserLicense
from licenses.services import sync_license_to_progress, update_level_atomic
from monitoring.services import repair
from specializations.models import SpecializationProgress
from specializations.services import enroll, update_progress
from tests.conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8
CALLS_PER_THREAD = 60  # 480 calls in all
JOIN_TIMEOUT = 120  # seconds; a thread still alive after this is a deadlock
sent_lock = threading.Lock()


def hammer(users, *, seed, sent, errors, barrier) -> None:
    """One thread's share: a random mix of both services on the shared users."""
    rng = random.Random(seed)
    mine = Counter()
    try:
        barrier.wait()
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
    except Exception as error:  # every failure is reported by the test
        errors.append(error)
    finally:
        with sent_lock:
            sent.update(mine)
        connection.close()  # this thread's own connection


def test_concurrent_updates_lose_nothing_and_never_desync(committed_db, make_user):
    users = [make_user() for _ in range(5)]
    for user in users[:3]:
        enroll(user, "PLAYER")  # the other two are enrolled by racing first updates
    sent, errors = Counter(), []
    barrier = threading.Barrier(THREADS, timeout=JOIN_TIMEOUT)
    threads = [
        threading.Thread(
            target=hammer,
            args=(users,),
            kwargs={"seed": seed, "sent": sent, "errors": errors, "barrier": barrier},
        )
        for seed in range(THREADS)
    ]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)

    assert not [thread for thread in threads if thread.is_alive()], "deadlock: threads hung"
    assert errors == []
    for user in users:
        progress = SpecializationProgress.objects.get(student=user, specialization_id="PLAYER")
        assert (progress.total_xp, progress.completed_sessions) == (
            sent[(user.pk, "xp")],
            sent[(user.pk, "sessions")],
        )
    counts = count_pairs()
    assert counts.total == len(users)
    assert counts.inconsistent == 0, counts.by_kind


def restore_and_first_update(user, *, errors, barrier, operation) -> None:
    try:
        barrier.wait()
        if operation == "restore":
            sync_license_to_progress(user, "PLAYER")
        else:
            update_progress(user, "PLAYER", xp_gained=100)
    except Exception as error:  # every failure is reported by the test
        errors.append(error)
    finally:
        connection.close()


def test_restoring_a_missing_progress_row_races_a_first_update_without_deadlock(
    committed_db, make_user
):
    # Both create the progress row; both must lock progress before licence.
    users = [make_user() for _ in range(6)]
    for user in users:
        update_level_atomic(user, "PLAYER", new_level=3)
    SpecializationProgress.objects.all().delete()  # licences survive: missing_progress
    errors = []
    barrier = threading.Barrier(2 * len(users), timeout=JOIN_TIMEOUT)
    threads = [
        threading.Thread(
            target=restore_and_first_update,
            args=(user,),
            kwargs={"errors": errors, "barrier": barrier, "operation": operation},
        )
        for user in users
        for operation in ("restore", "update")
    ]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)

    assert not [thread for thread in threads if thread.is_alive()], "deadlock: threads hung"
    assert errors == []
    assert set(SpecializationProgress.objects.values_list("current_level", "total_xp")) == {
        (3, 100)
    }
    assert count_pairs().inconsistent == 0


def earn(users, *, seed, sent, errors, barrier) -> None:
    """Students earning XP (first updates included) while repair runs."""
    rng = random.Random(seed)
    mine = Counter()
    try:
        barrier.wait()
        for _ in range(CALLS_PER_THREAD):
            user = rng.choice(users)
            xp = rng.randint(0, 9_000)
            update_progress(user, "PLAYER", xp_gained=xp, sessions_completed=1)
            mine[user.pk] += xp
    except Exception as error:  # every failure is reported by the test
        errors.append(error)
    finally:
        with sent_lock:
            sent.update(mine)
        connection.close()


def repair_repeatedly(*, errors, barrier, reports) -> None:
    try:
        barrier.wait()
        for _ in range(5):
            reports.append(repair(batch_size=7))
    except Exception as error:  # a deadlock would surface here
        errors.append(error)
    finally:
        connection.close()


def test_repair_runs_safely_while_students_earn_xp(committed_db, make_user):
    users = [make_user() for _ in range(24)]
    for user in users:
        update_level_atomic(user, "PLAYER", new_level=2)
    ids = [user.pk for user in users]
    # Every kind of desync, made behind the hook's back.
    SpecializationProgress.objects.filter(student_id__in=ids[0:8]).update(current_level=4)
    UserLicense.objects.filter(user_id__in=ids[8:12]).update(current_level=5, max_achieved_level=5)
    LicenseProgression.objects.filter(license__user_id__in=ids[12:16]).delete()
    UserLicense.objects.filter(user_id__in=ids[12:16]).delete()
    SpecializationProgress.objects.filter(student_id__in=ids[16:20]).delete()
    assert count_pairs().inconsistent == 20
    sent, errors, reports = Counter(), [], []
    barrier = threading.Barrier(THREADS + 1, timeout=JOIN_TIMEOUT)
    threads = [
        threading.Thread(
            target=earn,
            args=(users,),
            kwargs={"seed": seed, "sent": sent, "errors": errors, "barrier": barrier},
        )
        for seed in range(THREADS)
    ]
    threads.append(
        threading.Thread(
            target=repair_repeatedly,
            kwargs={"errors": errors, "barrier": barrier, "reports": reports},
        )
    )

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)

    assert not [thread for thread in threads if thread.is_alive()], "deadlock: threads hung"
    assert errors == []
    repair()  # whatever the students' updates left behind the last pass
    assert count_pairs().inconsistent == 0
    for user in users:
        progress = SpecializationProgress.objects.get(student=user)
        assert progress.total_xp == sent[user.pk]  # the restored rows started at 0 XP
        assert progress.current_level >= 2  # never lowered
