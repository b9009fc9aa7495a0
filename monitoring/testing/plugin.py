"""pytest fixtures for tests of the progress-licence pair (a pytest-django plugin).

Loaded in every pytest run of an environment where the package is installed
(the ``pytest11`` entry point ``academy_sync``); a project's own fixture of the
same name takes precedence. Nothing is imported before a fixture is used, so
the plugin costs a test run that does not use it nothing.

- ``level_catalogue``: the level catalogue (the default one installed again if a
  transactional test's flush removed it), as ``all_specializations()`` reads it.
- ``committed_db``: real commits (pytest-django's ``transactional_db``) with the
  default catalogue in place: for tests of locks and of other processes.
- ``make_user``, ``student``, ``staff``, ``staff_client``: users with unique
  ``USERNAME_FIELD`` values (whatever the user model); a superuser; Django's test
  client logged in as that superuser.
- ``pair``: a student enrolled in PLAYER through ``enroll`` (progress and licence
  at level 1, in sync).
- ``desynced_pair``: a student whose PLAYER progress (level 3) is above the
  licence (level 2), written behind the hook and the commit guard as a bad
  import would leave it.

The functions behind them (``make_pairs``, ``make_desynced_pairs``, recipes) are
in ``monitoring.testing.factories``.
"""

import itertools

import pytest

_user_numbers = itertools.count(1)


@pytest.fixture
def level_catalogue(db):
    from monitoring.testing.factories import install_catalogue
    from specializations.catalogue import all_specializations, clear_cache
    from specializations.models import Specialization

    if not Specialization.objects.exists():
        install_catalogue()
    clear_cache()
    return all_specializations()


@pytest.fixture
def committed_db(transactional_db):
    from monitoring.testing.factories import install_catalogue

    install_catalogue()
    yield


@pytest.fixture
def make_user(db):
    from django.contrib.auth import get_user_model
    from model_bakery import baker

    def make(**fields):
        fields.setdefault(get_user_model().USERNAME_FIELD, f"student{next(_user_numbers)}")
        return baker.make(get_user_model(), **fields)

    return make


@pytest.fixture
def student(make_user):
    return make_user()


@pytest.fixture
def staff(make_user):
    from django.contrib.auth import get_user_model

    name = {get_user_model().USERNAME_FIELD: "staff-admin"}
    return make_user(is_staff=True, is_superuser=True, **name)


@pytest.fixture
def staff_client(staff):
    from django.test import Client

    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def pair(student, level_catalogue):
    from specializations.services import enroll

    enroll(student, "PLAYER")
    return student


@pytest.fixture
def desynced_pair(level_catalogue):
    from monitoring.testing.factories import make_desynced_pairs

    (student,) = make_desynced_pairs(1, specialization="PLAYER", level=2)
    return student
