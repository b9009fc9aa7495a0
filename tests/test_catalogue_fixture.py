"""The default catalogue survives the flush that ends every test committing for real
(the ``default_catalogue`` fixture in tests/conftest.py re-installs it)."""

import pytest
from django.core.management import call_command
from django.test import TransactionTestCase

from specializations.catalogue import get_specialization
from specializations.default_catalogue import CODES
from specializations.models import Level, Specialization

EXPECTED_LEVELS = 19  # 8 + 8 + 3


def codes() -> set[str]:
    return set(Specialization.objects.values_list("code", flat=True))


@pytest.mark.django_db(transaction=True)
def test_a_flush_takes_the_catalogue_with_it():
    # What the end of this test does anyway (TransactionTestCase's teardown): shown here.
    call_command("flush", "--no-input", verbosity=0)
    assert codes() == set()


@pytest.mark.django_db(transaction=True)
def test_a_committing_test_after_a_flush_finds_every_specialization():
    assert codes() == set(CODES)
    assert Level.objects.count() == EXPECTED_LEVELS
    assert get_specialization("PLAYER").levels[1].required_xp == 25_000


class TestAfterAFlush(TransactionTestCase):
    def test_a_transaction_test_case_finds_every_specialization(self):
        assert codes() == set(CODES)
        assert Level.objects.count() == EXPECTED_LEVELS


@pytest.mark.django_db
def test_an_ordinary_test_sees_the_migrated_catalogue():
    assert codes() == set(CODES)
