"""Reads shared by the health decision, the metrics, the admin and background repairs:
recorded runs, and the desync cases a list's filters select."""

from datetime import datetime, timedelta

from django.db.models import Q, QuerySet, Sum
from django.http import QueryDict
from django.utils.translation import gettext

from common.text import Text, gettext_noop
from common.users import search_users
from licenses import consistency
from specializations.catalogue import all_specializations

from .conf import app_settings
from .exceptions import BadCaseFilter
from .models import DesyncCase, HealthCheckRun, RunKind, RunState


def latest_run(*, specialization: str | None = None) -> HealthCheckRun | None:
    """The latest finished check over every specialization (a repair's check after it counts),
    or over exactly ``specialization``.

    A filtered run says nothing of the rest; a running, interrupted or failed run
    has no totals to go by.
    """
    return (
        HealthCheckRun.objects.filter(specialization=specialization or "", state=RunState.DONE)
        # The samples (up to SYNC_VIOLATION_SAMPLE_SIZE rows of JSON) are for the admin's
        # run page: every probe and scrape reads this, and needs the totals only.
        .defer("violations_sample", "skipped_sample", "ledger_sample")
        .order_by("-checked_at", "-id")
        .first()
    )


def total_repairs() -> int:
    return HealthCheckRun.objects.aggregate(total=Sum("repaired"))["total"] or 0


# --- Runs in progress (the lifecycle: see monitoring/runs.py) ---


def interrupted_after() -> int:
    """Seconds without a report after which a running run reads as interrupted."""
    return app_settings.SYNC_RUN_INTERRUPTED_AFTER_SECONDS


def interrupted_cutoff(*, now: datetime) -> datetime:
    return now - timedelta(seconds=interrupted_after())


def run_state(run: HealthCheckRun, *, now: datetime) -> str:
    """The state as readers should take it: a silent running run is interrupted."""
    if run.state == RunState.RUNNING and run.updated_at < interrupted_cutoff(now=now):
        return RunState.INTERRUPTED
    return run.state


def running_repairs(*, specialization: str | None = None) -> QuerySet[HealthCheckRun]:
    """Repairs marked running whose scope overlaps ``specialization`` (None: every one).

    Every specialization ("") overlaps everything; two different codes do not
    overlap. Dry runs write nothing and hold nothing. Includes runs that have
    stopped reporting: filter on ``updated_at`` against ``interrupted_cutoff``.
    """
    runs = HealthCheckRun.objects.filter(kind=RunKind.REPAIR, state=RunState.RUNNING, dry_run=False)
    if specialization:
        runs = runs.filter(Q(specialization="") | Q(specialization=specialization))
    return runs.select_related("triggered_by")


def repair_holder(*, specialization: str | None = None, now: datetime) -> HealthCheckRun | None:
    """The live repair that a new repair over ``specialization`` would be refused for."""
    live = running_repairs(specialization=specialization)
    return live.filter(updated_at__gte=interrupted_cutoff(now=now)).order_by("started_at").first()


RUN_DESCRIPTION = gettext_noop(
    "run %(run)s by %(who)s on %(host)s pid %(pid)s since %(since)s UTC, scope %(scope)s"
)
SYSTEM = gettext_noop("system")
EVERY_SPECIALIZATION = gettext_noop("all")


def describe_run(run: HealthCheckRun) -> Text:
    """Who, where, since when and over what: for refusals and the admin (in the reader's
    language, or check_sync's English)."""
    return Text(
        RUN_DESCRIPTION,
        run=run.pk,
        who=run.triggered_by.get_username() if run.triggered_by_id else Text(SYSTEM),
        host=run.host or "?",
        pid=run.pid or "?",
        since=f"{run.started_at:%Y-%m-%d %H:%M:%S}",
        scope=run.specialization or Text(EVERY_SPECIALIZATION),
    )


# --- The desync cases a selection names (the Desync cases list, a background repair) ---

# The list's filter parameters, by what they narrow (Django's filter links, and
# the plain field lookups staff type).
KIND_PARAMETERS = ("kind", "kind__exact")
SPECIALIZATION_PARAMETERS = (
    "specialization",
    "specialization__exact",
    "specialization_id",
    "specialization_id__exact",
    "specialization__code",
    "specialization__code__exact",
)
USER_PARAMETERS = (
    "user",
    "user__exact",
    "user_id",
    "user_id__exact",
    "user__id",
    "user__id__exact",
)
SEARCH_PARAMETER = "q"
# A page, an order, a key to start after (old links, the list's own paging) select nothing.
IGNORED = ("p", "o", "all", "e", "_facets", "_popup", "_to_field", "after")


def _choice(params: QueryDict, names, allowed, *, convert=str) -> set | None:
    """The values several parameters allow together (each is OR within, AND across)."""
    chosen = None
    for name in names:
        values = params.getlist(name)
        if values:
            given = {convert(value) for value in values}
            chosen = given if chosen is None else chosen & given
    if chosen is not None and allowed is not None and not chosen <= set(allowed):
        raise BadCaseFilter(
            gettext("Bad query parameter: unknown value in %(values)s.")
            % {"values": sorted(chosen)}
        )
    return chosen


def case_filters(params: QueryDict) -> dict:
    """kinds, specializations (None: all; empty when the filters exclude each other), user ids."""
    known = {
        *KIND_PARAMETERS,
        *SPECIALIZATION_PARAMETERS,
        *USER_PARAMETERS,
        SEARCH_PARAMETER,
        *IGNORED,
    }
    for name in params:
        if name not in known:
            raise BadCaseFilter(
                gettext(
                    "Bad query parameter %(name)r: not a filter of this list"
                    " (kind, specialization, user, q, after)."
                )
                % {"name": name[:40]}
            )
    kinds = _choice(params, KIND_PARAMETERS, consistency.VIOLATION_KINDS)
    specializations = _choice(params, SPECIALIZATION_PARAMETERS, all_specializations())
    users = _choice(params, USER_PARAMETERS, None, convert=int)  # ASCII digits: checked
    return {
        "kinds": [kind for kind in consistency.VIOLATION_KINDS if kinds is None or kind in kinds],
        "specializations": specializations,
        "user_ids": users,
    }


def desync_cases(query: str) -> QuerySet[DesyncCase]:
    """The live cases the Desync cases list shows for ``query`` (its filters and search).

    What "every matching case" means to the admin's confirmation and to the
    background job that repairs them, so the job repairs what staff counted.
    """
    params = QueryDict(query)
    filters = case_filters(params)
    cases = DesyncCase.objects.filter(kind__in=filters["kinds"])
    if filters["specializations"] is not None:
        cases = cases.filter(specialization_id__in=filters["specializations"])
    if filters["user_ids"] is not None:
        cases = cases.filter(user_id__in=filters["user_ids"])
    if search := params.get(SEARCH_PARAMETER, ""):
        cases = cases.filter(user_id__in=search_users(search))
    return cases
