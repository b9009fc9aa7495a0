"""Every admin list of the pair: the rows it shows, who may see it, its filters, search,
key pages, counts and constant queries per page."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from licenses import consistency
from licenses.models import LicenseProgression, UserLicense
from monitoring import services
from monitoring.models import DesyncCase, HealthCheckRun
from specializations.models import Specialization, SpecializationProgress
from tests.admin_pages import (
    DESYNCS,
    LISTS,
    RUN_CHECK,
    inject,
    key,
    make_pairs,
    walk,
)


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


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
    kinds = ["level mismatch", "missing licence", "missing progress"]  # their labels
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
    rows = walk(staff_client, reverse(changelist) + f"?sync={kind}")
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
