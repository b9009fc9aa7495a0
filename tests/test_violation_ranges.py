"""The violation stream walks user ids in ranges: no user at a range's edge is lost."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from licenses.models import UserLicense
from monitoring.services import iter_violations
from specializations.models import SpecializationProgress

pytestmark = pytest.mark.django_db

# (user id, progress level, licence level): None is a missing row. With chunk_size=2
# the empty ranges widen 0-2, 2-6, 6-14, 14-30, 30-50 up to ten chunks of users (20
# ids); then each range holds two violations and keeps its width: 50-70, 70-90, 90-110.
PAIRS = [
    (50, 3, 2),  # the first user of the walk and of its range
    (60, 2, 2),
    (69, 2, None),  # the last user of a range
    (70, 1, 4),  # the first of the next
    (80, 1, 1),
    (89, 5, 1),
    (90, None, 3),  # the last user of the walk, alone at the start of the last range
]
KINDS = {(3, 2): "level_mismatch", (1, 4): "level_mismatch", (5, 1): "level_mismatch"}


def kind(progress, licence) -> str:
    if progress is None:
        return "missing_progress"
    return "missing_license" if licence is None else KINDS[(progress, licence)]


def write_pairs() -> None:
    get_user_model().objects.bulk_create(
        get_user_model()(id=user, username=f"ranged-{user}") for user, _, _ in PAIRS
    )
    SpecializationProgress.objects.bulk_create(
        SpecializationProgress(student_id=user, specialization_id="PLAYER", current_level=level)
        for user, level, _ in PAIRS
        if level is not None
    )
    UserLicense.objects.bulk_create(
        UserLicense(
            user_id=user, specialization_id="PLAYER", current_level=level, max_achieved_level=level
        )
        for user, _, level in PAIRS
        if level is not None
    )


def test_the_first_and_last_user_of_every_range_and_of_the_walk_are_streamed():
    write_pairs()
    ranges = []

    def note_range(execute, sql, params, many, context):
        if params and all(isinstance(p, int) for p in params):  # (first, end) per side
            ranges.append(tuple(params[:2]))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(note_range):
        streamed = [(v.user_id, v.kind) for v in iter_violations(chunk_size=2)]

    assert streamed == [
        (user, kind(progress, licence)) for user, progress, licence in PAIRS if progress != licence
    ]
    # The layout's premise: the violations sat on the edges of the ranges walked.
    assert ranges[-3:] == [(50, 70), (70, 90), (90, 110)], ranges
