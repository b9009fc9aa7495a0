"""The catalogue in the admin: specializations added, renamed, deactivated; levels edited,
with an eased level moving students up in a background job."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

from licenses.models import LicenseProgression
from specializations import catalogue
from specializations.exceptions import InactiveSpecialization
from specializations.models import Level, Specialization, SpecializationProgress
from tests.factories import make_pairs

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:specializations_specialization_changelist")
ADD = reverse("admin:specializations_specialization_add")
LEVEL_FIELDS = [
    "number",
    "name",
    "name_en",
    "license_title",
    "required_xp",
    "required_sessions",
    "required_projects",
    "theory_hours",
    "practice_hours",
    "total_hours",
]


def change_url(code: str) -> str:
    return reverse("admin:specializations_specialization_change", args=[code])


def form_data(spec: Specialization | None, *, new_levels=(), **changes) -> dict:
    """The change (or add) form as the browser posts it, with ``changes`` applied:
    ``name="..."`` for the specialization, ``level_3={"required_xp": 1}`` for a level."""
    levels = list(spec.levels.order_by("number")) if spec else []
    data = {
        "code": spec.code if spec else "",
        "name": spec.name if spec else "",
        "description": spec.description if spec else "",
        "max_level": spec.max_level if spec else 1,
        "is_active": "on" if spec is None or spec.is_active else "",
        "levels-TOTAL_FORMS": len(levels) + len(new_levels),
        "levels-INITIAL_FORMS": len(levels),
        "levels-MIN_NUM_FORMS": 0,
        "levels-MAX_NUM_FORMS": 1000,
    }
    for i, level in enumerate(levels):
        data[f"levels-{i}-id"] = level.pk
        data[f"levels-{i}-specialization"] = spec.code
        for name in LEVEL_FIELDS:
            data[f"levels-{i}-{name}"] = getattr(level, name)
        for name, value in changes.pop(f"level_{level.number}", {}).items():
            data[f"levels-{i}-{name}"] = value
    for i, fields in enumerate(new_levels, start=len(levels)):
        for name in LEVEL_FIELDS:
            data[f"levels-{i}-{name}"] = fields.get(name, "" if "name" in name else 0)
        data.update({f"levels-{i}-{k}": v for k, v in fields.items()})
    data.update(changes)
    return data


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def test_a_new_specialization_with_any_code_is_added(admin_client):
    data = form_data(
        None,
        code="LFA_COACH",
        name="LFA Coach",
        max_level=2,
        new_levels=[
            {"number": 1, "name": "Assistant", "license_title": "Assistant", "required_xp": 0},
            {"number": 2, "name": "Head", "license_title": "Head", "required_xp": 1000},
        ],
    )
    response = admin_client.post(ADD, data)
    assert response.status_code == 302, response.context["errors"]
    assert catalogue.get_specialization("LFA_COACH").levels[1].required_xp == 1000


def test_a_code_outside_the_format_is_refused_on_add(admin_client):
    response = admin_client.post(ADD, form_data(None, code="lfa-coach", name="x"))
    assert response.status_code == 200
    assert "A specialization code is an upper-case letter" in response.content.decode()
    assert not Specialization.objects.filter(name="x").exists()


def test_the_display_name_changes_and_the_code_stays(admin_client):
    spec = Specialization.objects.get(code="COACH")
    response = admin_client.post(change_url("COACH"), form_data(spec, name="Coaching", code="X"))
    assert response.status_code == 302
    assert Specialization.objects.get(code="COACH").name == "Coaching"
    assert not Specialization.objects.filter(code="X").exists()
    assert catalogue.get_specialization("COACH").name == "Coaching"


def test_deactivated_specializations_take_no_progress(admin_client, student):
    catalogue.get_specialization("INTERNSHIP")  # cached before the action
    response = admin_client.post(
        CHANGELIST, {"action": "deactivate", ACTION_CHECKBOX_NAME: ["INTERNSHIP"]}
    )
    assert response.status_code == 302
    assert not Specialization.objects.get(code="INTERNSHIP").is_active
    with pytest.raises(InactiveSpecialization):
        catalogue.get_specialization("INTERNSHIP")


def test_unchecked_requirements_are_shown_as_not_checked(admin_client):
    Level.objects.filter(specialization_id="PLAYER", number=2).update(
        unchecked_requirements={"skills": ["Alapállás", "Egyensúly"], "min_age": 9}
    )
    page = admin_client.get(change_url("PLAYER")).content.decode()
    assert "not checked by the product" in page.lower()
    assert "skills: Alapállás; Egyensúly, min_age: 9" in page


def test_xp_falling_between_levels_is_refused(admin_client):
    spec = Specialization.objects.get(code="INTERNSHIP")
    response = admin_client.post(
        change_url("INTERNSHIP"), form_data(spec, level_3={"required_xp": 1000})
    )
    assert response.status_code == 200
    assert "Required XP must not fall as the level rises: level 3 asks 1000" in (
        response.content.decode()
    )
    assert Level.objects.get(specialization_id="INTERNSHIP", number=3).required_xp == 28_000


def ready_for_level_3(count: int):
    users = make_pairs(count, specialization="INTERNSHIP", level=2)
    SpecializationProgress.objects.filter(student__in=users).update(
        total_xp=20_000, completed_sessions=22, practice_hours_completed=130
    )
    return users


def test_a_lowered_threshold_moves_students_up_in_a_job(admin_client):
    users = ready_for_level_3(3)
    spec = Specialization.objects.get(code="INTERNSHIP")
    response = admin_client.post(
        change_url("INTERNSHIP"), form_data(spec, level_3={"required_xp": 20_000}), follow=True
    )
    messages = [str(m) for m in response.context["messages"]]
    assert any("Levels 3 of INTERNSHIP ask less than before" in m for m in messages)
    levels = SpecializationProgress.objects.filter(student__in=users).values_list(
        "current_level", flat=True
    )
    assert set(levels) == {3}
    assert set(LicenseProgression.objects.values_list("reason", flat=True)) == {
        "catalogue change: INTERNSHIP level 3"
    }


@pytest.fixture
def orm_backend(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def test_the_job_is_queued_for_a_worker_not_run_in_the_request(
    admin_client, orm_backend, monkeypatch
):
    users = ready_for_level_3(2)
    spec = Specialization.objects.get(code="INTERNSHIP")
    admin_client.post(change_url("INTERNSHIP"), form_data(spec, level_3={"required_xp": 20_000}))
    job = DBTaskResult.objects.get()
    assert job.task_path == "specializations.tasks.follow_catalogue_job"
    assert job.args_kwargs["kwargs"] == {"specialization": "INTERNSHIP", "levels": [3]}
    assert set(
        SpecializationProgress.objects.filter(student__in=users).values_list(
            "current_level", flat=True
        )
    ) == {2}
    # The worker (db_worker's loop, in this process) runs it: now they move.
    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)
    db_worker.Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    ).run()
    job.refresh_from_db()
    assert job.status == "SUCCESSFUL"
    assert job.return_value == {
        "specialization": "INTERNSHIP",
        "moved": {"3": 2},
        "students": 2,
        "out_of_sync": 0,
    }


def test_a_raised_threshold_queues_nothing(admin_client, orm_backend):
    spec = Specialization.objects.get(code="INTERNSHIP")
    response = admin_client.post(
        change_url("INTERNSHIP"), form_data(spec, level_3={"required_xp": 40_000})
    )
    assert response.status_code == 302
    assert Level.objects.get(specialization_id="INTERNSHIP", number=3).required_xp == 40_000
    assert not DBTaskResult.objects.exists()
