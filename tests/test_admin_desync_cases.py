"""The Desync cases page: each live case from the one definition, its filters, search,
permission, key pages and count."""

import pytest
from django.urls import reverse

from licenses import consistency
from licenses.models import UserLicense
from monitoring import services
from monitoring.admin import desync_cases
from monitoring.models import DesyncCase
from specializations.models import SpecializationProgress
from tests import factories
from tests.admin_pages import (
    DESYNCS,
    inject,
    key,
    make_pairs,
    staff_with,
    walk,
)


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
def test_without_a_user_admin_the_desync_page_names_users_without_a_link(
    staff_client, no_user_admin
):
    mismatch, _, _ = inject(make_pairs(5))
    page = staff_client.get(DESYNCS)
    assert page.status_code == 200
    html = page.content.decode()
    assert f"{mismatch.username} <span" in html and "/user/" not in html


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
def test_desync_page_needs_the_view_permission():
    client = staff_with()
    assert client.get(DESYNCS).status_code == 403


@pytest.mark.django_db
def test_desync_pages_by_key_list_every_case_once_in_key_order(staff_client, monkeypatch):
    monkeypatch.setattr(desync_cases.DesyncCaseAdmin, "list_per_page", 4)
    for specialization in ("PLAYER", "COACH", "INTERNSHIP"):
        users = make_pairs(6, specialization=specialization)
        inject(users, specialization=specialization)
        inject(users[3:], specialization=specialization)
    expected = [(v.user_id, v.specialization_id, v.kind) for v in consistency.violations()]
    assert len(expected) == 18
    shown = [(c.user_id, c.specialization_id, c.kind) for c in walk(staff_client, DESYNCS)]
    assert shown == expected  # (user, specialization) order, no case twice, none skipped
    coach = walk(staff_client, DESYNCS + "?specialization__exact=COACH&kind=missing_license")
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
    shown = [(c.user_id, c.specialization_id) for c in walk(staff_client, DESYNCS)]
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
