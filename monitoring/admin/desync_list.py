"""The Desync cases list's pages: read from the one desync query, by key range.

A page is the first ``size`` violations after a key (``?after=``), found by the
one desync query (``consistency.violations_sql``) over ranges of user ids: each
range reads both indexes over that range only, and ranges widen until the page
is full, so a page costs about the pairs up to its last row, whatever the kinds
and wherever they sit. The filters (kind, specialization, user) and the search
(the users whose USERNAME_FIELD or email match) narrow that query; a search that
matches few users reads only their pairs. The row links look up the shown rows'
ids by key. Nothing counts the cases: the latest recorded check does.
"""

from django.contrib.auth import get_user_model
from django.db import connections
from django.utils.translation import gettext

from common.admin_lists import ListParameterError, change_url_pattern
from common.users import search_users
from licenses import consistency
from licenses.models import UserLicense
from licenses.planner import page_scope
from specializations.models import SpecializationProgress

from .. import selectors
from ..exceptions import BadCaseFilter
from ..models import DesyncCase

SEARCH_USERS = 1_000  # a search matching more users reads the ranges and filters by user
FIRST_WIDTH = 20_000  # user ids per range when no recorded check says how dense cases are


def page_filters(request) -> dict:
    """The list's filters (``selectors.case_filters``); a bad one is the list's 400."""
    try:
        return selectors.case_filters(request.GET)
    except BadCaseFilter as exc:
        raise ListParameterError(str(exc)) from exc


def _fetch(using: str, sql: str, params: list) -> list:
    with page_scope(using), connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return [consistency.PairState(*row) for row in cursor.fetchall()]


def violation_page(*, filters: dict, query: str, after, size: int, expected=None):
    """Up to ``size`` violations after ``after``, in key order, as the filters and search say.

    ``expected``: how many cases the recorded check counted, to size the first range.
    """
    using = "default"
    specializations, user_ids = filters["specializations"], filters["user_ids"]
    if specializations is not None and len(specializations) != 1:
        return []  # no specialization, or two exact ones at once: nothing matches
    narrow = {
        "kinds": filters["kinds"],
        "specialization": next(iter(specializations)) if specializations else None,
    }
    keep = None
    if query:
        matching = search_users(query)
        found = list(matching[: SEARCH_USERS + 1])
        if len(found) <= SEARCH_USERS:
            user_ids = set(found) if user_ids is None else user_ids & set(found)
        else:
            keep = matching  # broad: read the ranges, keep the rows of matching users
    if user_ids is not None:
        if not user_ids:
            return []
        sql, params = consistency.violations_sql(
            **narrow, user_ids=sorted(user_ids), after=after, limit=size, using=using
        )
        return _fetch(using, sql, params)
    bounds = consistency.user_bounds(using=using)
    if bounds is None:
        return []
    low, high = bounds
    first = max(low, after[0]) if after else low
    # A range that should hold the page at the recorded density, with room to spare.
    width = int(size * 1.5 * (high - low + 1) / expected) + 1 if expected else FIRST_WIDTH
    found = []
    while first <= high and len(found) < size:
        sql, params = consistency.violations_sql(
            **narrow,
            users=(first, first + width),
            after=after if after and after[0] >= first else None,
            limit=size - len(found),
            using=using,
        )
        rows = _fetch(using, sql, params)
        if keep is not None and rows:
            wanted = set(keep.filter(id__in={row.user_id for row in rows}))
            rows = [row for row in rows if row.user_id in wanted]
        found += rows
        first += width
        # Widen towards the width that would have filled the page, eight times at most.
        missing = size - len(found)
        grown = width * missing * 3 // (2 * len(rows)) if rows else width * 8
        width = min(width * 8, max(width, grown))
    return found


def cases(violations) -> list[DesyncCase]:
    """The page's rows as DesyncCase objects, with their user and both rows' ids (by key)."""
    user_ids = {v.user_id for v in violations}
    users = get_user_model().objects.in_bulk(user_ids)
    progress = {
        (user, specialization): pk
        for user, specialization, pk in SpecializationProgress.objects.filter(
            student_id__in=user_ids
        ).values_list("student_id", "specialization_id", "pk")
    }
    licences = {
        (user, specialization): pk
        for user, specialization, pk in UserLicense.objects.filter(
            user_id__in=user_ids
        ).values_list("user_id", "specialization_id", "pk")
    }
    user_url = change_url_pattern(get_user_model())
    progress_url = change_url_pattern(SpecializationProgress)
    license_url = change_url_pattern(UserLicense)
    rows = []
    for v in violations:
        key = (v.user_id, v.specialization_id)
        case = DesyncCase(
            id=f"{v.user_id}:{v.specialization_id}",
            user_id=v.user_id,
            specialization_id=v.specialization_id,
            progress_level=v.progress_level,
            license_level=v.license_level,
            kind=v.kind,
        )
        case.user = users[v.user_id]
        case.progress_pk, case.license_pk = progress.get(key), licences.get(key)
        case.user_url = user_url(v.user_id)
        case.progress_url = progress_url(case.progress_pk)
        case.license_url = license_url(case.license_pk)
        rows.append(case)
    return rows


def recorded_count(filters: dict, *, searched: bool):
    """(count, False, where from) from the latest recorded check, when one covers the filters."""
    specializations = filters["specializations"]
    if searched or filters["user_ids"] is not None:
        return None
    if specializations is not None and len(specializations) != 1:
        return None
    scope = next(iter(specializations)) if specializations else None
    run = selectors.latest_run(specialization=scope)
    if run is None:
        return None
    count = sum(run.by_kind[kind] for kind in filters["kinds"])
    where = gettext("at the last check (%(when)s UTC, run %(run)s)") % {
        "when": f"{run.checked_at:%Y-%m-%d %H:%M}",
        "run": run.pk,
    }
    return count, False, where
