"""Audit reasons: one line of text; control characters never reach the driver or the history."""

import pytest

from licenses.models import LicenseProgression, UserLicense
from licenses.services import require_reason, update_level_atomic
from monitoring.services import repair
from specializations.exceptions import (
    REASON_CONTROL_CHARACTER,
    ProgressionError,
    ReasonHasControlCharacter,
)
from tests.factories import make_pairs, set_progress_level

pytestmark = pytest.mark.django_db

# ... and a lone surrogate (JSON can send "\ud800"; no UTF-8 holds it).
CONTROL = ["a\x00b", "a\x1bb", "a\x7fb", "a\x1fb", "a\x85b", "\x00", "a\ud800b"]


@pytest.mark.parametrize("reason", CONTROL)
def test_update_level_atomic_refuses_a_control_character_and_writes_nothing(student, reason):
    with pytest.raises(ReasonHasControlCharacter, match=r"^reason=") as caught:
        update_level_atomic(student, "PLAYER", new_level=3, reason=reason)
    assert isinstance(caught.value, ProgressionError) and caught.value.field == "reason"
    assert f"U+{ord(reason[1 if len(reason) > 1 else 0]):04X}" in str(caught.value)
    assert not UserLicense.objects.exists() and not LicenseProgression.objects.exists()


@pytest.mark.parametrize("reason", CONTROL)
def test_repair_refuses_a_control_character_before_any_write(reason):
    (user,) = make_pairs(1, level=2)
    set_progress_level(user, "PLAYER", 3)
    with pytest.raises(ReasonHasControlCharacter, match=r"^reason="):
        repair(reason=reason)
    assert UserLicense.objects.get(user=user).current_level == 2
    assert not LicenseProgression.objects.exists()


def test_the_message_names_the_field_the_character_and_its_position():
    with pytest.raises(ReasonHasControlCharacter) as caught:
        require_reason("ticket\x0042")
    assert str(caught.value) == REASON_CONTROL_CHARACTER.format(
        value="ticket\x0042", character="U+0000", position=6
    )


@pytest.mark.parametrize(
    "given, kept",
    [
        ("ticket 42\nsee mail", "ticket 42 see mail"),
        ("a\r\n\tb", "a b"),
        ("  several  spaces stay  \n", "several  spaces stay"),
        ("\tindented", "indented"),
    ],
)
def test_tabs_and_line_breaks_become_one_space(given, kept):
    assert require_reason(given) == kept


def test_a_folded_reason_is_what_the_history_keeps(student):
    result = update_level_atomic(student, "PLAYER", new_level=2, reason="line one\nline two")
    assert result.progression.reason == "line one line two"
