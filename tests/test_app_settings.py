"""Each app's SYNC_* settings: a default for each, validated where they are read.

(The environment's overrides and their messages: tests/test_monitor_faults.py.)
"""

import ast
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from imports.conf import app_settings as imports_settings
from licenses.conf import app_settings as licenses_settings
from monitoring.conf import app_settings as monitoring_settings
from specializations.conf import app_settings as specializations_settings

ROOT = Path(__file__).resolve().parent.parent
APPS = (specializations_settings, licenses_settings, monitoring_settings, imports_settings)
ALL = [setting for app_settings in APPS for setting in app_settings]


@pytest.mark.parametrize("setting", ALL, ids=lambda setting: setting.name)
def test_an_unset_setting_reads_as_its_default(settings, setting):
    if hasattr(settings, setting.name):
        delattr(settings, setting.name)
    for app_settings in APPS:
        if setting in list(app_settings):
            assert getattr(app_settings, setting.name) == setting.default


def test_a_project_value_is_read_at_every_access(settings):
    settings.SYNC_REPAIR_BATCH_SIZE = 7
    assert monitoring_settings.SYNC_REPAIR_BATCH_SIZE == 7
    settings.SYNC_REPAIR_BATCH_SIZE = 8
    assert monitoring_settings.SYNC_REPAIR_BATCH_SIZE == 8


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("SYNC_REPAIR_BATCH_SIZE", 0, "SYNC_REPAIR_BATCH_SIZE=0 must be at least 1"),
        ("SYNC_REPAIR_BATCH_SIZE", "500", "SYNC_REPAIR_BATCH_SIZE='500' is not an integer"),
        ("SYNC_REPAIR_BATCH_SIZE", True, "SYNC_REPAIR_BATCH_SIZE=True is not an integer"),
        ("SYNC_REPAIR_BATCH_SIZE", 2.5, "SYNC_REPAIR_BATCH_SIZE=2.5 is not an integer"),
        ("SYNC_WARN_BELOW", 101, "SYNC_WARN_BELOW=101 must be at most 100"),
        ("SYNC_WARN_BELOW", float("nan"), "SYNC_WARN_BELOW=nan is not a finite number"),
        ("SYNC_HEALTH_TOKEN", None, "SYNC_HEALTH_TOKEN=None is not a string"),
        (
            "SYNC_METRICS_PREFIX",
            "bad-prefix",
            "SYNC_METRICS_PREFIX='bad-prefix' is not a valid Prometheus metric name prefix",
        ),
    ],
)
def test_a_bad_project_value_is_refused_naming_it(settings, name, value, message):
    setattr(settings, name, value)
    with pytest.raises(ImproperlyConfigured) as refused:
        getattr(monitoring_settings, name)
    assert str(refused.value) == message


def test_a_bad_boolean_is_refused_naming_it(settings):
    settings.SYNC_DB_GUARD = "no"
    with pytest.raises(ImproperlyConfigured, match=r"^SYNC_DB_GUARD='no' is not a boolean"):
        assert licenses_settings.SYNC_DB_GUARD is None  # not reached


def test_a_whole_number_is_a_number_setting(settings):
    settings.SYNC_WARN_BELOW = 98
    assert monitoring_settings.SYNC_WARN_BELOW == 98.0


def test_critical_above_warn_is_refused_by_the_apps_rule(settings):
    settings.SYNC_WARN_BELOW, settings.SYNC_CRITICAL_BELOW = 90, 95.5
    with pytest.raises(ImproperlyConfigured) as refused:
        monitoring_settings.check()
    assert str(refused.value) == (
        "SYNC_CRITICAL_BELOW=95.5 must not be above SYNC_WARN_BELOW=90 (critical is the lower rate)"
    )


def _app_modules():
    for package in ("common", "specializations", "licenses", "monitoring"):
        yield from sorted((ROOT / package).rglob("*.py"))


def test_the_apps_read_sync_settings_only_through_their_conf():
    # settings.SYNC_X would need the project to set it: a host project sets none.
    found = []
    for path in _app_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("SYNC_")
                and not (isinstance(node.value, ast.Name) and node.value.id == "app_settings")
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.attr}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "getattr":
                names = [arg.value for arg in node.args if isinstance(arg, ast.Constant)]
                found += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names
                          if isinstance(n, str) and n.startswith("SYNC_")]  # fmt: skip
    assert found == []


def test_the_project_settings_set_no_sync_default_of_their_own():
    tree = ast.parse((ROOT / "config" / "settings.py").read_text(encoding="utf-8"))
    assigned = [
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id.startswith("SYNC_")
    ]
    assert assigned == []


@pytest.mark.django_db
def test_check_sync_says_unknown_naming_a_refused_project_setting(settings, check_sync):
    settings.SYNC_WARN_BELOW = "high"
    assert check_sync() == (
        3,
        "SYNC UNKNOWN - configuration error: SYNC_WARN_BELOW='high' is not a number\n",
        "",
    )
