"""The staff admin: desync cases with repair, licence level edits, check-run history."""

import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import OperationalError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from licenses import consistency
from licenses.admin import REASON_REQUIRED
from licenses.guard import unguarded
from licenses.models import LicenseProgression, UserLicense
from monitoring import repair, services
from monitoring.admin import desync_cases
from monitoring.models import DesyncCase, HealthCheckRun
from specializations.models import Specialization, SpecializationProgress
from tests import factories
from tests.factories import delete_row

DESYNCS = reverse("admin:monitoring_desynccase_changelist")
RUNS = reverse("admin:monitoring_healthcheckrun_changelist")
RUN_CHECK = reverse("admin:monitoring_healthcheckrun_run_check")
LISTS = [
    DESYNCS,
    RUNS,
    reverse("admin:specializations_specializationprogress_changelist"),
    reverse("admin:specializations_specializationprogress_changelist") + "?sync=level_mismatch",
    reverse("admin:specializations_specializationprogress_changelist") + "?sync=ok",
    reverse("admin:licenses_userlicense_changelist") + "?sync=missing_progress",
    reverse("admin:licenses_userlicense_changelist"),
    reverse("admin:licenses_licenseprogression_changelist"),
    reverse("admin:specializations_specialization_changelist"),
]


def make_pairs(n, *, specialization="PLAYER", level=2):
    """``n`` students with a pair at ``level`` and its issuance in the licence history."""
    return factories.make_pairs(n, specialization=specialization, level=level, history=True)


def inject(users, *, specialization="PLAYER"):
    """One desync of each kind on the first three users, the ways production gets them."""
    mismatch, no_licence, no_progress = users[:3]
    SpecializationProgress.objects.filter(
        student=mismatch, specialization_id=specialization
    ).update(current_level=4)
    LicenseProgression.objects.filter(license__user=no_licence).delete()
    UserLicense.objects.filter(user=no_licence, specialization_id=specialization).delete()
    SpecializationProgress.objects.filter(
        student=no_progress, specialization_id=specialization
    ).delete()
    return mismatch, no_licence, no_progress


def change_form(client, url, **changes):
    """The change form's current values (inline management forms included), then ``changes``."""
    context = client.get(url).context
    forms = [context["adminform"].form]
    for inline in context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data = {}
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue
            data[form.add_prefix(name)] = "on" if value is True else value
    return {**data, **changes}


def key(user, specialization="PLAYER"):
    return f"{user.pk}:{specialization}"


