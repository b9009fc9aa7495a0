"""Hostile input on every admin list and action: refused cleanly (400 or a message), never
a 500, and nothing written."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.urls import reverse

from licenses.models import LicenseProgression, UserLicense
from monitoring.models import DesyncCase, HealthCheckRun
from monitoring.services import run_health_check
from specializations.models import Specialization, SpecializationProgress
from tests import factories

PROGRESS = reverse("admin:specializations_specializationprogress_changelist")
LICENCES = reverse("admin:licenses_userlicense_changelist")
HISTORY = reverse("admin:licenses_licenseprogression_changelist")
DESYNCS = reverse("admin:monitoring_desynccase_changelist")
RUNS = reverse("admin:monitoring_healthcheckrun_changelist")
SPECIALIZATIONS = reverse("admin:specializations_specialization_changelist")
LONG = "x" * 1000
NUL = "\x00"


def arabic_indic(number: int) -> str:
    """The same number in Arabic-Indic digits: int() reads it, str.isdigit() says yes."""
    return "".join(chr(0x660 + int(digit)) for digit in str(number))


# (list, query parameters): each must be answered with a 400 naming the parameter.
HOSTILE_QUERIES = [
    (PROGRESS, {"level": "²"}),
    (PROGRESS, {"level": arabic_indic(3)}),
    (PROGRESS, {"level": "99"}),
    (PROGRESS, {"level": NUL}),
    (PROGRESS, {"sync": "bogus"}),
    (PROGRESS, {"sync": "missing_progress"}),  # a progress row's pair never is
    (PROGRESS, {"sync": NUL}),
    (PROGRESS, {"specialization__exact": NUL}),
    (PROGRESS, {"specialization__exact": "NOPE"}),
    (PROGRESS, {"specialization__code__exact": "NOPE"}),
    (PROGRESS, {"specialization__code__exact": "P" * 300}),
    (PROGRESS, {"student": "-5"}),
    (PROGRESS, {"student": arabic_indic(1)}),
    (PROGRESS, {"student": "0"}),
    (PROGRESS, {"student__id__exact": "99999999999999999999"}),
    (PROGRESS, {"q": NUL}),
    (PROGRESS, {"q": LONG}),
    (PROGRESS, {"p": "²"}),
    (PROGRESS, {"p": "-1"}),
    (PROGRESS, {"p": "99999999999999999999"}),
    (PROGRESS, {"o": "²"}),
    (PROGRESS, {"no_such_field": "1"}),
    (PROGRESS, {"student__password": "x"}),  # a lookup across a relation not offered
    (PROGRESS, {"sync": "missing_license", "after": "²:PLAYER"}),
    (PROGRESS, {"sync": "missing_license", "after": "-1:PLAYER"}),
    (PROGRESS, {"sync": "missing_license", "after": "5:NOPE"}),
    (PROGRESS, {"k" * 300: "1"}),
    (LICENCES, {"level": "²"}),
    (LICENCES, {"user_id": arabic_indic(1)}),
    (LICENCES, {"user": arabic_indic(1)}),
    (LICENCES, {"sync": "missing_license"}),  # a licence's pair never is
    (LICENCES, {"specialization__exact": NUL}),
    (LICENCES, {"is_active__exact": NUL}),
    (LICENCES, {"is_active__exact": "maybe"}),
    (LICENCES, {"q": NUL}),
    (LICENCES, {"q": LONG}),
    (HISTORY, {"actor": NUL}),
    (HISTORY, {"actor": "nobody"}),
    (HISTORY, {"license__specialization__code__exact": "NOPE"}),
    (HISTORY, {"created_at__gte": "yesterday"}),
    (HISTORY, {"q": NUL}),
    (HISTORY, {"license": "-1"}),
    (DESYNCS, {"kind": NUL}),
    (DESYNCS, {"kind": "bogus"}),
    (DESYNCS, {"kind": "ok"}),  # in sync is not a desync case
    (DESYNCS, {"kind__exact": "k" * 300}),
    (DESYNCS, {"specialization__exact": NUL}),
    (DESYNCS, {"specialization__exact": "NOPE"}),
    (DESYNCS, {"specialization__code__exact": "NOPE"}),
    (DESYNCS, {"user_id": "-1"}),
    (DESYNCS, {"user_id": arabic_indic(1)}),
    (DESYNCS, {"user": "²"}),
    (DESYNCS, {"progress_level": "3"}),  # not a filter of this list
    (DESYNCS, {"q": NUL}),
    (DESYNCS, {"q": LONG}),
    (DESYNCS, {"after": "²:PLAYER"}),
    (DESYNCS, {"after": "1:NOPE"}),
    (DESYNCS, {"after": "1"}),
    (DESYNCS, {"after": NUL}),
    (RUNS, {"kind__exact": "bogus"}),
    (RUNS, {"state__exact": NUL}),
    (RUNS, {"status__exact": "fine"}),
    (RUNS, {"checked_at__gte": "garbage"}),
    (RUNS, {"triggered_by": "-3"}),
    (RUNS, {"p": "-1"}),
    (SPECIALIZATIONS, {"is_active__exact": "²"}),
    (SPECIALIZATIONS, {"code": NUL}),
    (SPECIALIZATIONS, {"code": "NOPE"}),
    (SPECIALIZATIONS, {"max_level": "-1"}),
]


@pytest.fixture
def incident(db):
    """Pairs in and out of sync, their history and a recorded check: things to protect."""
    users = factories.make_pairs(4, level=2, history=True)
    factories.set_progress_level(users[0], "PLAYER", 3)
    LicenseProgression.objects.filter(license__user=users[1]).delete()
    factories.delete_row(UserLicense, users[1], "PLAYER")
    factories.delete_row(SpecializationProgress, users[2], "PLAYER")
    run_health_check()
    return users


def footprint() -> dict:
    models = (
        SpecializationProgress,
        UserLicense,
        LicenseProgression,
        LogEntry,
        HealthCheckRun,
        DesyncCase,
        Specialization,
        get_user_model(),
    )
    state = {model.__name__: model.objects.count() for model in models}
    state["levels"] = sorted(UserLicense.objects.values_list("pk", "current_level"))
    return state


def _label(case) -> str:
    url, query = case
    shown = "&".join(f"{name[:12]}={value[:12]!r}" for name, value in query.items())
    return f"{url.strip('/').split('/')[-1]}?{shown}"


@pytest.mark.django_db
@pytest.mark.parametrize("url, query", HOSTILE_QUERIES, ids=map(_label, HOSTILE_QUERIES))
def test_a_hostile_list_parameter_is_a_400_naming_it(staff_client, incident, url, query):
    before = footprint()
    response = staff_client.get(url, query)
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert body.startswith("Bad "), body
    assert footprint() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, query",
    [
        (PROGRESS, {"level": "3"}),
        (PROGRESS, {"sync": "missing_license"}),
        (PROGRESS, {"specialization__code__exact": "COACH", "q": "pair"}),
        (LICENCES, {"sync": "missing_progress", "is_active__exact": "1"}),
        (HISTORY, {"actor": "system"}),
        (DESYNCS, {"kind": "level_mismatch", "specialization__exact": "PLAYER"}),
        (DESYNCS, {"q": "Ünïcode search is fine"}),
        (DESYNCS, {"after": "1:PLAYER", "p": "2", "o": "1"}),  # old page links: ignored
        (RUNS, {"kind__exact": "check"}),
        (SPECIALIZATIONS, {"is_active__exact": "1"}),
    ],
)
def test_well_formed_parameters_still_list(staff_client, incident, url, query):
    assert staff_client.get(url, query).status_code == 200


def _bad_keys(pk: int) -> list[str]:
    return ["²", arabic_indic(pk), "-1", "0", NUL, f"{pk}{NUL}", "9" * 30, LONG]


def _bad_pair_keys(user_id: int) -> list[str]:
    return [
        "²:PLAYER",
        f"{arabic_indic(user_id)}:PLAYER",
        f"-{user_id}:PLAYER",
        f"{user_id}:NOPE",
        f"{user_id}:PLAYER{NUL}",
        f"{user_id}",
        f"{user_id}:" + "P" * 300,
    ]


def _post_action(client, url, action, key, **extra):
    return client.post(
        url, {"action": action, ACTION_CHECKBOX_NAME: [key], "index": "0", **extra}, follow=True
    )


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.mark.django_db
@pytest.mark.parametrize("confirmed", [False, True], ids=["asked", "confirmed"])
@pytest.mark.parametrize(
    "url, model", [(PROGRESS, "progress"), (LICENCES, "licence"), (RUNS, "run")]
)
def test_a_delete_with_a_malformed_key_deletes_nothing(
    staff_client, incident, url, model, confirmed
):
    target = {
        "progress": SpecializationProgress.objects.first,
        "licence": UserLicense.objects.first,
        "run": HealthCheckRun.objects.first,
    }[model]()
    extra = {"post": "yes"} if confirmed else {}
    for key in _bad_keys(target.pk):
        before = footprint()
        response = _post_action(staff_client, url, "delete_selected", key, **extra)
        assert response.status_code == 200
        assert any(m.startswith("Nothing was done:") for m in _messages(response)), key
        assert footprint() == before, key


@pytest.mark.django_db
@pytest.mark.parametrize("confirmed", [False, True], ids=["asked", "confirmed"])
def test_a_repair_with_a_malformed_key_repairs_nothing(staff_client, incident, confirmed):
    mismatch = incident[0]
    extra = {"post": "yes", "reason": "hostile"} if confirmed else {}
    for key in _bad_pair_keys(mismatch.pk):
        before = footprint()
        response = _post_action(staff_client, DESYNCS, "repair_selected", key, **extra)
        assert response.status_code == 200
        assert any(m.startswith("Nothing was done:") for m in _messages(response)), key
        assert footprint() == before, key
    # The well-formed key still repairs: the refusals were about the keys.
    key = f"{mismatch.pk}:PLAYER"
    _post_action(staff_client, DESYNCS, "repair_selected", key, post="yes", reason="ticket 7")
    assert UserLicense.objects.get(user=mismatch).current_level == 3


@pytest.mark.django_db
def test_a_repair_with_a_hostile_reason_is_refused_and_writes_nothing(staff_client, incident):
    key = f"{incident[0].pk}:PLAYER"
    for reason in (NUL, "line\x07bell", "x" * 256):
        before = footprint()
        response = _post_action(
            staff_client, DESYNCS, "repair_selected", key, post="yes", reason=reason
        )
        assert response.status_code == 200
        assert any("nothing was changed" in m for m in _messages(response)), reason
        assert footprint() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "viewname, model",
    [
        ("admin:licenses_userlicense_change", UserLicense),
        ("admin:specializations_specializationprogress_change", SpecializationProgress),
        ("admin:licenses_licenseprogression_change", LicenseProgression),
        ("admin:monitoring_healthcheckrun_change", HealthCheckRun),
    ],
)
def test_an_object_id_in_other_digits_names_no_object(staff_client, incident, viewname, model):
    obj = model.objects.order_by("pk").first()
    assert staff_client.get(reverse(viewname, args=[obj.pk])).status_code == 200
    for object_id in (arabic_indic(obj.pk), "²", f"{obj.pk}{NUL}", "-1"):
        response = staff_client.get(reverse(viewname, args=[object_id]), follow=True)
        assert response.status_code == 200  # the admin's "does not exist" redirect
        assert any("doesn’t exist" in m for m in _messages(response)), object_id
