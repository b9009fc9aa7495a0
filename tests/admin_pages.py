"""What the admin page tests share: the lists' URLs, pairs with their history, desyncs of
each kind injected, a change form's data, a pair's key, staff with some permissions, and
a walk through a key-paged list."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from licenses.models import LicenseProgression, UserLicense
from specializations.models import SpecializationProgress
from tests import factories

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


def walk(client, url, *, pages_at_most=50) -> list:
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