def staff_with(*perms, username="limited"):
    user = get_user_model().objects.create_user(username=username, is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client = Client()
    client.force_login(user)
    return client


def _expected_rows(users) -> dict[str, set]:
    """What each list shows after ``inject`` on five users (by object, in the list's terms)."""
    mismatch, no_licence, no_progress, *in_sync = users
    progress = {u.pk for u in users} - {no_progress.pk}
    licences = {u.pk for u in users} - {no_licence.pk}
    return {
        LISTS[0]: {key(mismatch), key(no_licence), key(no_progress)},
        LISTS[1]: {"run"},
        LISTS[2]: progress,
        LISTS[3]: {mismatch.pk},
        LISTS[4]: {u.pk for u in in_sync},
        LISTS[5]: {no_progress.pk},
        LISTS[6]: licences,
        LISTS[7]: licences,  # one issuance row per surviving licence
        LISTS[8]: {"COACH", "INTERNSHIP", "PLAYER"},
    }


def _shown(obj) -> object:
    """The object a list row stands for, in the terms of ``_expected_rows``."""
    if isinstance(obj, DesyncCase):
        return obj.pk
    if isinstance(obj, HealthCheckRun):
        return "run"
    if isinstance(obj, SpecializationProgress):
        return obj.student_id
    if isinstance(obj, UserLicense):
        return obj.user_id
    if isinstance(obj, LicenseProgression):
        return obj.license.user_id
    return obj.pk


@pytest.mark.django_db
@pytest.mark.parametrize("url", LISTS)
def test_each_list_shows_exactly_its_rows_to_staff(staff_client, url):
    users = make_pairs(5)
    inject(users)
    services.run_health_check()
    response = staff_client.get(url)
    assert response.status_code == 200
    shown = [_shown(obj) for obj in response.context["cl"].result_list]
    assert len(shown) == len(set(shown))
    assert set(shown) == _expected_rows(users)[url]
    if url == DESYNCS:  # each case once, with its kind's label
        page = response.content.decode()
        for label in ("level mismatch", "missing licence", "missing progress"):
            assert page.count(f">{label}</strong>") == 1, label


@pytest.mark.django_db
def test_detail_pages_render_for_staff(staff_client):
    users = make_pairs(4)
    inject(users)
    run = services.run_health_check().run
    licence = UserLicense.objects.get(user=users[3])
    progress = SpecializationProgress.objects.get(student=users[3])
    coach = Specialization.objects.get(code="COACH")
    for url, obj in [
        (reverse("admin:monitoring_healthcheckrun_change", args=[run.pk]), run),
        (reverse("admin:licenses_userlicense_change", args=[licence.pk]), licence),
        (
            reverse("admin:specializations_specializationprogress_change", args=[progress.pk]),
            progress,
        ),
        (reverse("admin:specializations_specialization_change", args=["COACH"]), coach),
    ]:
        response = staff_client.get(url)
        assert (response.status_code, response.context["original"]) == (200, obj), url
    # The run's page lists its violation sample: the three injected cases.
    page = staff_client.get(
        reverse("admin:monitoring_healthcheckrun_change", args=[run.pk])
    ).content.decode()
    kinds = ["level_mismatch", "missing_license", "missing_progress"]
    for user, kind in zip(users[:3], kinds, strict=True):
        row = rf'<tr><td><a href="[^"]*/{user.pk}/change/">{user.pk}</a></td><td>PLAYER</td>'
        assert re.search(rf"{row}(?:<td>[^<]*</td>){{2}}<td>{kind}</td></tr>", page), kind


@pytest.mark.django_db
@pytest.mark.parametrize("url", [*LISTS, RUN_CHECK])
def test_pages_are_refused_to_non_staff(make_user, url):
    client = Client()
    client.force_login(make_user(is_staff=False))
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert Client().get(url).status_code == 302


@pytest.mark.django_db
def test_desync_page_lists_each_live_case_with_links_to_both_rows(staff_client):
    mismatch, no_licence, no_progress = inject(make_pairs(5))
    html = staff_client.get(DESYNCS).content.decode()
    for user in (mismatch, no_licence, no_progress):
        assert reverse("admin:auth_user_change", args=[user.pk]) in html
    progress = SpecializationProgress.objects.get(student=mismatch)
    licence = UserLicense.objects.get(user=mismatch)
    assert (
        reverse("admin:specializations_specializationprogress_change", args=[progress.pk]) in html
    )
    assert reverse("admin:licenses_userlicense_change", args=[licence.pk]) in html
    for label in ("level mismatch", "missing licence", "missing progress"):
        assert label in html
    assert html.count('name="_selected_action"') == 3


@pytest.mark.django_db
def test_desync_page_is_the_one_definition(staff_client):
    inject(make_pairs(6))
    inject(make_pairs(4, specialization="COACH"), specialization="COACH")
    listed = {(c.user_id, c.specialization_id, c.kind) for c in DesyncCase.objects.all()}
    expected = {(v.user_id, v.specialization_id, v.kind) for v in consistency.violations()}
    assert listed == expected
    assert len(listed) == 6


@pytest.mark.django_db
def test_desync_page_filters_by_kind_specialization_and_user(staff_client):
    mismatch, no_licence, _ = inject(make_pairs(5))
    inject(make_pairs(5, specialization="COACH"), specialization="COACH")

    def listed(query):
        response = staff_client.get(DESYNCS + query)
        return [case.pk for case in response.context["cl"].result_list]

    assert listed("?kind=level_mismatch&specialization__code__exact=PLAYER") == [key(mismatch)]
    assert len(listed("?specialization__code__exact=COACH")) == 3
    assert listed(f"?q={no_licence.username}") == [key(no_licence)]


@pytest.mark.django_db
def test_repair_asks_for_confirmation_first(staff_client):
    mismatch, *_ = inject(make_pairs(5))
    response = staff_client.post(
        DESYNCS, {"action": "repair_selected", ACTION_CHECKBOX_NAME: [key(mismatch)]}
    )
    assert response.status_code == 200
    assert b"Yes, repair" in response.content
    assert mismatch.username.encode() in response.content
    assert len(consistency.violations()) == 3


@pytest.mark.django_db
def test_repair_fixes_the_selected_cases_with_audit_rows(staff_client, staff):
    mismatch, no_licence, no_progress = inject(make_pairs(5))
    response = staff_client.post(
        DESYNCS,
        {
            "action": "repair_selected",
            ACTION_CHECKBOX_NAME: [key(mismatch), key(no_licence)],
            "post": "yes",
            "reason": "ticket 42",
        },
        follow=True,
    )
    assert response.status_code == 200
    message = str(next(iter(response.context["messages"])))
    assert "Repaired 2 desync case(s) (level_mismatch 1, missing_license 1)" in message
    remaining = consistency.violations()
    assert [(v.user_id, v.kind) for v in remaining] == [(no_progress.pk, "missing_progress")]
    assert UserLicense.objects.get(user=mismatch).current_level == 4
    assert UserLicense.objects.get(user=no_licence).current_level == 2
    audit = LicenseProgression.objects.filter(license__user__in=[mismatch, no_licence])
    assert {(row.advanced_by_id, row.reason) for row in audit.exclude(reason="seeded")} == {
        (staff.pk, "ticket 42")
    }
    assert audit.exclude(reason="seeded").count() == 2
    logged = LogEntry.objects.filter(user=staff)
    assert {entry.object_id for entry in logged} == {
        str(UserLicense.objects.get(user=u).pk) for u in (mismatch, no_licence)
    }
    run = HealthCheckRun.objects.latest()
    assert (run.repaired, run.inconsistent, run.triggered_by_id) == (2, 1, staff.pk)


@pytest.mark.django_db
def test_repair_of_all_matching_cases_across_pages(staff_client, monkeypatch):
    monkeypatch.setattr(desync_cases.DesyncCaseAdmin, "list_per_page", 2)
    users = make_pairs(12)
    inject(users)  # one of each kind on the first three
    for user in users[3:9]:  # six more without progress: seven in all, over four pages
        delete_row(SpecializationProgress, user, "PLAYER")
    page = staff_client.get(DESYNCS + "?kind=missing_progress")
    assert len(page.context["cl"].result_list) == 2  # the page shows two of the seven
    assert page.context["cl"].result_count == 7
    staff_client.post(
        DESYNCS + "?kind=missing_progress",
        {
            "action": "repair_selected",
            ACTION_CHECKBOX_NAME: [key(users[2])],  # only one ticked on the page
            "select_across": "1",
            "post": "yes",
        },
    )
    assert sorted(v.kind for v in consistency.violations()) == ["level_mismatch", "missing_license"]
    assert SpecializationProgress.objects.filter(student__in=users[2:9]).count() == 7


def _repair_all(client, query="", **extra):
    return client.post(
        DESYNCS + query,
        {
            "action": "repair_selected",
            ACTION_CHECKBOX_NAME: ["x"],
            "select_across": "1",
            "post": "yes",
            **extra,
        },
        follow=True,
    )


def _log_inserts(queries) -> int:
    return sum(q["sql"].startswith('INSERT INTO "django_admin_log"') for q in queries)


@pytest.mark.django_db
def test_repair_of_more_cases_than_the_actions_sample_logs_every_repaired_pair(staff_client, staff):
    users = make_pairs(1005)
    SpecializationProgress.objects.filter(student__in=users).update(current_level=3)
    confirmation = staff_client.post(
        DESYNCS, {"action": "repair_selected", ACTION_CHECKBOX_NAME: ["x"], "select_across": "1"}
    )
    assert b"Repair 1005 desync cases?" in confirmation.content
    assert "and 905 more" in confirmation.content.decode()

    with CaptureQueriesContext(connection) as queries:
        response = _repair_all(staff_client)
    # Every matching case is a background job (here the immediate backend), then its run page.
    assert response.context["progress"].message.startswith("Done: repaired 1,005, 0 already")
    assert repair.ACTIONS_SAMPLE < 1005
    logged = LogEntry.objects.filter(user=staff)
    assert logged.count() == 1005
    assert set(logged.values_list("object_id", flat=True)) == {
        str(pk) for pk in UserLicense.objects.values_list("pk", flat=True)
    }
    # One bulk insert of log entries per repair batch (of 500), not one per pair.
    assert _log_inserts(queries) == 3


@pytest.mark.django_db
def test_repair_log_entries_do_not_depend_on_the_actions_sample(staff_client, staff, monkeypatch):
    monkeypatch.setattr(repair, "ACTIONS_SAMPLE", 5)
    monkeypatch.setattr(desync_cases, "REPAIR_BATCH_SIZE", 7)
    monkeypatch.setattr(desync_cases, "STREAM_CHUNK_SIZE", 4)  # streamed across the batches
    player = make_pairs(30)
    SpecializationProgress.objects.filter(student__in=player[:20]).update(current_level=5)
    UserLicense.objects.filter(user__in=player[20:]).update(current_level=4, max_achieved_level=4)
    inject(make_pairs(5, specialization="COACH"), specialization="COACH")

    with CaptureQueriesContext(connection) as queries:
        response = _repair_all(staff_client, "?specialization__code__exact=PLAYER")
    assert response.context["progress"].message.startswith("Done: repaired 30, 0 already")
    assert LogEntry.objects.filter(user=staff).count() == 30
    assert _log_inserts(queries) == 5  # ceil(30 / 7) batches
    assert {v.specialization_id for v in consistency.violations()} == {"COACH"}
    assert HealthCheckRun.objects.latest().repaired == 30


def test_repair_of_all_streams_the_keys_across_committed_batches(committed_db, monkeypatch):
    # Committed for real: the key stream (a server-side cursor on PostgreSQL) is read
    # between batches that each commit, as in production.
    monkeypatch.setattr(desync_cases, "REPAIR_BATCH_SIZE", 6)
    monkeypatch.setattr(desync_cases, "STREAM_CHUNK_SIZE", 4)
    staff = get_user_model().objects.create_user(
        username="committed-staff", is_staff=True, is_superuser=True
    )
    client = Client()
    client.force_login(staff)
    users = make_pairs(40)
    with unguarded():  # a bad import, committed
        SpecializationProgress.objects.filter(student__in=users[:25]).update(current_level=3)
        UserLicense.objects.filter(user__in=users[25:]).update(
            current_level=5, max_achieved_level=5
        )

    response = _repair_all(client)
    assert response.context["progress"].message.startswith("Done: repaired 40, 0 already")
    assert consistency.count_pairs().inconsistent == 0
    assert LogEntry.objects.filter(user=staff).count() == 40


def test_a_database_error_mid_repair_keeps_the_committed_batches_and_says_so(
    committed_db, monkeypatch
):
    monkeypatch.setattr(desync_cases, "REPAIR_BATCH_SIZE", 6)
    staff = get_user_model().objects.create_user(
        username="interrupted-staff", is_staff=True, is_superuser=True
    )
    client = Client()
    client.force_login(staff)
    users = make_pairs(15)
    with unguarded():
        SpecializationProgress.objects.filter(student__in=users).update(current_level=3)
    real_batch, calls = repair._repair_batch, []

    def second_batch_fails(keys, **kwargs):
        calls.append(keys)
        if len(calls) == 2:
            raise OperationalError("deadlock detected")
        return real_batch(keys, **kwargs)

    monkeypatch.setattr(repair, "_repair_batch", second_batch_fails)
    response = _repair_all(client)
    assert response.context["progress"].message == (
        "Interrupted: deadlock detected. 6 repaired before it stopped are kept."
    )
    assert LogEntry.objects.filter(user=staff).count() == 6
    assert consistency.count_pairs().inconsistent == 9


@pytest.mark.django_db
def test_repair_with_an_over_long_reason_shows_an_error_and_writes_nothing(staff_client):
    mismatch, no_licence, _ = inject(make_pairs(5))
    history = LicenseProgression.objects.count()
    response = staff_client.post(
        DESYNCS,
        {
            "action": "repair_selected",
            ACTION_CHECKBOX_NAME: [key(mismatch), key(no_licence)],
            "post": "yes",
            "reason": "x" * 256,
        },
        follow=True,
    )
    (message,) = response.context["messages"]
    assert message.level_tag == "error"
    assert "nothing was changed" in str(message) and "reason=" in str(message)
    assert len(consistency.violations()) == 3
    assert LicenseProgression.objects.count() == history
    assert not LogEntry.objects.exists()
    assert not HealthCheckRun.objects.exists()


@pytest.mark.django_db
def test_desync_page_needs_the_view_permission():
    client = staff_with()
    assert client.get(DESYNCS).status_code == 403


@pytest.mark.django_db
def test_repair_needs_change_permission_on_licences():
    mismatch, *_ = inject(make_pairs(5))
    viewer = staff_with("monitoring.view_desynccase")
    page = viewer.get(DESYNCS)
    assert page.status_code == 200
    assert b"repair_selected" not in page.content
    viewer.post(
        DESYNCS, {"action": "repair_selected", ACTION_CHECKBOX_NAME: [key(mismatch)], "post": "yes"}
    )
    assert len(consistency.violations()) == 3

    repairer = staff_with(
        "monitoring.view_desynccase", "licenses.change_userlicense", username="repairer"
    )
    assert b"repair_selected" in repairer.get(DESYNCS).content
    repairer.post(
        DESYNCS, {"action": "repair_selected", ACTION_CHECKBOX_NAME: [key(mismatch)], "post": "yes"}
    )
    assert len(consistency.violations()) == 2


@pytest.mark.django_db
def test_admin_level_edit_moves_both_rows_with_history(staff_client, staff):
    (user,) = make_pairs(1, specialization="COACH", level=2)
    licence = UserLicense.objects.get(user=user)
    url = reverse("admin:licenses_userlicense_change", args=[licence.pk])
    response = staff_client.post(
        url, change_form(staff_client, url, current_level=5, reason="transfer from partner academy")
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    licence.refresh_from_db()
    assert (licence.current_level, licence.max_achieved_level) == (5, 5)
    assert SpecializationProgress.objects.get(student=user).current_level == 5
    entry = licence.progressions.first()
    assert (entry.from_level, entry.to_level, entry.advanced_by, entry.reason) == (
        2,
        5,
        staff,
        "transfer from partner academy",
    )


@pytest.mark.django_db
def test_admin_edit_of_level_and_is_active_together_locks_progress_first(staff_client, staff):
    (user,) = make_pairs(1, level=2)
    licence = UserLicense.objects.get(user=user)
    url = reverse("admin:licenses_userlicense_change", args=[licence.pk])
    data = change_form(staff_client, url, current_level=4, reason="suspended after promotion")
    del data["is_active"]  # an unchecked box is not posted
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    licence.refresh_from_db()
    assert (licence.current_level, licence.is_active) == (4, False)
    assert SpecializationProgress.objects.get(student=user).current_level == 4
    assert licence.progressions.first().reason == "suspended after promotion"

    sql = [q["sql"] for q in queries]

    def first(prefix, table):
        return next(i for i, q in enumerate(sql) if q.startswith(prefix) and table in q)

    # Same lock order as every other writer: progress, then the licence.
    progress_table = SpecializationProgress._meta.db_table
    licence_table = UserLicense._meta.db_table
    assert first("UPDATE", progress_table) < first("UPDATE", licence_table)
    if connection.vendor == "postgresql":
        locks = [q for q in sql if q.rstrip().endswith("FOR UPDATE")]
        assert progress_table in locks[0].split(" WHERE ")[0]


@pytest.mark.django_db
def test_progress_add_checks_the_level_range(staff_client, student):
    url = reverse("admin:specializations_specializationprogress_add")
    form = {
        "student": student.pk,
        "specialization": "INTERNSHIP",
        "total_xp": 0,
        "completed_sessions": 0,
        "completed_projects": 0,
        "theory_hours_completed": 0,
        "practice_hours_completed": 0,
    }
    response = staff_client.post(url, {**form, "current_level": 9})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["current_level"] == [
        "Choose a level from 1 to 3."
    ]
    assert not SpecializationProgress.objects.exists() and not UserLicense.objects.exists()

    assert staff_client.post(url, {**form, "current_level": 2}).status_code == 302
    assert SpecializationProgress.objects.get(student=student).current_level == 2
    assert UserLicense.objects.get(user=student).current_level == 2


@pytest.mark.django_db
def test_progress_level_edit_in_the_admin_moves_the_licence_too(staff_client, staff):
    (user,) = make_pairs(1, level=3)
    progress = SpecializationProgress.objects.get(student=user)
    url = reverse("admin:specializations_specializationprogress_change", args=[progress.pk])
    data = change_form(staff_client, url, current_level=1, reason="level set back after audit")
    assert staff_client.post(url, data).status_code == 302
    licence = UserLicense.objects.get(user=user)
    assert (licence.current_level, licence.max_achieved_level) == (1, 3)
    assert licence.progressions.first().advanced_by == staff


@pytest.mark.django_db
def test_level_edit_needs_a_reason_and_a_level_in_range(staff_client):
    (user,) = make_pairs(1, specialization="INTERNSHIP", level=1)
    licence = UserLicense.objects.get(user=user)
    url = reverse("admin:licenses_userlicense_change", args=[licence.pk])
    response = staff_client.post(url, change_form(staff_client, url, current_level=2, reason=" "))
    assert REASON_REQUIRED in response.context["adminform"].form.errors["reason"]
    response = staff_client.post(url, change_form(staff_client, url, current_level=9, reason="x"))
    assert "current_level" in response.context["adminform"].form.errors
    assert SpecializationProgress.objects.get(student=user).current_level == 1
    assert UserLicense.objects.get(user=user).current_level == 1


@pytest.mark.django_db
def test_licence_history_is_read_only(staff_client):
    make_pairs(1)
    entry = LicenseProgression.objects.get()
    url = reverse("admin:licenses_licenseprogression_change", args=[entry.pk])
    response = staff_client.get(url)
    assert response.status_code == 200
    assert b'name="reason"' not in response.content
    assert staff_client.post(url, {"reason": "rewritten"}).status_code == 403
    assert staff_client.get(reverse("admin:licenses_licenseprogression_add")).status_code == 403


@pytest.mark.django_db
def test_sync_state_column_and_filter_use_the_one_definition(staff_client):
    mismatch, no_licence, _ = inject(make_pairs(5))
    url = reverse("admin:specializations_specializationprogress_changelist")
    states = {
        row.student_id: row.sync_state for row in staff_client.get(url).context["cl"].result_list
    }
    assert states[mismatch.pk] == "level_mismatch"
    assert states[no_licence.pk] == "missing_license"
    assert list(states.values()).count("ok") == 2
    filtered = staff_client.get(url + "?sync=missing_license").context["cl"].result_list
    assert [row.student_id for row in filtered] == [no_licence.pk]
    assert len(staff_client.get(url + "?sync=ok").context["cl"].result_list) == 2


def _walk(client, url, *, pages_at_most=50) -> list:
    """Every row of a key-paged list, following its "next" links."""
    path, rows, seen = url.split("?")[0], [], 0
    while url is not None and seen < pages_at_most:
        response = client.get(url)
        assert response.status_code == 200
        cl = response.context["cl"]
        rows += list(cl.result_list)
        url = path + cl.next_url if cl.more else None
        seen += 1
    return rows


@pytest.mark.django_db
def test_desync_pages_by_key_list_every_case_once_in_key_order(staff_client, monkeypatch):
    monkeypatch.setattr(desync_cases.DesyncCaseAdmin, "list_per_page", 4)
    for specialization in ("PLAYER", "COACH", "INTERNSHIP"):
        users = make_pairs(6, specialization=specialization)
        inject(users, specialization=specialization)
        inject(users[3:], specialization=specialization)
    expected = [(v.user_id, v.specialization_id, v.kind) for v in consistency.violations()]
    assert len(expected) == 18
    shown = [(c.user_id, c.specialization_id, c.kind) for c in _walk(staff_client, DESYNCS)]
    assert shown == expected  # (user, specialization) order, no case twice, none skipped
    coach = _walk(staff_client, DESYNCS + "?specialization__exact=COACH&kind=missing_license")
    assert [(c.user_id, c.kind) for c in coach] == [
        (u, k) for u, s, k in expected if s == "COACH" and k == "missing_license"
    ]
    page = staff_client.get(DESYNCS).context["cl"]
    assert (page.result_count, page.count_exact, page.more) == (18, True, True)
    assert "after=" in page.next_url and "after" not in page.get_query_string()


@pytest.mark.django_db
@pytest.mark.parametrize("per_page", [1, 2, 4])
def test_a_users_cases_in_several_specializations_survive_a_page_boundary(
    staff_client, monkeypatch, per_page
):
    # The key after which a page starts is (user, specialization): a page that ends
    # inside a user's cases must continue with that user's next specialization.
    monkeypatch.setattr(desync_cases.DesyncCaseAdmin, "list_per_page", per_page)
    users = make_pairs(3)  # PLAYER at level 2
    for specialization in ("COACH", "INTERNSHIP"):
        for user in users:  # enrolled through the hook: progress and licence at level 1
            factories.progress.make(student=user, specialization_id=specialization)
    for user in users:
        for specialization in ("COACH", "INTERNSHIP", "PLAYER"):
            factories.set_license_level(user, specialization, 3)  # licence ahead everywhere
    expected = [(u.pk, s) for u in users for s in ("COACH", "INTERNSHIP", "PLAYER")]
    shown = [(c.user_id, c.specialization_id) for c in _walk(staff_client, DESYNCS)]
    assert shown == expected


@pytest.mark.django_db
def test_desync_list_beyond_small_tables_takes_its_count_from_the_latest_check(
    staff_client, monkeypatch
):
    monkeypatch.setattr(desync_cases.DesyncCaseAdmin, "list_per_page", 1)
    monkeypatch.setattr(desync_cases, "small_tables", lambda *models: False)
    users = make_pairs(6)
    inject(users)
    inject(users[3:])
    page = staff_client.get(DESYNCS)
    cl = page.context["cl"]
    assert (cl.count_exact, cl.count_source, cl.more) == (False, "", True)
    assert "not counted" in page.content.decode()
    run = services.run_health_check().run
    for query, count in [("", 6), ("?kind=missing_progress", 2)]:
        page = staff_client.get(DESYNCS + query)
        cl = page.context["cl"]
        assert (cl.result_count, cl.count_exact) == (count, False)
        assert f"about {count} in all at the last check" in page.content.decode()
        assert f"run {run.pk}" in cl.count_source
    # A check of every specialization says nothing of one of them.
    cl = staff_client.get(DESYNCS + "?specialization__exact=PLAYER").context["cl"]
    assert cl.count_source == ""


@pytest.mark.django_db
def test_desync_search_and_user_filter_read_those_users_pairs(staff_client):
    mismatch, no_licence, no_progress = inject(make_pairs(5))
    inject(make_pairs(5, specialization="COACH"), specialization="COACH")

    def listed(query):
        return [c.pk for c in staff_client.get(DESYNCS + query).context["cl"].result_list]

    assert listed(f"?q={mismatch.email.upper()}") == [key(mismatch)]
    assert listed(f"?user_id={no_progress.pk}") == [key(no_progress)]
    assert listed(f"?user_id={no_progress.pk}&q={mismatch.username}") == []
    assert listed("?q=no-such-student") == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changelist, user_attr, kind",
    [
        ("admin:specializations_specializationprogress_changelist", "student_id", "level_mismatch"),
        ("admin:specializations_specializationprogress_changelist", "student_id", "ok"),
        ("admin:licenses_userlicense_changelist", "user_id", "missing_progress"),
    ],
)
def test_a_sync_filtered_list_pages_by_key_in_key_order(
    staff_client, monkeypatch, changelist, user_attr, kind
):
    from licenses import admin as licenses_admin

    for admin_class in (
        licenses_admin.SpecializationProgressAdmin,
        licenses_admin.UserLicenseAdmin,
    ):
        monkeypatch.setattr(admin_class, "list_per_page", 1)
    for specialization in ("PLAYER", "COACH"):
        users = make_pairs(7, specialization=specialization)
        inject(users, specialization=specialization)
        inject(users[3:], specialization=specialization)
    expected = sorted(
        (pair.user_id, pair.specialization_id)
        for pair in consistency.classify(
            (u.pk, s)
            for u in get_user_model().objects.all()
            for s in ("PLAYER", "COACH", "INTERNSHIP")
        ).values()
        if pair.kind == kind
    )
    assert len(expected) >= 2
    rows = _walk(staff_client, reverse(changelist) + f"?sync={kind}")
    assert [(getattr(r, user_attr), r.specialization_id) for r in rows] == expected
    assert {r.sync_state for r in rows} == {kind}


@pytest.mark.django_db
def test_search_on_the_pair_lists_finds_the_users_rows(staff_client):
    (one,) = make_pairs(1, specialization="COACH")
    others = make_pairs(3)
    for changelist, user_attr in [
        ("admin:specializations_specializationprogress_changelist", "student_id"),
        ("admin:licenses_userlicense_changelist", "user_id"),
    ]:
        for term in (one.username, one.email.upper(), f'"{one.username}"'):
            rows = staff_client.get(reverse(changelist), {"q": term}).context["cl"].result_list
            assert [getattr(r, user_attr) for r in rows] == [one.pk], term
        everyone = staff_client.get(reverse(changelist), {"q": "pair"}).context["cl"]
        assert {getattr(r, user_attr) for r in everyone.result_list} == {
            u.pk for u in [one, *others]
        }


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner settings")
@pytest.mark.parametrize(
    "url",
    [
        DESYNCS,
        DESYNCS + "?kind=missing_license",
        reverse("admin:specializations_specializationprogress_changelist") + "?sync=level_mismatch",
    ],
)
def test_the_page_plan_wraps_the_query_that_finds_the_page_alone(staff_client, url):
    inject(make_pairs(5))
    with CaptureQueriesContext(connection) as queries:
        assert staff_client.get(url).status_code == 200
    sql = [q["sql"] for q in queries]
    plan = [
        i for i, q in enumerate(sql) if q.startswith("SELECT set_config('enable_hashjoin', 'off'")
    ]
    assert plan, "the page plan was not applied"
    for start in plan:
        # The plan, the one query that finds the page, the caller's settings back: the
        # rest of the page (users, links, rendering) runs under PostgreSQL's own plan.
        assert re.search(r'FROM \(?"?specializations_specializationprogress', sql[start + 1])
        assert sql[start + 2].startswith("SELECT set_config('enable_hashjoin', 'on'")


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's estimates")
def test_a_big_list_says_its_count_is_an_estimate(staff_client, monkeypatch):
    from common.admin_paginator import EstimatedCountPaginator

    make_pairs(3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE specializations_specializationprogress")
    monkeypatch.setattr(EstimatedCountPaginator, "estimate_above", 0)
    monkeypatch.setattr(EstimatedCountPaginator, "filtered_estimate_above", 0)
    url = reverse("admin:specializations_specializationprogress_changelist")
    for query in ("", "?specialization__code__exact=PLAYER"):
        page = staff_client.get(url + query)
        assert page.context["cl"].paginator.estimated, query
        assert "(the database's estimate: counting would read every row)" in (page.content.decode())


@pytest.mark.django_db
def test_run_check_now_records_a_run_for_the_staff_user(staff_client, staff):
    inject(make_pairs(5))
    response = staff_client.post(RUN_CHECK, follow=True)
    assert response.redirect_chain[-1][0] == RUNS
    run = HealthCheckRun.objects.get()
    assert (run.triggered_by, run.inconsistent, run.total_checked) == (staff, 3, 5)
    assert "Check recorded: critical" in str(next(iter(response.context["messages"])))


@pytest.mark.django_db
def test_run_check_now_is_post_only_csrf_protected_and_permission_checked(staff):
    assert staff_with("monitoring.view_healthcheckrun").post(RUN_CHECK).status_code == 403
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(staff)
    assert csrf_client.post(RUN_CHECK).status_code == 403
    assert csrf_client.get(RUN_CHECK).status_code == 405
    assert not HealthCheckRun.objects.exists()
    viewer = staff_with("monitoring.view_healthcheckrun", username="viewer")
    assert b'id="run-check"' not in viewer.get(RUNS).content


@pytest.mark.django_db
def test_runs_page_shows_status_and_a_server_side_trend_of_the_last_30_runs(staff_client):
    users = make_pairs(5)
    for _ in range(32):
        services.run_health_check()
    inject(users)
    services.run_health_check()
    html = staff_client.get(RUNS).content.decode()
    assert "<svg" in html and "<script" not in html.split('id="sync-trend"')[1].split("</div>")[0]
    assert html.count("<circle") == 30
    assert "Critical" in html and "Healthy" in html
    run = HealthCheckRun.objects.latest()
    detail = staff_client.get(reverse("admin:monitoring_healthcheckrun_change", args=[run.pk]))
    assert detail.content.decode().count("missing_progress</td>") == 1


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.django_db
@pytest.mark.parametrize("url", LISTS)
def test_query_count_per_page_is_constant(staff_client, url):
    def grow(n):
        users = make_pairs(n)
        SpecializationProgress.objects.filter(student__in=users[: n // 2]).update(current_level=3)
        LicenseProgression.objects.filter(license__user__in=users[-(n // 4) :]).delete()
        UserLicense.objects.filter(user__in=users[-(n // 4) :]).delete()
        for _ in range(n // 10):
            services.run_health_check()

    grow(10)
    _queries(staff_client, url)  # warm caches (content types, catalogue, session)
    small = _queries(staff_client, url)
    grow(290)
    assert _queries(staff_client, url) == small
