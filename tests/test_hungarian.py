"""Staff read Hungarian; machines read English (issue 27)."""

import pytest
from django.utils import translation

from monitoring.exceptions import BadThresholds
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


@pytest.mark.django_db
def test_check_sync_prints_a_monitoring_error_in_english_that_staff_read_in_hungarian(
    settings, check_sync
):
    settings.LANGUAGE_CODE = "hu"
    with translation.override("hu"):
        exit_code, out, _ = check_sync("--warn-below", "90", "--critical-below", "95")
        shown = str(BadThresholds(90.0, 95.0))
    assert exit_code == 3
    assert out.startswith(
        "SYNC UNKNOWN - warn_below=90.0 and critical_below=95.0 must satisfy"
        " 0 <= critical_below <= warn_below <= 100"
    )
    assert shown.startswith("warn_below=90.0 és critical_below=95.0: teljesülnie kell ennek:")
