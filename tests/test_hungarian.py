"""Staff read Hungarian; machines read English (issue 27)."""

import pytest
from django.utils import translation

from specializations.exceptions import UnknownSpecialization


def test_an_error_for_bad_input_reads_in_the_active_language():
    with translation.override("hu"):
        message = str(UnknownSpecialization("NOPE", ["COACH", "PLAYER"]))
    assert message == (
        "specialization='NOPE' nem ismert szakirány (ezek egyike várható: COACH, PLAYER)"
    )


@pytest.mark.django_db
def test_check_sync_stays_english_under_a_hungarian_language_code(settings, check_sync):
    settings.LANGUAGE_CODE = "hu"
    with translation.override("hu"):
        exit_code, out, _ = check_sync("--specialization", "NOPE")
    assert exit_code == 3
    assert out.startswith("SYNC UNKNOWN - specialization='NOPE' is not a known specialization")
