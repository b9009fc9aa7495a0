import importlib
import itertools

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection
from model_bakery import baker

from specializations import catalogue

requires_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL row locks"
)


def seed_catalogue() -> None:
    """Re-create the level catalogue (a transactional test's flush removes it)."""
    migration = importlib.import_module("specializations.migrations.0002_level_catalogue")
    migration.load_catalogue(apps, None)
    catalogue.clear_cache()


@pytest.fixture(autouse=True)
def _fresh_catalogue_cache():
    # Each test starts from the database's catalogue, not a previous test's cache.
    catalogue.clear_cache()
    yield
    catalogue.clear_cache()


@pytest.fixture
def committed_db(transactional_db):
    """Real commits (for locking tests), with the level catalogue in place."""
    seed_catalogue()
    yield


_user_numbers = itertools.count(1)


@pytest.fixture
def make_user(db):
    def make(**fields):
        fields.setdefault("username", f"student{next(_user_numbers)}")
        return baker.make(get_user_model(), **fields)

    return make


@pytest.fixture
def student(make_user):
    return make_user()


@pytest.fixture
def staff(make_user):
    return make_user(is_staff=True, is_superuser=True, username="staff-admin")
