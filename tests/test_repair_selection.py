"""The cases a background repair selects are the ones the Desync cases list shows.

The job runs without a request: ``selectors.desync_cases`` reads the list's query
string (its filters and search) with no admin involved, and the worker never
loads the admin at all.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from licenses.models import UserLicense
from monitoring import selectors
from monitoring.exceptions import BadCaseFilter
from specializations.models import SpecializationProgress
from tests.factories import delete_row, make_pairs, set_progress_level

ROOT = Path(__file__).resolve().parent.parent
DESYNCS = reverse("admin:monitoring_desynccase_changelist")


def desyncs(specialization: str):
    """One desync of each kind: (mismatch, no licence, no progress) students."""
    mismatch, no_licence, no_progress = make_pairs(4, specialization=specialization)[:3]
    set_progress_level(mismatch, specialization, 3)
    delete_row(UserLicense, no_licence, specialization)
    delete_row(SpecializationProgress, no_progress, specialization)
    return mismatch, no_licence, no_progress


@pytest.mark.django_db
def test_the_selection_is_what_the_list_shows_for_each_filter_and_search(client, staff):
    client.force_login(staff)
    mismatch, _, no_progress = desyncs("PLAYER")
    desyncs("COACH")
    queries = [
        "",
        "kind=missing_progress",
        "kind__exact=level_mismatch&specialization__code__exact=COACH",
        "specialization=PLAYER",
        f"user_id={no_progress.pk}",
        f"q={mismatch.email.upper()}",
        f"q={mismatch.username}&user_id={no_progress.pk}",
        "q=no-such-student",
    ]
    for query in queries:
        shown = client.get(f"{DESYNCS}?{query}").context["cl"].result_list
        selected = selectors.desync_cases(query).values_list("user_id", "specialization_id")
        assert sorted(selected) == [(c.user_id, c.specialization_id) for c in shown], query


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query, named", [("progress_level=3", "'progress_level'"), ("kind=ok", "['ok']")]
)
def test_a_selection_outside_the_lists_filters_is_refused_naming_it(query, named):
    with pytest.raises(BadCaseFilter, match=named):
        selectors.desync_cases(query)


def test_the_background_job_module_does_not_load_the_admin():
    script = (
        "import sys, django; django.setup(); import monitoring.tasks;"
        "APPS = ('monitoring', 'licenses', 'specializations');"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in APPS"
        " and m.split('.')[1:2] and m.split('.')[1].startswith('admin')))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        "ACADEMY_ENV_FILE": "/dev/null",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
